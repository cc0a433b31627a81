"""An SMS Gateway for Android look-alike on 127.0.0.1, for tests, benchmarks and fault drills.

It speaks the app's local API as the real phone does: `POST /messages` with basic auth and a
JSON body (`phoneNumbers`, `textMessage.text`, optional `id`), answered 202 with the message
state; 409 for an id it already has. Failures, latency and lost answers can be scripted. Like the
app, it can report `sms:sent` / `sms:delivered` to a webhook URL, signed with the webhook key.

`received`, `status_event`, `signed` and `post_event*` build and POST signed webhook events,
so a test or a benchmark can play the phone receiving a citizen's SMS.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from notifier.core import signing
from tests.support import http

LOGIN = "sms"
PASSWORD = "fake-gateway-password"
WEBHOOK_KEY = "fake-gateway-webhook-key"
EVENTS_PATH = "/gateways/android/events"


@dataclass
class Scripted:
    status: int
    message: str = "scripted failure"
    drop: bool = False  # accept the message, then close the connection without answering
    failed: bool = False  # answer 202 with the message already Failed


@dataclass
class GatewayMessage:
    id: str
    phone_numbers: list[str]
    text: str
    with_delivery_report: bool
    at: datetime


@dataclass
class FakeAndroidGateway:
    login: str = LOGIN
    password: str = PASSWORD
    device_id: str = "ffffffffceb0b1db0000018e937c815b"
    latency: float = 0.0
    # Where the "phone" reports what became of each message, as the app's webhooks do.
    webhook_url: str | None = None
    webhook_key: str = WEBHOOK_KEY
    reports: tuple[str, ...] = ("sms:sent", "sms:delivered")
    # Report before answering the POST: the receipt then races the sender recording the send.
    report_first: bool = False
    messages: list[GatewayMessage] = field(default_factory=list)
    requests: int = 0
    _script: deque[Scripted] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _reporter: threading.Thread | None = None
    _outbox: queue.Queue[GatewayMessage | None] = field(default_factory=queue.Queue)

    # -- control -----------------------------------------------------------------------------
    def start(self) -> FakeAndroidGateway:
        self._server = http.serve(_make_handler(self))
        if self.webhook_url:
            self.report_to(self.webhook_url)
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

    def report_to(self, webhook_url: str) -> None:
        """From now on, report what becomes of each message to `webhook_url`, as the app does."""
        self.webhook_url = webhook_url
        if self._reporter is None:
            self._reporter = threading.Thread(target=self._report_loop, daemon=True)
            self._reporter.start()

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

    def fail_recipient_next(self, message: str = "RESULT_ERROR_NO_SERVICE") -> None:
        with self._lock:
            self._script.append(Scripted(202, message, failed=True))

    def sent_to(self, phone: str) -> list[GatewayMessage]:
        with self._lock:
            return [m for m in self.messages if phone in m.phone_numbers]

    def texts_to(self, phone: str) -> list[str]:
        return [m.text for m in self.sent_to(phone)]

    # -- webhook events ----------------------------------------------------------------------
    def envelope(
        self, event: str, payload: Mapping[str, Any], event_id: str | None = None
    ) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "event": event,
            "id": event_id or uuid.uuid4().hex[:21],
            "payload": dict(payload),
            "webhookId": f"hook-{event}",
        }

    def received(self, phone: str, text: str, event_id: str | None = None) -> dict[str, Any]:
        """An `sms:received` event: `phone` as the phone shows it (often local, without +)."""
        return self.envelope(
            "sms:received",
            {
                "messageId": uuid.uuid5(uuid.NAMESPACE_OID, text).hex[:16],
                "message": text,
                "phoneNumber": phone,
                "sender": phone,
                "recipient": None,
                "simNumber": 1,
                "receivedAt": datetime.now(UTC).astimezone().isoformat(timespec="milliseconds"),
            },
            event_id,
        )

    def status_event(
        self, event: str, message_id: str, phone: str, reason: str | None = None
    ) -> dict[str, Any]:
        stamp = datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")
        key = {"sms:sent": "sentAt", "sms:delivered": "deliveredAt"}.get(event, "failedAt")
        payload: dict[str, Any] = {
            "messageId": message_id,
            "phoneNumber": phone,
            "simNumber": None,
            key: stamp,
        }
        if reason is not None:
            payload["reason"] = reason
        return self.envelope(event, payload)

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

    def _accept(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], GatewayMessage | None]:
        numbers = body.get("phoneNumbers")
        text = (body.get("textMessage") or {}).get("text") or body.get("message")
        if not isinstance(numbers, list) or not numbers or not isinstance(text, str):
            return 400, {"message": "phoneNumbers and textMessage.text are required"}, None
        if not all(isinstance(n, str) and n.startswith("+") for n in numbers):
            return 400, {"message": "invalid phone number: E.164 expected"}, None
        message_id = str(body.get("id") or uuid.uuid4().hex[:21])
        with self._lock:
            if any(m.id == message_id for m in self.messages):
                return 409, {"message": "message with such ID already exists"}, None
            message = GatewayMessage(
                id=message_id,
                phone_numbers=list(numbers),
                text=text,
                with_delivery_report=bool(body.get("withDeliveryReport", True)),
                at=datetime.now(UTC),
            )
            self.messages.append(message)
        return 202, _state(self.device_id, message, "Pending"), message

    def _report(self, message: GatewayMessage, session: requests.Session | None = None) -> None:
        assert self.webhook_url is not None
        for event in self.reports:
            envelope = self.status_event(event, message.id, message.phone_numbers[0])
            # The real app retries later; a fake need not.
            with contextlib.suppress(requests.RequestException):
                post_event_http(self.webhook_url, envelope, self.webhook_key, session=session)

    def _report_loop(self) -> None:
        session = requests.Session()
        while (message := self._outbox.get()) is not None:
            self._report(message, session)
            self._outbox.task_done()
        self._outbox.task_done()
        session.close()


def _state(
    device_id: str, message: GatewayMessage, state: str, error: str | None = None
) -> dict[str, Any]:
    stamp = message.at.isoformat().replace("+00:00", "Z")
    recipient: dict[str, Any] = {"phoneNumber": message.phone_numbers[0], "state": state}
    if error:
        recipient["error"] = error
    return {
        "id": message.id,
        "deviceId": device_id,
        "state": state,
        "isHashed": False,
        "isEncrypted": False,
        "recipients": [recipient],
        "states": {state: stamp},
        "createdAt": stamp,
    }


def _make_handler(fake: FakeAndroidGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(http.QuietHandler):
        def _reply(self, status: int, payload: Mapping[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path.split("?")[0].rstrip("/") != "/messages":
                self._reply(404, {"message": "not found"})
                return
            if not fake._authorized(self.headers.get("Authorization")):
                self._reply(401, {"message": "Unauthorized"})
                return
            if fake.latency:
                time.sleep(fake.latency)
            scripted = fake._next_scripted()
            if scripted is not None and not (scripted.drop or scripted.failed):
                self._reply(scripted.status, {"message": scripted.message})
                return
            try:
                body = json.loads(raw)
            except ValueError:
                self._reply(400, {"message": "invalid JSON"})
                return
            status, payload, message = fake._accept(body if isinstance(body, dict) else {})
            if message is not None and scripted is not None and scripted.failed:
                payload = _state(fake.device_id, message, "Failed", scripted.message)
            elif message is not None and fake.webhook_url:
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


# -- posting signed events to the app ---------------------------------------------------------


def signed(
    envelope: Mapping[str, Any] | bytes, key: str = WEBHOOK_KEY, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers the app sends for `envelope`."""
    body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
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
