"""Start and stop a whole notifier on 127.0.0.1 for benchmarks and fault-injection runs.

Everything here is ours and local: a `redis-server` on a free port, the fake Twilio API in its
own process, the app under gunicorn, N queue workers and the scheduler, all with the same
configuration. The database is `BENCH_DATABASE_URL` (PostgreSQL: a fresh schema per run, dropped
afterwards) or else a SQLite file in the run's folder. Every process can be stopped (SIGTERM, then
SIGKILL after a bounded wait), killed outright and restarted, and reports its peak RSS.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
WEBHOOK_SECRET = "bench-webhook-secret"
STOP_TIMEOUT = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(every)
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s")


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


@dataclass
class Process:
    """One child process in its own process group, logging to a file."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_dir: Path
    ready: Callable[[Process], bool] | None = None
    ready_timeout: float = 30.0
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} is not running"
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            list(self.argv),
            cwd=ROOT,
            env=dict(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if self.ready is not None:
            wait_until(
                lambda: self._check_alive() and self.ready is not None and self.ready(self),
                self.ready_timeout,
                self.name,
            )
        return self

    def _check_alive(self) -> bool:
        if not self.alive:
            raise RuntimeError(f"{self.name} exited; see {self.log_path}")
        return True

    def signal(self, signum: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL if it is still there after `timeout` seconds."""
        if self.popen is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return self.kill()

    def kill(self) -> int | None:
        if self.popen is None:
            return None
        self.signal(signal.SIGKILL)
        return self.popen.wait(STOP_TIMEOUT)

    def restart(self) -> Process:
        self.stop()
        return self.start()

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)


@dataclass
class BenchDatabase:
    """A private database for one run: a PostgreSQL schema or a SQLite file."""

    base_url: str | None
    folder: Path
    url: str = ""
    schema: str = ""

    def create(self) -> BenchDatabase:
        from notifier import models
        from notifier.core.db import Database

        if self.base_url and self.base_url.startswith("postgresql"):
            self.schema = f"bench_{uuid.uuid4().hex[:8]}"
            engine = create_engine(self.base_url)
            with engine.begin() as connection:
                connection.execute(text(f"CREATE SCHEMA {self.schema}"))
            engine.dispose()
            separator = "&" if "?" in self.base_url else "?"
            self.url = f"{self.base_url}{separator}options=-csearch_path%3D{self.schema}"
        else:
            self.url = f"sqlite:///{self.folder / 'bench.sqlite3'}"
        database = Database(self.url)
        models.create_all(database)
        database.dispose()
        return self

    @property
    def kind(self) -> str:
        return "postgresql" if self.schema else "sqlite"

    def drop(self) -> None:
        if self.schema and self.base_url:
            engine = create_engine(self.base_url)
            with engine.begin() as connection:
                connection.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            engine.dispose()


@dataclass
class Stack:
    """A notifier on 127.0.0.1: start what a benchmark needs, everything stops on exit."""

    settings: dict[str, str] = field(default_factory=dict)
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="notifier-bench-")))
    processes: list[Process] = field(default_factory=list)
    redis_url: str = ""
    twilio_url: str = ""
    web_url: str = ""
    database: BenchDatabase | None = None

    # -- pieces ----------------------------------------------------------------------------------
    def start_redis(self) -> Process:
        port = free_port()
        from tests.support.processes import redis_argv

        argv = redis_argv(port, self.folder)
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        return self._start("redis", argv, ready=lambda _: self.redis().ping())

    def redis(self) -> Any:
        from redis import Redis

        return Redis.from_url(self.redis_url, socket_connect_timeout=1)

    def start_fake_twilio(self, latency: float = 0.0, rate_limit: int | None = None) -> Process:
        argv = [sys.executable, "-m", "tests.support.fake_twilio", "--latency", str(latency)]
        if rate_limit:
            argv += ["--rate-limit", str(rate_limit)]
        return self._start("fake-twilio", argv, ready=self._read_twilio_url)

    def _read_twilio_url(self, process: Process) -> bool:
        lines = process.log_path.read_text().split()
        urls = [line for line in lines if line.startswith("http://127.0.0.1:")]
        if urls:
            self.twilio_url = urls[-1]
        return bool(urls)

    def twilio_stats(self) -> dict[str, Any]:
        return get_json(f"{self.twilio_url}/_bench/stats")

    def twilio_arrivals(self, phones: Sequence[str]) -> dict[str, float]:
        return get_json(
            f"{self.twilio_url}/_bench/arrivals?to={','.join(phones)}".replace("+", "%2B")
        )

    def create_database(self) -> BenchDatabase:
        self.database = BenchDatabase(os.environ.get("BENCH_DATABASE_URL"), self.folder).create()
        return self.database

    def env(self, **extra: str) -> dict[str, str]:
        assert self.database is not None, "create_database() first"
        values = {
            "DATABASE_URL": self.database.url,
            "REDIS_URL": self.redis_url,
            "SECRET_KEY": "bench-secret-key",
            "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "fake-auth-token",
            "TWILIO_FROM": "UBND-XA",
            "TWILIO_API_BASE_URL": self.twilio_url or "http://127.0.0.1:9",
            "DOSSIER_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "QUIET_HOURS": "off",
            "LOG_LEVEL": "WARNING",
            **self.settings,
            **extra,
        }
        env = {k: v for k, v in os.environ.items() if k not in values}
        env.update(values)
        env["PYTHONPATH"] = str(ROOT)
        return env

    def start_web(
        self, workers: int | None = None, threads: int | None = None, **extra: str
    ) -> Process:
        """gunicorn with the project's gunicorn.conf.py (its defaults unless told otherwise)."""
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py")]
        argv += ["wsgi:app", "--bind", f"127.0.0.1:{port}"]
        if workers is not None:
            argv += ["--workers", str(workers)]
        if threads is not None:
            argv += ["--threads", str(threads)]
        return self._start(
            "web",
            argv,
            env=self.env(WEB_ACCESS_LOG="", **extra),
            ready=lambda _: get_json(f"{self.web_url}/healthz")["status"] == "ok",
        )

    def web_worker_pids(self) -> list[int]:
        web = next(p for p in self.processes if p.name == "web")
        return children(web.pid)

    def start_workers(self, count: int, **extra: str) -> list[Process]:
        from rq import Worker

        started = []
        for n in range(count):
            argv = [sys.executable, "-m", "flask", "--app", "wsgi", "notifier", "worker"]
            started.append(self._start(f"worker-{n + 1}", argv, env=self.env(**extra)))
        wait_until(
            lambda: Worker.count(connection=self.redis()) >= count, 30, f"{count} queue worker(s)"
        )
        return started

    def start_scheduler(self, **extra: str) -> Process:
        argv = [sys.executable, "-m", "flask", "--app", "wsgi", "notifier", "scheduler"]
        return self._start("scheduler", argv, env=self.env(**extra))

    def _start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        ready: Callable[[Process], bool] | None = None,
    ) -> Process:
        process = Process(name, argv, env or self.env_or_os(), self.folder, ready)
        self.processes.append(process)
        return process.start()

    def env_or_os(self) -> dict[str, str]:
        return self.env() if self.database else {**os.environ, "PYTHONPATH": str(ROOT)}

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.database is not None:
            self.database.drop()
        shutil.rmtree(self.folder, ignore_errors=True)

    @contextlib.contextmanager
    def app_services(self) -> Iterator[Any]:
        """The same Services a worker builds, in this process (to create or count messages)."""
        from notifier.core.config import Settings
        from notifier.core.runtime import Services

        settings = Settings.from_env(environ=self.env())
        services = Services.from_settings(settings)
        try:
            yield services
        finally:
            services.close()


def gunicorn_settings() -> dict[str, Any]:
    """The project's gunicorn.conf.py, as gunicorn reads it (with this environment)."""
    import runpy

    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def print_table(title: str, rows: Sequence[tuple[str, Any]]) -> None:
    print(f"\n== {title}")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"  {label.ljust(width)}  {shown}")


def write_result(name: str, result: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {
        "benchmark": name,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpus": os.cpu_count(),
        "database": "postgresql" if os.environ.get("BENCH_DATABASE_URL") else "sqlite",
        **result,
    }
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    return path
