"""Twilio Messages API through the official SDK, with its errors mapped to ours."""

from __future__ import annotations

from datetime import UTC, datetime, time

import requests
import urllib3
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notifier.providers.base import (
    OutboundSms,
    PermanentProviderError,
    RetryableProviderError,
    SendResult,
    SentRecord,
)

# Twilio error codes (https://www.twilio.com/docs/api/errors) mapped to our reason codes.
PERMANENT_CODES = {
    21211: "invalid_number",
    21614: "landline",
    21610: "opted_out",
    21408: "region_not_permitted",
    21612: "unreachable",
}
RETRYABLE_CODES = {20429, 20500, 20503}


class TwilioProvider:
    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        sender: str = "",
        messaging_service_sid: str = "",
        status_callback: str | None = None,
        api_base_url: str = "https://api.twilio.com",
        timeout: float = 10.0,
    ) -> None:
        if not (account_sid and auth_token):
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required for twilio")
        if not (sender or messaging_service_sid):
            raise ValueError("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required for twilio")
        # One client per process: its requests.Session keeps connections alive across messages.
        self.client = Client(
            account_sid,
            auth_token,
            http_client=TwilioHttpClient(pool_connections=True, timeout=timeout),
        )
        self.client.api.base_url = api_base_url.rstrip("/")
        self._sender = sender
        self._messaging_service_sid = messaging_service_sid
        self._status_callback = status_callback

    def send(self, sms: OutboundSms) -> SendResult:
        params: dict[str, str] = {"to": sms.phone, "body": sms.body}
        if self._messaging_service_sid:
            params["messaging_service_sid"] = self._messaging_service_sid
        else:
            params["from_"] = self._sender
        if self._status_callback:
            params["status_callback"] = self._status_callback
        try:
            message = self.client.messages.create(**params)
        except TwilioRestException as exc:
            raise classify_twilio_error(exc) from exc
        except requests.RequestException as exc:
            raise RetryableProviderError(
                "network_error", type(exc).__name__, ambiguous=request_may_have_arrived(exc)
            ) from exc
        return SendResult(provider_message_id=str(message.sid), status="sent")

    def sent_to(self, phone: str, since: datetime) -> list[SentRecord]:
        # Twilio filters DateSent by whole days (GMT): ask from that midnight, then keep what was
        # created since `since`.
        midnight = datetime.combine(since.astimezone(UTC).date(), time(0), tzinfo=UTC)
        try:
            found = self.client.messages.list(to=phone, date_sent_after=midnight, limit=100)
        except TwilioRestException as exc:
            raise classify_twilio_error(exc) from exc
        except requests.RequestException as exc:
            raise RetryableProviderError("network_error", type(exc).__name__) from exc
        return [
            SentRecord(str(m.sid), str(m.body or ""), m.date_created)
            for m in found
            if m.date_created is None or m.date_created >= since
        ]


def request_may_have_arrived(exc: requests.RequestException) -> bool:
    """False only when the request surely never reached Twilio (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return False
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else None
        reason = getattr(cause, "reason", cause)
        return not isinstance(reason, urllib3.exceptions.NewConnectionError)
    return True


def classify_twilio_error(
    exc: TwilioRestException,
) -> RetryableProviderError | PermanentProviderError:
    code = int(exc.code) if exc.code else None
    detail = f"HTTP {exc.status}, Twilio error {code}: {exc.msg}"[:500]
    if exc.status == 429 or code in RETRYABLE_CODES or exc.status >= 500:
        return RetryableProviderError("provider_unavailable", detail)
    if code in PERMANENT_CODES:
        return PermanentProviderError(PERMANENT_CODES[code], detail)
    return PermanentProviderError("provider_rejected", detail)
