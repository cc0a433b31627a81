"""gunicorn settings of the `web` process (Procfile), also used by the benchmarks.

Threads rather than one process per request: keep-alive connections from the one-stop-shop
system and providers stay open without holding a worker. 16 threads per process: the webhook
writes the events of concurrent requests together (`notifier.combining`), so the more requests
a process holds, the fewer transactions it pays for; bench/ingest.py served about 180 events/s
per process with 4 threads, 300 with 16 and fewer again with 32 (the GIL).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "16"))
keepalive = 30
backlog = 2048
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None


def post_worker_init(worker: object) -> None:
    """Once the worker has loaded the app (not in the master, which never loads it)."""
    from notifier.core.runtime import freeze_startup_objects

    freeze_startup_objects()
