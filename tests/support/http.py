"""Local HTTP servers for tests: bound to 127.0.0.1, served from a daemon thread."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, quiet, and no Nagle delay.

    Without TCP_NODELAY the response body, written after the headers, waits for the client's
    delayed ACK: about 40 ms added to every answer, which real providers do not have.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


class _QuietServer(ThreadingHTTPServer):
    request_queue_size = 1024  # benchmarks open a hundred connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a timed-out or killed sender) is part of the scenarios.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """Start serving `handler` on 127.0.0.1 (`port` 0: any free port)."""
    server = _QuietServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def base_url(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def shutdown(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
