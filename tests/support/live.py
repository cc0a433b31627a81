"""The app served over real HTTP on 127.0.0.1 by a threaded werkzeug server, in this process."""

from __future__ import annotations

import threading
from dataclasses import dataclass

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
