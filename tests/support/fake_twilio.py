"""A Twilio-compatible Messages API on 127.0.0.1, for tests and benchmarks.

It speaks the real wire format (form-encoded POST, JSON resources, Twilio error bodies) so the
official SDK is exercised over real HTTP, and refuses what Twilio refuses: a create without
`To` (21604), without `From` or `MessagingServiceSid` (21603), without `Body` (21602), or with
a body over 1,600 characters (21617, counted in UTF-16 units: an emoji counts 2). Behaviour
can be scripted: failures, latency, rate limits. It also signs webhooks as Twilio does, with
the auth token or with a webhook SharedKey (`webhook_headers`).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from twilio.request_validator import RequestValidator

from tests.support.http import QuietHandler, base_url, serve, shutdown

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "fake-auth-token"
MAX_BODY_UNITS = 1600


@dataclass(frozen=True)
class SharedKey:
    """A webhook SharedKey of Twilio's webhooks configuration, as a Setting applies it."""

    id: str
    secret: str
    algorithm: str = "HMAC_SHA256"


_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")


@dataclass
class ScriptedResponse:
    status: int
    code: int | None = None
    message: str = ""
    retry_after: int | None = None


@dataclass
class ReceivedMessage:
    sid: str
    to: str
    body: str
    sender: str
    status_callback: str | None
    at: datetime


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    latency: float = 0.0
    rate_limit_per_second: int | None = None
    messages: list[ReceivedMessage] = field(default_factory=list)
    requests: int = 0
    rejected_429: int = 0
    # Time-based faults: every create answers `_outage` until `_outage_until`; until
    # `_hang_until` every create waits `_hang_seconds` first (then succeeds, too late).
    _outage: ScriptedResponse | None = None
    _outage_until: float = 0.0
    _hang_until: float = 0.0
    _hang_seconds: float = 0.0
    connections: int = 0  # TCP connections accepted (persistent clients reuse theirs)
    in_flight: int = 0
    max_in_flight: int = 0  # most requests handled at the same time
    # Called (from the serving thread) after each message is accepted.
    on_message: Callable[[ReceivedMessage], None] | None = None
    _script: deque[ScriptedResponse] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _window: deque[float] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None

    # -- control -----------------------------------------------------------------------------
    def start(self) -> FakeTwilio:
        self._server = serve(_make_handler(self))
        return self

    def stop(self) -> None:
        shutdown(self._server)

    @property
    def url(self) -> str:
        assert self._server is not None
        return base_url(self._server)

    def fail_next(
        self,
        count: int,
        status: int = 500,
        code: int | None = None,
        message: str = "scripted failure",
        retry_after: int | None = None,
    ) -> None:
        with self._lock:
            for _ in range(count):
                self._script.append(ScriptedResponse(status, code, message, retry_after))

    def fail_for(
        self,
        seconds: float,
        status: int = 500,
        code: int | None = None,
        message: str = "scripted outage",
        retry_after: int | None = None,
    ) -> None:
        """Answer every create with this error for `seconds` from now."""
        with self._lock:
            self._outage = ScriptedResponse(status, code, message, retry_after)
            self._outage_until = time.monotonic() + seconds

    def hang_for(self, seconds: float, delay: float) -> None:
        """For `seconds` from now, accept each create only after `delay` (past a client timeout)."""
        with self._lock:
            self._hang_until = time.monotonic() + seconds
            self._hang_seconds = delay

    def sent_to(self, phone: str) -> list[ReceivedMessage]:
        with self._lock:
            return [m for m in self.messages if m.to == phone]

    def stats(self) -> dict[str, Any]:
        """Counters for benchmarks (served at GET /_bench/stats)."""
        with self._lock:
            return {
                "requests": self.requests,
                "rejected_429": self.rejected_429,
                "messages": len(self.messages),
                "first_at": self.messages[0].at.timestamp() if self.messages else None,
                "last_at": self.messages[-1].at.timestamp() if self.messages else None,
                "connections": self.connections,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }

    def arrivals(self, phones: set[str]) -> dict[str, float]:
        """When the first message to each of `phones` arrived (unix time)."""
        found: dict[str, float] = {}
        with self._lock:
            for message in self.messages:
                if message.to in phones and message.to not in found:
                    found[message.to] = message.at.timestamp()
        return found

    def status_callback_signature(self, url: str, params: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(url, params))

    def webhook_headers(
        self, url: str, params: dict[str, str], shared_key: SharedKey | None = None
    ) -> dict[str, str]:
        """The signature headers of a webhook to `url`: with the auth token (HMAC-SHA1), or,
        under a Webhook Rule whose Setting has a SharedKey, with its secret and algorithm."""
        if shared_key is None:
            return {"X-Twilio-Signature": self.status_callback_signature(url, params)}
        validator = RequestValidator(shared_key.secret)
        return {
            "X-Twilio-Signature": validator.compute_signature(url, params, shared_key.algorithm),
            "X-Twilio-Webhooks-Signature-Settings": (
                f"key={shared_key.id},algorithm={shared_key.algorithm}"
            ),
        }

    # -- serving -----------------------------------------------------------------------------
    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.account_sid and password == self.auth_token

    def _next_scripted(self) -> ScriptedResponse | None:
        with self._lock:
            self.requests += 1
            if self._script:
                return self._script.popleft()
            if self._outage is not None and time.monotonic() < self._outage_until:
                if self._outage.status == 429:
                    self.rejected_429 += 1
                return self._outage
            if self.rate_limit_per_second:
                now = time.monotonic()
                while self._window and now - self._window[0] >= 1.0:
                    self._window.popleft()
                if len(self._window) >= self.rate_limit_per_second:
                    self.rejected_429 += 1
                    return ScriptedResponse(429, 20429, "Too Many Requests", retry_after=1)
                self._window.append(now)
        return None

    def _create(self, form: dict[str, str]) -> dict[str, Any]:
        now = datetime.now(UTC)
        sid = "SM" + uuid.uuid4().hex
        received = ReceivedMessage(
            sid=sid,
            to=form.get("To", ""),
            body=form.get("Body", ""),
            sender=form.get("From") or form.get("MessagingServiceSid", ""),
            status_callback=form.get("StatusCallback"),
            at=now,
        )
        with self._lock:
            self.messages.append(received)
        if self.on_message is not None:
            self.on_message(received)
        return _resource(self.account_sid, received)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _list(self, query: dict[str, list[str]]) -> dict[str, Any]:
        to = (query.get("To") or [None])[0]
        since = (query.get("DateSent>") or [None])[0]
        with self._lock:
            found = [m for m in self.messages if to is None or m.to == to]
        if since:
            threshold = datetime.fromisoformat(since.replace("Z", "+00:00"))
            found = [m for m in found if m.at >= threshold]
        return {
            "messages": [_resource(self.account_sid, m) for m in reversed(found)],
            "next_page_uri": None,
            "page": 0,
            "page_size": len(found),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages.json",
        }


