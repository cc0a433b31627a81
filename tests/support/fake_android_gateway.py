"""An SMS Gateway for Android look-alike on 127.0.0.1, for tests, benchmarks and fault drills.

It behaves as the app's local server does (capcom6/android-sms-gateway, `localserver/routes`,
`modules/messages`, `modules/webhooks`):

- `POST /messages` with basic auth and a JSON body (`phoneNumbers`, `textMessage.text`,
  optional `id`) is answered 202 with the message in state `Pending`, always; 409 for an id it
  already has. Numbers are checked only when the phone sends: one without `+` is read in the
  SIM's country, and a number that is not a mobile one fails then, reported by `sms:failed`
  ("sendSMS: Invalid phone number"), as does a failure scripted with `fail_recipient_next`.
- `POST /webhooks` creates a webhook, or replaces the one with the same `id`; without an `id`
  each call creates another. Only `https://` URLs are accepted, and plain `http://` to
  `127.0.0.1` (not `localhost`). `GET /webhooks` lists them, `DELETE /webhooks/<id>` removes one.
- Each event goes to every webhook registered for it, with a new event id each time, signed
  with the webhook key. Payloads are built as the app's Gson builds them: its field order,
  dates as `yyyy-MM-dd'T'HH:mm:ss.SSSXXX` in the phone's zone, null fields left out, HTML
  characters escaped, and `sms:received` ids hashed from the SMS as the app hashes them.

Failures, latency and lost answers can be scripted. `received`, `status_event`, `signed` and
`post_event*` build and POST signed events, so a test or a benchmark can play the phone.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from notifier.core import signing
from notifier.text import sms
from tests.support import http

LOGIN = "sms"
PASSWORD = "fake-gateway-password"
WEBHOOK_KEY = "fake-gateway-webhook-key"
EVENTS_PATH = "/gateways/android/events"


EVENTS = (
    "sms:received",
    "sms:sent",
    "sms:delivered",
    "sms:failed",
    "system:ping",
    "sms:data-received",
    "mms:received",
    "mms:downloaded",
    "app:started",
    "sms:cancelled",
)
# What our setup registers (docs/two-way-sms.md): one fixed id per event.
NOTIFIER_WEBHOOK_IDS = {
    event: f"notifier-{event.replace(':', '-')}"
    for event in ("sms:received", "sms:sent", "sms:delivered", "sms:failed")
}
_NANOID_ALPHABET = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UINT32 = 0xFFFFFFFF


def nanoid() -> str:
    """The app's ids (jnanoid's default: 21 URL-safe characters)."""
    return "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(21))


def _java_string_hash(text: str) -> int:
    """Java's String.hashCode, over UTF-16 code units, as an unsigned 32-bit value."""
    result = 0
    raw = text.encode("utf-16-be", "surrogatepass")
    for index in range(0, len(raw), 2):
        result = (31 * result + int.from_bytes(raw[index : index + 2], "big")) & _UINT32
    return result


def received_message_id(address: str, at: datetime, subscription_id: int | None, text: str) -> str:
    """`InboxMessage.Text.hashCode().toUInt().toString(16)`: the app's `sms:received` id.

    A hash of the sender, the SMS's own time (ms), the SIM subscription and the text: one SMS
    keeps its id however many webhooks it goes to, but two SMS may share one (32 bits).
    """
    millis = round(at.timestamp() * 1000)
    result = _java_string_hash(address)
    result = (31 * result + ((millis ^ (millis >> 32)) & _UINT32)) & _UINT32
    result = (31 * result + (subscription_id or 0)) & _UINT32
    return format((31 * result + _java_string_hash(text)) & _UINT32, "x")


def gson_date(at: datetime) -> str:
    """`yyyy-MM-dd'T'HH:mm:ss.SSSXXX`: milliseconds, and the offset (`Z` for UTC)."""
    stamp = at.isoformat(timespec="milliseconds")
    return stamp.removesuffix("+00:00") + "Z" if stamp.endswith("+00:00") else stamp


# Gson's default HTML-safe escaping, which the app keeps.
_GSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "=": "\\u003d", "'": "\\u0027"}
_GSON_ESCAPES |= {"\u2028": "\\u2028", "\u2029": "\\u2029"}
_GSON_ESCAPE_RE = re.compile("[" + re.escape("".join(_GSON_ESCAPES)) + "]")


