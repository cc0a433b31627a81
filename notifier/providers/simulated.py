"""The provider of test API keys: the whole pipeline runs, nothing ever reaches a phone.

Every number is reported delivered at once, except two documented ones (docs/api.md):
`TEMPORARY_FAILURE` fails with a retryable error on every attempt (so the message is retried,
then ends `failed`/`provider_unavailable`), `PERMANENT_FAILURE` is refused for good.
"""

from __future__ import annotations

from notifier.providers.base import (
    OutboundSms,
    PermanentProviderError,
    RetryableProviderError,
    SendResult,
)

DELIVERED = "+84900000001"
TEMPORARY_FAILURE = "+84900000002"
PERMANENT_FAILURE = "+84900000003"


class SimulatedProvider:
    name = "simulated"

    def send(self, sms: OutboundSms) -> SendResult:
        if sms.phone == TEMPORARY_FAILURE:
            raise RetryableProviderError("network_error", "simulated temporary failure")
        if sms.phone == PERMANENT_FAILURE:
            raise PermanentProviderError("unreachable", "simulated permanent failure")
        return SendResult(provider_message_id=f"simulated-{sms.message_id}", status="delivered")