def _resource(account_sid: str, message: ReceivedMessage) -> dict[str, Any]:
    date = format_datetime(message.at)
    return {
        "sid": message.sid,
        "account_sid": account_sid,
        "to": message.to,
        "from": message.sender,
        "body": message.body,
        "status": "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "date_created": date,
        "date_updated": date,
        "date_sent": date,
        "error_code": None,
        "error_message": None,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{message.sid}.json",
    }


def _refusal(form: dict[str, str]) -> tuple[int, str] | None:
    """Twilio's error for a create it would refuse, or None."""
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not (form.get("From") or form.get("MessagingServiceSid")):
        return 21603, "A 'From' phone number is required."
    body = form.get("Body", "")
    if not body:
        return 21602, "Message body is required."
    if len(body.encode("utf-16-le", "surrogatepass")) // 2 > MAX_BODY_UNITS:
        return 21617, "The concatenated message body exceeds the 1600 character limit."
    return None


def _make_handler(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def setup(self) -> None:
            super().setup()
            with fake._lock:
                fake.connections += 1

        def _reply(
            self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _route(self) -> re.Match[str] | None:
            match = _MESSAGES_PATH.match(urlparse(self.path).path)
            if match is None:
                self._reply(404, {"code": 20404, "message": "Not found", "status": 404})
                return None
            if not fake._authorized(self.headers.get("Authorization")):
                self._reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return None
            return match

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/_bench/stats":
                self._reply(200, fake.stats())
                return
            if url.path == "/_bench/arrivals":
                phones = set(",".join(parse_qs(url.query).get("to", [])).split(","))
                self._reply(200, fake.arrivals(phones))
                return
            if self._route():
                self._reply(200, fake._list(parse_qs(urlparse(self.path).query)))

        def do_POST(self) -> None:
            fake._enter()
            try:
                self._post()
            finally:
                fake._leave()

        def _post(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            if not self._route():
                return
            if fake.latency:
                time.sleep(fake.latency)
            if time.monotonic() < fake._hang_until:
                time.sleep(fake._hang_seconds)
            scripted = fake._next_scripted()
            if scripted is not None:
                headers = {"Retry-After": str(scripted.retry_after)} if scripted.retry_after else {}
                self._reply(
                    scripted.status,
                    {
                        "code": scripted.code,
                        "message": scripted.message,
                        "status": scripted.status,
                        "more_info": f"https://www.twilio.com/docs/errors/{scripted.code}",
                    },
                    headers,
                )
                return
            form = {key: values[0] for key, values in parse_qs(raw).items()}
            refused = _refusal(form)
            if refused is not None:
                code, message = refused
                self._reply(400, {"code": code, "message": message, "status": 400})
                return
            self._reply(201, fake._create(form))

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve a fake on 127.0.0.1 until killed: `python -m tests.support.fake_twilio --latency 0.1`."""
    import argparse
    import signal
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=int, default=None)
    args = parser.parse_args(argv)
    fake = FakeTwilio(latency=args.latency, rate_limit_per_second=args.rate_limit).start()
    print(fake.url, flush=True)  # the harness reads the address from here
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    fake.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