def gson_json(value: Any) -> bytes:
    """JSON as the app's Gson writes it: compact, non-ASCII as is, HTML characters escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _GSON_ESCAPE_RE.sub(lambda match: _GSON_ESCAPES[match.group()], text).encode()


@dataclass
class Scripted:
    status: int
    message: str = "scripted failure"
    drop: bool = False  # accept the message, then close the connection without answering
    fail_reason: str | None = None  # accept it (Pending), then report it failed with this


@dataclass
class GatewayMessage:
    id: str
    phone_numbers: list[str]
    text: str
    with_delivery_report: bool
    at: datetime
    # Why the phone could not send it, reported by `sms:failed`; None once sent.
    failure: str | None = None


@dataclass
class Webhook:
    id: str
    url: str
    event: str


@dataclass
class FakeAndroidGateway:
    login: str = LOGIN
    password: str = PASSWORD
    device_id: str = "ffffffffceb0b1db0000018e937c815b"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    sim_region: str = "VN"  # the SIM's country: numbers without + are read in it
    subscription_id: int | None = 1
    latency: float = 0.0
    webhook_key: str = WEBHOOK_KEY
    # What the phone reports of a message it could send.
    reports: tuple[str, ...] = ("sms:sent", "sms:delivered")
    # Report before answering the POST: the receipt then races the sender recording the send.
    report_first: bool = False
    messages: list[GatewayMessage] = field(default_factory=list)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    requests: int = 0
    _script: deque[Scripted] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _reporter: threading.Thread | None = None
    _outbox: queue.Queue[GatewayMessage | None] = field(default_factory=queue.Queue)
    _last_received_at: datetime | None = None
    _events: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- control -----------------------------------------------------------------------------
    def start(self) -> FakeAndroidGateway:
        self._server = http.serve(_make_handler(self))
        self._reporter = threading.Thread(target=self._report_loop, daemon=True)
        self._reporter.start()
        return self

    def stop(self) -> None:
        if self._reporter is not None:
            self._outbox.put(None)
            self._reporter.join(timeout=5)
        http.shutdown(self._server)

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return http.base_url(self._server)

    def register(self, url: str, event: str, webhook_id: str | None = None) -> Webhook:
        """What `POST /webhooks` does: replace the webhook `webhook_id`, or add a new one."""
        if not _webhook_url_allowed(url):
            raise ValueError("url must start with https:// or http://127.0.0.1")
        if event not in EVENTS:
            raise ValueError("Unsupported event")
        hook = Webhook(webhook_id or nanoid(), url, event)
        with self._lock:
            self.webhooks[hook.id] = hook
        return hook

    def report_to(self, webhook_url: str) -> None:
        """Register `webhook_url` for the delivery events, with our setup's fixed ids."""
        for event in ("sms:sent", "sms:delivered", "sms:failed"):
            self.register(webhook_url, event, NOTIFIER_WEBHOOK_IDS[event])

    def wait_reported(self) -> None:
        """Block until every report queued so far has been posted."""
        self._outbox.join()

    def fail_next(self, count: int, status: int = 500, message: str = "scripted failure") -> None:
        with self._lock:
            self._script.extend(Scripted(status, message) for _ in range(count))

    def drop_next_answer(self, count: int = 1) -> None:
        """Accept the next messages but lose the answer, as a flaky Wi-Fi link would."""
        with self._lock:
            self._script.extend(Scripted(202, drop=True) for _ in range(count))

    def fail_recipient_next(self, reason: str = "RESULT_ERROR_NO_SERVICE") -> None:
        """Accept the next message, then fail to send it: `sms:failed` with `reason`."""
        with self._lock:
            self._script.append(Scripted(202, fail_reason=reason))

    def sent_to(self, phone: str) -> list[GatewayMessage]:
        with self._lock:
            return [m for m in self.messages if phone in m.phone_numbers]

    def texts_to(self, phone: str) -> list[str]:
        return [m.text for m in self.sent_to(phone)]

    # -- webhook events ----------------------------------------------------------------------
    def envelope(
        self,
        event: str,
        payload: Mapping[str, Any],
        event_id: str | None = None,
        webhook_id: str | None = None,
    ) -> dict[str, Any]:
        """`WebHookEventDTO`: a new id for each webhook an event goes to."""
        return {
            "id": event_id or nanoid(),
            "webhookId": webhook_id or NOTIFIER_WEBHOOK_IDS.get(event, "hook"),
            "event": event,
            "deviceId": self.device_id,
            "payload": dict(payload),
        }

    def received_payload(
        self,
        sender: str,
        text: str,
        *,
        recipient: str | None = None,
        sim_number: int | None = 1,
        phone_number: bool = True,
    ) -> dict[str, Any]:
        """`SmsEventPayload.SmsReceived` for an SMS from `sender` (as the network shows it).

        `phone_number=False` leaves out the deprecated `phoneNumber`, as the app will.
        """
        now = datetime.now(self.zone)
        at = now.replace(microsecond=now.microsecond // 1000 * 1000)
        with self._lock:
            # Two SMS never carry the same time to the millisecond.
            if self._last_received_at is not None and at <= self._last_received_at:
                at = self._last_received_at + timedelta(milliseconds=1)
            self._last_received_at = at
        payload: dict[str, Any] = {
            "message": text,
            "receivedAt": gson_date(at),
            "messageId": received_message_id(sender, at, self.subscription_id, text),
            "sender": sender,
        }
        if recipient is not None:
            payload["recipient"] = recipient
        if sim_number is not None:
            payload["simNumber"] = sim_number
        if phone_number:
            payload["phoneNumber"] = sender
        return payload

    def received(self, phone: str, text: str, event_id: str | None = None) -> dict[str, Any]:
        """An `sms:received` event: `phone` as the phone shows it (often local, without +).

        The same `event_id` again gives the same event, as the app's retries are.
        """
        if event_id is not None and event_id in self._events:
            return self._events[event_id]
        envelope = self.envelope("sms:received", self.received_payload(phone, text), event_id)
        self._events[envelope["id"]] = envelope
        return envelope

    def status_payload(
        self, event: str, message_id: str, recipient: str, reason: str | None = None
    ) -> dict[str, Any]:
        """`SmsEventPayload.SmsSent` / `SmsDelivered` / `SmsFailed` for one recipient."""
        stamp = gson_date(datetime.now(self.zone))
        payload: dict[str, Any]
        if event == "sms:sent":
            payload = {"partsCount": self._parts_of(message_id), "sentAt": stamp}
        elif event == "sms:delivered":
            payload = {"deliveredAt": stamp}
        else:
            payload = {"failedAt": stamp, "reason": reason or "Unknown"}
        # No `sender` or `simNumber`: the message named no SIM, so the app knows neither.
        return {
            **payload,
            "messageId": message_id,
            "recipient": recipient,
            "phoneNumber": recipient,
        }

    def status_event(
        self, event: str, message_id: str, phone: str, reason: str | None = None
    ) -> dict[str, Any]:
        return self.envelope(event, self.status_payload(event, message_id, phone, reason))

    def _parts_of(self, message_id: str) -> int:
        with self._lock:
            texts = [m.text for m in self.messages if m.id == message_id]
        return sms.analyze(texts[0]).segments if texts else -1

    def emit(
        self, event: str, payload: Mapping[str, Any], session: requests.Session | None = None
    ) -> None:
        """Post `payload` to every webhook registered for `event`, as `WebHooksService.emit`."""
        with self._lock:
            hooks = [hook for hook in self.webhooks.values() if hook.event == event]
        for hook in hooks:
            envelope = self.envelope(event, payload, webhook_id=hook.id)
            # The real app retries later; a fake need not.
            with contextlib.suppress(requests.RequestException):
                post_event_http(hook.url, envelope, self.webhook_key, session=session)

    # -- serving -----------------------------------------------------------------------------
    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.login and password == self.password

    def _next_scripted(self) -> Scripted | None:
        with self._lock:
            self.requests += 1
            return self._script.popleft() if self._script else None

    def _accept(
        self, body: dict[str, Any], fail_reason: str | None
    ) -> tuple[int, dict[str, Any], GatewayMessage | None]:
        numbers = body.get("phoneNumbers")
        text = (body.get("textMessage") or {}).get("text") or body.get("message")
        if not isinstance(numbers, list) or not numbers or not isinstance(text, str):
            return 400, {"message": "Empty phone numbers list"}, None
        message_id = str(body.get("id") or nanoid())
        with self._lock:
            if any(m.id == message_id for m in self.messages):
                return 409, {"message": "message with such ID already exists"}, None
            message = GatewayMessage(
                id=message_id,
                phone_numbers=[str(n) for n in numbers],
                text=text,
                with_delivery_report=bool(body.get("withDeliveryReport", True)),
                at=datetime.now(self.zone),
                failure=fail_reason or self._send_failure(str(numbers[0])),
            )
            self.messages.append(message)
        return 202, _state(self.device_id, message), message

    def _send_failure(self, number: str) -> str | None:
        """`PhoneHelper.filterPhoneNumber` as the phone sends: None, or why it cannot."""
        try:
            parsed = phonenumbers.parse(number, self.sim_region)
        except phonenumbers.NumberParseException as exc:
            return f"sendSMS: {exc._msg}"
        if not phonenumbers.is_valid_number(parsed):
            return "sendSMS: Invalid phone number"
        kinds = (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        )
        if phonenumbers.number_type(parsed) not in kinds:
            return "sendSMS: Invalid phone number type"
        return None

    def _report(self, message: GatewayMessage, session: requests.Session | None = None) -> None:
        events = ("sms:failed",) if message.failure else self.reports
        for event in events:
            payload = self.status_payload(
                event, message.id, message.phone_numbers[0], message.failure
            )
            self.emit(event, payload, session)

    def _report_loop(self) -> None:
        session = requests.Session()
        while (message := self._outbox.get()) is not None:
            self._report(message, session)
            self._outbox.task_done()
        self._outbox.task_done()
        session.close()


def _webhook_url_allowed(url: str) -> bool:
    """`WebHooksService.replace`: https, or plain http to 127.0.0.1 only."""
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname == "127.0.0.1")


