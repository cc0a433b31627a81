"""gunicorn settings of the `web` process (Procfile), also used by the benchmarks.

Threads rather than one process per request: keep-alive connections from the one-stop-shop
system and providers stay open without holding a worker. Few threads per process: a request
spends part of its time waiting on the database, which another thread covers, while more
threads only contend for the GIL (bench/ingest.py served fewer events a second with 16
threads than with 2 or 4).
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 30
backlog = 2048
accesslog = os.environ.get("WEB_ACCESS_LOG", "-") or None
