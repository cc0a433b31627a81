"""An HTTP endpoint on 127.0.0.1 that records what is POSTed to it and answers as scripted.

Stands in for an API client's callback URL.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http import QuietHandler, base_url, serve, shutdown


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then `default_status`)."""

    default_status: int = 200
    port: int = 0  # 0: any free port
    received: list[Received] = field(default_factory=list)
    _script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        self._server = serve(_handler(self), self.port)
        self.port = int(self._server.server_address[1])
        return self

    def stop(self) -> None:
        shutdown(self._server)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"{base_url(self._server)}/callbacks"

    def answer(self, *statuses: int, **headers: str) -> None:
        with self._lock:
            self._script.extend((status, dict(headers)) for status in statuses)

    def _next(self, received: Received) -> tuple[int, dict[str, str]]:
        with self._lock:
            self.received.append(received)
            return self._script.popleft() if self._script else (self.default_status, {})


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers = receiver._next(Received(self.path, dict(self.headers), body))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    return Handler