def _state(device_id: str, message: GatewayMessage) -> dict[str, Any]:
    """The message as `POST /messages` answers it: always `Pending`, nulls left out."""
    stamp = gson_date(message.at)
    return {
        "id": message.id,
        "deviceId": device_id,
        "state": "Pending",
        "isHashed": False,
        "isEncrypted": False,
        "textMessage": {"text": message.text},
        "recipients": [{"phoneNumber": n, "state": "Pending"} for n in message.phone_numbers],
        "states": {"Pending": stamp},
    }


def _make_handler(fake: FakeAndroidGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(http.QuietHandler):
        def _reply(self, status: int, payload: Any) -> None:
            body = gson_json(payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self) -> str | None:
            path = self.path.split("?")[0].rstrip("/")
            if path not in ("/messages", "/webhooks") and not path.startswith("/webhooks/"):
                self._reply(404, {"message": "not found"})
                return None
            if not fake._authorized(self.headers.get("Authorization")):
                self._reply(401, {"message": "Unauthorized"})
                return None
            return path

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                return json.loads(self.rfile.read(length))
            except ValueError:
                return None

        def do_GET(self) -> None:
            if self._route() == "/webhooks":
                with fake._lock:
                    hooks = list(fake.webhooks.values())
                self._reply(200, [_webhook_dto(hook) for hook in hooks])

        def do_DELETE(self) -> None:
            path = self._route()
            if path and path.startswith("/webhooks/"):
                with fake._lock:
                    fake.webhooks.pop(path.removeprefix("/webhooks/"), None)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def do_POST(self) -> None:
            path = self._route()
            if path == "/webhooks":
                self._post_webhook()
            elif path == "/messages":
                self._post_message()

        def _post_webhook(self) -> None:
            body = self._body()
            if not isinstance(body, dict) or not isinstance(body.get("url"), str):
                self._reply(400, {"message": "url is required"})
                return
            try:
                hook = fake.register(body["url"], str(body.get("event")), body.get("id"))
            except ValueError as exc:
                self._reply(400, {"message": str(exc)})
                return
            self._reply(201, _webhook_dto(hook))

        def _post_message(self) -> None:
            raw = self._body()
            if fake.latency:
                time.sleep(fake.latency)
            scripted = fake._next_scripted()
            if scripted is not None and scripted.status != 202:
                self._reply(scripted.status, {"message": scripted.message})
                return
            if raw is None:
                self._reply(400, {"message": "invalid JSON"})
                return
            fail_reason = scripted.fail_reason if scripted else None
            status, payload, message = fake._accept(
                raw if isinstance(raw, dict) else {}, fail_reason
            )
            if message is not None:
                if fake.report_first:
                    fake._report(message)
                else:
                    fake._outbox.put(message)
            if scripted is not None and scripted.drop:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._reply(status, payload)

    return Handler


def _webhook_dto(hook: Webhook) -> dict[str, Any]:
    return {"id": hook.id, "url": hook.url, "event": hook.event, "source": "Local"}


# -- posting signed events to the app ---------------------------------------------------------


def signed(
    envelope: Mapping[str, Any] | bytes, key: str = WEBHOOK_KEY, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers the app sends for `envelope`."""
    body = envelope if isinstance(envelope, bytes) else gson_json(envelope)
    headers = {
        "Content-Type": "application/json",
        **signing.ANDROID_GATEWAY.headers(key, body, timestamp),
    }
    return body, headers


def post_event(
    client: FlaskClient,
    envelope: Mapping[str, Any] | bytes,
    key: str = WEBHOOK_KEY,
    *,
    timestamp: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    """POST a signed event through a Flask test client."""
    body, signed_headers = signed(envelope, key, timestamp)
    return client.post(EVENTS_PATH, data=body, headers={**signed_headers, **(headers or {})})


def post_event_http(
    base_url: str,
    envelope: Mapping[str, Any] | bytes,
    key: str = WEBHOOK_KEY,
    *,
    timestamp: int | None = None,
    session: requests.Session | None = None,
    timeout: float = 30.0,
) -> requests.Response:
    """POST a signed event over real HTTP to a running app (`base_url`, or the full events URL)."""
    body, headers = signed(envelope, key, timestamp)
    url = base_url if base_url.endswith(EVENTS_PATH) else base_url.rstrip("/") + EVENTS_PATH
    return (session or requests).post(url, data=body, headers=headers, timeout=timeout)
