"""Provider failover: a circuit breaker on the primary provider, shared by all workers via Redis.

Workers count, per time bucket, the primary's successes and provider-side failures (network
errors, 5xx; a 429 is throttling, not a failure, and a refused number is the number's fault).
When failures reach `FAILOVER_ERROR_RATE` of at least `FAILOVER_MIN_REQUESTS` requests within
`FAILOVER_WINDOW_SECONDS`, the circuit opens: messages not bound to a provider go to
`SMS_FALLBACK_PROVIDER`. After `FAILOVER_COOLDOWN_SECONDS` one message is sent through the primary
as a probe; if it goes through, the circuit closes and sending swings back, else it stays open for
another cooldown. Every switch is logged and stored in the `provider_switches` table, which is
what staff are shown (`provider_status`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import select

from notifier.core.runtime import Services
from notifier.models import ProviderSwitch
from notifier.schemas.operations import CircuitOut, DeliveryStatus, SwitchOut

log = logging.getLogger(__name__)

HEALTH_PREFIX = "notifier:health:"
CIRCUIT_PREFIX = "notifier:circuit:"
_BUCKETS = 6  # the window is counted in this many buckets
_STATE_TTL = 1.0  # seconds a worker trusts its cached view of the circuit


@dataclass(frozen=True)
class Route:
    """Which provider sends a message; `probe` marks the one message testing a failed primary."""

    provider: str
    probe: bool = False


@dataclass(frozen=True)
class Circuit:
    opened_at: float
    retry_at: float  # unix time after which one probe may go through the primary
    reason: str


class Failover:
    """Routing and health accounting for one process; state lives in Redis."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.services = services
        self.redis = services.redis
        self.primary = settings.SMS_PROVIDER
        self.fallback = settings.SMS_FALLBACK_PROVIDER.strip()
        self.enabled = bool(self.fallback) and self.fallback != self.primary
        self.window = max(1, settings.FAILOVER_WINDOW_SECONDS)
        self.bucket_seconds = max(1, self.window // _BUCKETS)
        self.error_rate = settings.FAILOVER_ERROR_RATE
        self.min_requests = max(1, settings.FAILOVER_MIN_REQUESTS)
        self.cooldown = settings.FAILOVER_COOLDOWN_SECONDS
        self._lock = threading.Lock()
        self._ok = 0
        self._failed = 0
        self._cached: tuple[float, Circuit | None] = (0.0, None)

    @property
    def circuit_key(self) -> str:
        return f"{CIRCUIT_PREFIX}{self.primary}"

    # -- routing -----------------------------------------------------------------------------
    def route(self) -> Route:
        """The provider for a message that is not bound to one."""
        if not self.enabled:
            return Route(self.primary)
        circuit = self.circuit()
        if circuit is None:
            return Route(self.primary)
        if time.time() >= circuit.retry_at and self._take_probe():
            return Route(self.primary, probe=True)
        return Route(self.fallback)

    def reroutes(self) -> bool:
        """True when a message failing on the primary now would be retried elsewhere."""
        return self.enabled and self.circuit() is not None

    def circuit(self, fresh: bool = False) -> Circuit | None:
        checked_at, circuit = self._cached
        if not fresh and time.monotonic() - checked_at < _STATE_TTL:
            return circuit
        try:
            raw = self.redis.get(self.circuit_key)
        except RedisError as exc:
            log.warning("failover state unavailable, keeping the last known: %s", exc)
            return circuit
        circuit = _decode(raw)
        self._cached = (time.monotonic(), circuit)
        return circuit

    def _take_probe(self) -> bool:
        ttl = max(1, int(self.cooldown * 1000))
        return bool(self.redis.set(f"{self.circuit_key}:probe", "1", nx=True, px=ttl))

    # -- health ------------------------------------------------------------------------------
    def record(self, provider: str, ok: bool) -> None:
        """Count one request's outcome (only the primary's count)."""
        if not self.enabled or provider != self.primary:
            return
        with self._lock:
            if ok:
                self._ok += 1
            else:
                self._failed += 1

    def probe_result(self, ok: bool) -> None:
        """The probe through the primary went through (close) or failed (stay open)."""
        if ok:
            if self.redis.delete(self.circuit_key):
                self._clear_health()
                self._switched(
                    self.fallback, self.primary, "recovered", "a probe message went through"
                )
        else:
            circuit = self.circuit(fresh=True)
            if circuit is not None:
                reopened = Circuit(circuit.opened_at, time.time() + self.cooldown, circuit.reason)
                self.redis.set(self.circuit_key, _encode(reopened))
            self.redis.delete(f"{self.circuit_key}:probe")
            log.warning("%s still failing: staying on %s", self.primary, self.fallback)
        self._cached = (0.0, None)

    def flush(self) -> None:
        """Write the counted outcomes to Redis and open the circuit when the primary is failing."""
        with self._lock:
            ok, failed = self._ok, self._failed
            self._ok = self._failed = 0
        if not (ok or failed):
            return
        bucket = int(time.time()) // self.bucket_seconds
        key = f"{HEALTH_PREFIX}{self.primary}:{bucket}"
        with self.redis.pipeline() as pipe:
            pipe.hincrby(key, "ok", ok)
            pipe.hincrby(key, "failed", failed)
            pipe.expire(key, self.window + self.bucket_seconds)
            for past in range(bucket - self.window // self.bucket_seconds + 1, bucket + 1):
                pipe.hmget(f"{HEALTH_PREFIX}{self.primary}:{past}", "ok", "failed")
            replies = pipe.execute()
        total_ok = sum(int(r[0] or 0) for r in replies[3:])
        total_failed = sum(int(r[1] or 0) for r in replies[3:])
        total = total_ok + total_failed
        if failed and total >= self.min_requests and total_failed / total >= self.error_rate:
            self._open(f"{total_failed} of {total} requests failed in {self.window} s")

    def _open(self, detail: str) -> None:
        now = time.time()
        circuit = Circuit(opened_at=now, retry_at=now + self.cooldown, reason=detail)
        if self.redis.set(self.circuit_key, _encode(circuit), nx=True):
            self._cached = (time.monotonic(), circuit)
            self._switched(self.primary, self.fallback, "failing", detail)

    def _clear_health(self) -> None:
        keys = list(self.redis.scan_iter(f"{HEALTH_PREFIX}{self.primary}:*", count=100))
        if keys:
            self.redis.delete(*keys)

    def _switched(self, from_provider: str, to_provider: str, reason: str, detail: str) -> None:
        log.warning(
            "provider switch: %s -> %s (%s: %s)", from_provider, to_provider, reason, detail
        )
        with self.services.db.transaction() as session:
            session.add(
                ProviderSwitch(
                    from_provider=from_provider,
                    to_provider=to_provider,
                    reason=reason,
                    detail=detail[:500],
                )
            )


def provider_status(services: Services, limit: int = 20) -> DeliveryStatus:
    """What staff are shown: the active provider, the circuit, the latest switches, the queues."""
    failover = Failover(services)
    circuit = failover.circuit(fresh=True) if failover.enabled else None
    with services.db.session() as session:
        switches = session.scalars(
            select(ProviderSwitch).order_by(ProviderSwitch.id.desc()).limit(limit)
        ).all()
    return DeliveryStatus(
        primary=failover.primary,
        fallback=failover.fallback or None,
        active=failover.fallback if circuit else failover.primary,
        circuit=None
        if circuit is None
        else CircuitOut(
            open_since=circuit.opened_at, probe_after=circuit.retry_at, reason=circuit.reason
        ),
        switches=[
            SwitchOut(
                at=s.at.isoformat(),
                from_provider=s.from_provider,
                to_provider=s.to_provider,
                reason=s.reason,
                detail=s.detail,
            )
            for s in switches
        ],
        queues={name: queue.count for name, queue in services.queues.items()},
    )


def _encode(circuit: Circuit) -> str:
    return json.dumps(
        {"opened_at": circuit.opened_at, "retry_at": circuit.retry_at, "reason": circuit.reason}
    )


def _decode(raw: Any) -> Circuit | None:
    if not raw:
        return None
    data = json.loads(raw)
    return Circuit(float(data["opened_at"]), float(data["retry_at"]), str(data["reason"]))
