"""The one interface every SMS provider adapter implements, and the errors it may raise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable


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


@dataclass(frozen=True)
class Receipt:
    """A provider's report on a message it accepted, in our words (each adapter reads its own)."""

    provider: str
    provider_message_id: str
    status: str  # "sent", "delivered" or "failed"
    reason: str | None = None  # our failure reason code
    detail: str | None = None  # the provider's own words, for the message's history
    # The provider was given our message id as its own, so a receipt finds its message even
    # before the worker has recorded the send.
    by_our_id: bool = False


class ProviderError(Exception):
    """Base of provider failures. `reason` is a stable code staff can read."""

    retryable: bool = False

    def __init__(
        self,
        reason: str,
        detail: str = "",
        *,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        # The request reached the provider but no answer came back (a read timeout): it may
        # have been accepted, so it must be looked up before it is sent again.
        self.ambiguous = ambiguous


class RetryableProviderError(ProviderError):
    """Network trouble, 5xx, 429: the same request may succeed later."""

    retryable = True


class RateLimitedProviderError(RetryableProviderError):
    """The provider answered 429: retry later, and everyone sending through it slows down."""


class PermanentProviderError(ProviderError):
    """Invalid number, opted out, refused: sending again would fail again."""


class Provider(Protocol):
    """Adapters are created once per process and must be safe to call from several threads."""

    name: str
    # Adapters may also have `sender` (str): the rate limit applies per provider and sender.

    def send(self, sms: OutboundSms) -> SendResult: ...


@dataclass(frozen=True)
class SentRecord:
    """A message as the provider's own record shows it."""

    provider_message_id: str
    body: str
    created_at: datetime | None


@runtime_checkable
class ReconcilableProvider(Provider, Protocol):
    """A provider that can list what it accepted, so a send cut short is never repeated blindly."""

    def sent_to(self, phone: str, since: datetime) -> list[SentRecord]:
        """Messages the provider accepted for `phone` (E.164) since `since`, newest first.

        Raises ProviderError when the provider cannot answer now.
        """
        ...
