"""The one interface every SMS provider adapter implements, and the errors it may raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutboundSms:
    message_id: str
    phone: str  # E.164
    body: str
    segments: int = 1


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    # The status the provider reports right away: "sent" normally; "delivered" for providers that
    # know at once (console, simulated test numbers).
    status: str = "sent"


class ProviderError(Exception):
    """Base of provider failures. `reason` is a stable code staff can read."""

    retryable: bool = False

    def __init__(self, reason: str, detail: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class RetryableProviderError(ProviderError):
    """Network trouble, 5xx, 429: the same request may succeed later."""

    retryable = True


class PermanentProviderError(ProviderError):
    """Invalid number, opted out, refused: sending again would fail again."""


class Provider(Protocol):
    """Adapters are created once per process and must be safe to call from several threads."""

    name: str

    def send(self, sms: OutboundSms) -> SendResult: ...
