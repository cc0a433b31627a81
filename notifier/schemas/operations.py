"""What operators read: the health probes (`/healthz`, `/readyz`) and the delivery status
(`GET /api/v1/delivery/status`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


class CircuitOut(BaseModel):
    open_since: float  # unix time
    probe_after: float  # unix time after which one message tries the primary again
    reason: str


class SwitchOut(BaseModel):
    at: str  # ISO 8601, UTC
    from_provider: str
    to_provider: str
    reason: str  # failing | recovered
    detail: str | None


class DeliveryStatus(BaseModel):
    """GET /api/v1/delivery/status: where messages go now, and why."""

    primary: str
    fallback: str | None
    active: str
    circuit: CircuitOut | None
    switches: list[SwitchOut]
    queues: dict[str, int]
