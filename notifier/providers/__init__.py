"""Provider adapters behind one interface (`Provider`), built once per process from settings."""

from __future__ import annotations

from notifier.core.config import Settings
from notifier.providers.base import (
    OutboundSms,
    PermanentProviderError,
    Provider,
    ProviderError,
    RateLimitedProviderError,
    Receipt,
    ReconcilableProvider,
    RetryableProviderError,
    SendResult,
    SentRecord,
)
from notifier.providers.console import ConsoleProvider
from notifier.providers.simulated import SimulatedProvider

__all__ = [
    "OutboundSms",
    "PermanentProviderError",
    "Provider",
    "ProviderError",
    "RateLimitedProviderError",
    "Receipt",
    "ReconcilableProvider",
    "RetryableProviderError",
    "SendResult",
    "SentRecord",
    "build_provider",
]

PROVIDER_NAMES = ("console", "twilio", "android_gateway")
# Not an SMS_PROVIDER: messages of test API keys are bound to it when created.
SIMULATED = "simulated"


def build_provider(name: str, settings: Settings) -> Provider:
    if name == "console":
        return ConsoleProvider()
    if name == SIMULATED:
        return SimulatedProvider()
    # The SDK adapters are imported only when configured: together they weigh some 17 MB of
    # memory (the Twilio REST modules, the gateway client and the aiohttp it brings).
    if name == "twilio":
        from notifier.providers.twilio import TwilioProvider

        return TwilioProvider(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            sender=settings.TWILIO_FROM,
            messaging_service_sid=settings.TWILIO_MESSAGING_SERVICE_SID,
            status_callback=settings.PUBLIC_BASE_URL.rstrip("/") + "/twilio/status",
            api_base_url=settings.TWILIO_API_BASE_URL,
            timeout=settings.PROVIDER_TIMEOUT_SECONDS,
            connections=settings.SEND_CONCURRENCY,
        )
    if name == "android_gateway":
        from notifier.providers.android_gateway import AndroidGatewayProvider

        return AndroidGatewayProvider(
            settings.ANDROID_GATEWAY_URL,
            settings.ANDROID_GATEWAY_LOGIN,
            settings.ANDROID_GATEWAY_PASSWORD,
            timeout=settings.PROVIDER_TIMEOUT_SECONDS,
        )
    raise ValueError(f"unknown SMS_PROVIDER {name!r}; expected one of {', '.join(PROVIDER_NAMES)}")
