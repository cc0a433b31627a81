"""Twilio Messages API through the official SDK, with its errors mapped to ours."""

from __future__ import annotations

import logging
import threading
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
    RetryableProviderError,
    SendResult,
    SentRecord,
)

# The SDK logs every request and response at INFO: far too much at hundreds a second.
_sdk_log = logging.getLogger("notifier.providers.twilio.sdk")
_sdk_log.setLevel(logging.WARNING)

# Twilio error codes (https://www.twilio.com/docs/api/errors) mapped to our reason codes.
PERMANENT_CODES = {
    21211: "invalid_number",
    21614: "landline",
    21610: "opted_out",
    21408: "region_not_permitted",
    21612: "unreachable",
}
RETRYABLE_CODES = {20429, 20500, 20503}
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
    if code in RETRYABLE_CODES or exc.status >= 500:
        return RetryableProviderError("provider_unavailable", detail)
    if code in PERMANENT_CODES:
        return PermanentProviderError(PERMANENT_CODES[code], detail)
    return PermanentProviderError("provider_rejected", detail)
