"""Real HTTP servers on 127.0.0.1 in this process: the app (threaded werkzeug) and the fakes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class LiveServer:
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def serve(app: Flask) -> LiveServer:
    """Start serving `app` (one thread per request, as gunicorn's threads would) on a free port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return LiveServer(app, server, thread)


def start_http_server(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Serve `handler` on a free port of 127.0.0.1, one thread per request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    return server


def stop_http_server(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def http_url(server: ThreadingHTTPServer | None) -> str:
    assert server is not None, "the server is not started"
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"
