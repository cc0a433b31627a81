"""SMS Gateway for Android: a phone with a local SIM, for two-way SMS inside Vietnam.

Sending goes through the app's API (`POST /messages`, basic auth) with its Python client,
`android_sms_gateway`: it owns the wire format (camelCase JSON, message states) and maps HTTP
errors to exception classes, and it accepts the HTTP session it runs on. So one
`requests.Session` per process keeps the connection to the phone open, and the session applies
our timeout to every request, which the client itself has no setting for.

Each message is sent with our message id as the gateway's id: the app answers 409 to an id it
already has, so a retry after a lost answer never sends a second SMS, and delivery webhooks
(`sms:sent`, `sms:delivered`, `sms:failed`) name our message directly. The app and its cloud
server answer every new message `Pending`, even one to a number the phone cannot send to:
failures only ever arrive later, as `sms:failed`.
"""

from __future__ import annotations

from typing import Any

import requests
from android_sms_gateway import APIClient, Message, TextMessage
from android_sms_gateway.errors import APIError
from android_sms_gateway.http import RequestsHttpClient

from notifier.providers.base import (
    OutboundSms,
    PermanentProviderError,
    Receipt,
    RetryableProviderError,
    SendResult,
)

# The app's webhook events about a message we sent → our status.
RECEIPT_EVENTS = {
    "sms:sent": "sent",  # the phone handed it to the carrier
    "sms:delivered": "delivered",  # the carrier's delivery report reached the phone
    # The phone could not send it, or the carrier reported it undelivered: the app has given
    # up, so it is final (the app's reason goes into the message's history).
    "sms:failed": "failed",
}


def event_receipt(event: str, message_id: str, reason: str | None = None) -> Receipt:
    """A delivery event (one of `RECEIPT_EVENTS`) in our words.

    It names our message: we send with our message id as the gateway's. A repeated event (the
    app retries deliveries) finds the status already reached and changes nothing.
    """
    detail = (f"gateway {event}" + (f": {reason}" if reason else ""))[:500]
    return Receipt(
        AndroidGatewayProvider.name,
        message_id,
        RECEIPT_EVENTS[event],
        detail=detail,
        by_our_id=True,
    )


class _TimeoutSession(requests.Session):
    """A session whose requests all time out after `timeout` seconds unless told otherwise."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


class AndroidGatewayProvider:
    name = "android_gateway"

    def __init__(self, base_url: str, login: str, password: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.configured = bool(login and password)
        self._session = _TimeoutSession(timeout)
        self.client: APIClient | None = None
        if self.configured:
            self.client = APIClient(
                login, password, base_url=self.base_url, http=RequestsHttpClient(self._session)
            )

    def send(self, sms: OutboundSms) -> SendResult:
        if self.client is None:
            raise PermanentProviderError(
                "provider_not_configured",
                "ANDROID_GATEWAY_LOGIN and ANDROID_GATEWAY_PASSWORD are not set",
            )
        message = Message(
            phone_numbers=[sms.phone],
            text_message=TextMessage(text=sms.body),
            with_delivery_report=True,
            id=sms.message_id,
        )
        try:
            state = self.client.send(message)
        except APIError as exc:
            if exc.status_code == 409:
                # The phone already has this id: an earlier attempt got through.
                return SendResult(provider_message_id=sms.message_id)
            raise classify_gateway_error(exc) from exc
        except requests.RequestException as exc:
            raise RetryableProviderError("network_error", type(exc).__name__) from exc
        except (KeyError, TypeError, ValueError):
            # Accepted (2xx) but answered in a shape the client does not know: the id is ours.
            return SendResult(provider_message_id=sms.message_id)
        return SendResult(provider_message_id=state.id or sms.message_id)

    def close(self) -> None:
        self._session.close()


def classify_gateway_error(exc: APIError) -> RetryableProviderError | PermanentProviderError:
    status = exc.status_code
    message = ""
    if isinstance(exc.response, dict):
        message = str(exc.response.get("message") or "")
    detail = f"HTTP {status}: {message or exc}"[:500]
    if status is None or status == 429 or status >= 500:
        # 503 is the cloud server's "queue limits exceeded": the phone is offline or busy.
        return RetryableProviderError("provider_unavailable", detail)
    if status in (401, 403):
        return PermanentProviderError("provider_not_configured", detail)
    if status == 400 and "phone" in message.lower():
        return PermanentProviderError("invalid_number", detail)
    return PermanentProviderError("provider_rejected", detail)
