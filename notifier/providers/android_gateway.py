"""SMS Gateway for Android: a phone with a local SIM, for two-way SMS inside Vietnam."""

from __future__ import annotations

from notifier.providers.base import OutboundSms, PermanentProviderError, SendResult


class AndroidGatewayProvider:
    name = "android_gateway"

    def __init__(self, base_url: str, login: str, password: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url
        self.login = login
        self.password = password
        self.timeout = timeout

    def send(self, sms: OutboundSms) -> SendResult:
        raise PermanentProviderError("provider_not_configured", "android_gateway is not built yet")
