"""Twilio Messages API through the official SDK; Twilio's statuses and error codes in our words."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, time
from urllib.parse import urlencode

import urllib3
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.rest import Client

from notifier.providers.base import (
    OutboundSms,
    PermanentProviderError,
    RateLimitedProviderError,
    Receipt,
    RetryableProviderError,
    SendResult,
    SentRecord,
)

log = logging.getLogger(__name__)
# The SDK logs every request and response at INFO: far too much at hundreds a second.
_sdk_log = logging.getLogger("notifier.providers.twilio.sdk")
_sdk_log.setLevel(logging.WARNING)

# A status callback's MessageStatus → ours. Any status before delivery means Twilio has it.
STATUSES = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}


@dataclass(frozen=True)
class _Code:
    reason: str  # ours
    temporary: bool = False  # the same message may get through later


# Twilio error codes (https://www.twilio.com/docs/api/errors) → our reasons. 20xxx and 21xxx
# answer a send request: a temporary one is retried. 30xxx come in a status callback for a
# message Twilio accepted and could not deliver: it has failed either way.
ERRORS = {
    # too many requests: slow down and try again
    20429: _Code("rate_limited", temporary=True),
    # Twilio's own trouble: it passes
    20500: _Code("provider_unavailable", temporary=True),
    20503: _Code("provider_unavailable", temporary=True),
    # not a valid phone number: it never will be
    21211: _Code("invalid_number"),
    # the account may not send to that country: only its owner can change that
    21408: _Code("region_not_permitted"),
    # the citizen texted STOP to our number: until they text START, every send is refused
    21610: _Code("opted_out"),
    # no route from our sender to that number
    21612: _Code("unreachable"),
    # a landline cannot take SMS
    21614: _Code("landline"),
    # the handset is off or out of coverage: it may be back later
    30003: _Code("unreachable", temporary=True),
    # blocked by the recipient or the carrier: it stays blocked
    30004: _Code("blocked"),
    # the carrier does not know the number: it does not exist, or no longer
    30005: _Code("invalid_number"),
    # a landline, or a carrier that takes no SMS
    30006: _Code("landline"),
    # filtered by the carrier as spam or fraud: the same text is filtered again
    30007: _Code("carrier_rejected"),
    # an unknown error on the way: it may pass next time
    30008: _Code("undelivered", temporary=True),
}
# What a request can raise on the way: urllib3's own errors, or the socket's.
_NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


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
        connections: int = 10,
    ) -> None:
        if not (account_sid and auth_token):
            raise ValueError("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are required for twilio")
        if not (sender or messaging_service_sid):
            raise ValueError("TWILIO_FROM or TWILIO_MESSAGING_SERVICE_SID is required for twilio")
        # One client per process: its pool keeps connections alive across messages, from every
        # sending thread (one pooled connection per thread).
        self.http = PooledHttpClient(connections=connections, timeout=timeout)
        self.client = Client(account_sid, auth_token, http_client=self.http)
        self.client.api.base_url = api_base_url.rstrip("/")
        self._sender = sender
        self._messaging_service_sid = messaging_service_sid
        self._status_callback = status_callback

    @property
    def sender(self) -> str:
        return self._messaging_service_sid or self._sender

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
            raise classify_twilio_error(exc, self.http.last_retry_after()) from exc
        except _NETWORK_ERRORS as exc:
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
        except _NETWORK_ERRORS as exc:
            raise RetryableProviderError("network_error", type(exc).__name__) from exc
        return [
            SentRecord(str(m.sid), str(m.body or ""), m.date_created)
            for m in found
            if m.date_created is None or m.date_created >= since
        ]


def request_may_have_arrived(exc: Exception) -> bool:
    """False only when the request surely never reached Twilio (no connection was made)."""
    # NewConnectionError is a ConnectTimeoutError too: either way nothing was sent.
    return not isinstance(exc, urllib3.exceptions.ConnectTimeoutError)


class PooledHttpClient(HttpClient):
    """The SDK's HTTP client interface on a bare urllib3 pool, as large as the sending concurrency.

    The SDK's own client goes through `requests`, whose per-request work (preparing, merging
    environment settings, hooks, cookies) costs about as much CPU as everything else in a send.
    This one does what the SDK needs and no more. It never retries: a POST that may have
    arrived is not sent again blindly (delivery reconciles it instead). It also remembers, per
    thread, the `Retry-After` of the last response: the SDK's exception does not carry headers.
    """

    def __init__(self, *, connections: int, timeout: float) -> None:
        super().__init__(_sdk_log, is_async=False, timeout=timeout)
        self.pool = urllib3.PoolManager(
            num_pools=4, maxsize=max(1, connections), retries=False, timeout=timeout
        )
        self._local = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        self._local.retry_after = None
        sent_headers = dict(headers or {})
        if auth:
            sent_headers.update(urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        if params:
            url += ("&" if "?" in url else "?") + _form(params)
        body = None
        if data is not None:
            body = _form(data)
            sent_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        answer = self.pool.request(
            method.upper(),
            url,
            body=body,
            headers=sent_headers,
            redirect=allow_redirects,
            timeout=timeout or self.timeout,
        )
        if answer.status == 429:
            self._local.retry_after = answer.headers.get("Retry-After")
        return Response(answer.status, answer.data.decode("utf-8", "replace"), answer.headers)

    def last_retry_after(self) -> float | None:
        """Seconds the provider asked us to wait in this thread's last response, if any."""
        raw = getattr(self._local, "retry_after", None)
        try:
            return max(0.0, float(raw)) if raw is not None else None
        except ValueError:
            return None  # an HTTP date: rare from APIs, and the backoff covers it


def _form(values: dict[str, object]) -> str:
    """Form-encode as requests does: lists repeat the key, None values are left out."""
    pairs = [
        (key, item)
        for key, value in values.items()
        for item in (value if isinstance(value, list | tuple) else [value])
        if item is not None
    ]
    return urlencode(pairs)


def classify_twilio_error(
    exc: TwilioRestException, retry_after: float | None = None
) -> RetryableProviderError | PermanentProviderError:
    code = int(exc.code) if exc.code else None
    detail = f"HTTP {exc.status}, Twilio error {code}: {exc.msg}"[:500]
    if exc.status == 429 or code == 20429:
        return RateLimitedProviderError("rate_limited", detail, retry_after=retry_after)
    known = ERRORS.get(code) if code is not None else None
    if exc.status >= 500 or (known is not None and known.temporary):
        return RetryableProviderError("provider_unavailable", detail)
    if known is not None:
        return PermanentProviderError(known.reason, detail)
    return PermanentProviderError("provider_rejected", detail)


def status_receipt(sid: str, message_status: str, error_code: str | None) -> Receipt | None:
    """A status callback in our words; None for a status that tells us nothing."""
    status = STATUSES.get(message_status.lower())
    if status is None:
        log.info("twilio status %r for %s ignored", message_status, sid)
        return None
    reason = None
    if error_code:
        known = ERRORS.get(int(error_code)) if error_code.isdigit() else None
        reason = known.reason if known else "undelivered"
    detail = f"Twilio {message_status}" + (f", error {error_code}" if error_code else "")
    return Receipt(TwilioProvider.name, sid, status, reason=reason, detail=detail)
