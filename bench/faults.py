"""Fault suite: the real processes on 127.0.0.1, one fault at a time, counting what reaches the
provider. Nothing may be lost and nothing sent twice.

    python -m bench.faults            # every scenario (make faults)
    python -m bench.faults --short    # a few scenarios in under two minutes (make test, CI)
    python -m bench.faults --only worker-sigkill-mid-send

Each scenario sends a known workload of signed dossier events (one citizen phone per event) to
gunicorn, with the web, RQ worker and scheduler processes running as in production against a
PostgreSQL cluster, a Redis server and a fake Twilio of the suite's own. The sender behaves like
the one-stop-shop system: it retries an event until it gets a 2xx. The table counts, per
scenario, the SMS the fake provider received: delivered (distinct phones), duplicates, lost,
and the time from the end of the fault to the last expected SMS. Results go to
bench/results/faults.json. Exit status 1 when any scenario lost or doubled a message.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from notifier.core import signing
from tests.support.fake_twilio import FakeTwilio
from tests.support.processes import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "faults.json"
SECRET = "faults-webhook-secret"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


# -- the launcher: servers and processes on 127.0.0.1 --------------------------------------------


class PostgresCluster:
    """A PostgreSQL cluster of the suite's own (initdb + pg_ctl) on a free port."""

    def __init__(self, workdir: Path) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not versions:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.bin = versions[-1].parent
        self.port = free_port()
        self.data = workdir / "pg"
        self.log = workdir / "pg.log"

    def _run(self, *argv: str) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def init(self) -> PostgresCluster:
        self.data.mkdir()
        self.log.touch()
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres")
            shutil.chown(self.log, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "notifier")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/notifier"


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    wanted: bool = True  # the supervisor restarts it when it exits while wanted

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, wait: float = 15) -> None:
        self.wanted = False
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(sig)
            try:
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class Stack:
    """Redis, PostgreSQL, a fake Twilio, gunicorn, RQ workers and schedulers, supervised like
    systemd would (a process that exits is started again)."""

    def __init__(self, workdir: Path, use_postgres: bool = True) -> None:
        self.workdir = workdir
        self.fake = FakeTwilio().start()
        self.redis = RedisServer().start()
        self.postgres: PostgresCluster | None = None
        if use_postgres:
            self.postgres = PostgresCluster(workdir).init()
            database_url = self.postgres.url
        else:
            database_url = f"sqlite:///{workdir / 'notifier.sqlite3'}"
        self.web_port = free_port()
        self.clock_file = workdir / "clock"
        self.clock_file.write_text("0\n")
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database_url,
            "REDIS_URL": self.redis.url,
            "SECRET_KEY": "faults-secret-key",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.web_port}",
            "DOSSIER_WEBHOOK_SECRET": SECRET,
            "SMS_PROVIDER": "twilio",
            "TWILIO_ACCOUNT_SID": self.fake.account_sid,
            "TWILIO_AUTH_TOKEN": self.fake.auth_token,
            "TWILIO_FROM": "UBND-XA",
            "TWILIO_API_BASE_URL": self.fake.url,
            "QUIET_HOURS": "off",
            "SEND_RETRY_BASE_SECONDS": "1",
            "SEND_MAX_ATTEMPTS": "12",
            "PROVIDER_TIMEOUT_SECONDS": "2",
            "SWEEP_GRACE_SECONDS": "3",
            "SENDING_STALE_SECONDS": "8",
            "LOG_LEVEL": os.environ.get("FAULTS_LOG_LEVEL", "WARNING"),
        }
        from notifier.core.db import Database

        self.database = Database(database_url)
        self.processes: dict[str, Process] = {}
        self._prefix = [sys.executable, "-m"]
        self._supervising = threading.Event()
        self._supervisor: threading.Thread | None = None

    # processes
    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
            cwd=ROOT,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def _flask(self, *args: str) -> list[str]:
        return [*self._prefix, "flask", "--app", "wsgi", "notifier", *args]

    def start_app(
        self,
        workers: int = 2,
        schedulers: int = 1,
        env: dict[str, str] | None = None,
        jumped_clock: bool = False,
    ) -> None:
        env = {**self.env, **(env or {})}
        self._prefix = (
            [sys.executable, "-m", "bench.jumped_clock", str(self.clock_file)]
            if jumped_clock
            else [sys.executable, "-m"]
        )
        gunicorn = [
            *self._prefix,
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),  # as in production: its workers and threads
            "wsgi:app",
            "--bind",
            f"127.0.0.1:{self.web_port}",
            "--graceful-timeout",
            "5",
        ]
        self.processes = {"web": Process("web", gunicorn, env, self.workdir / "web.log")}
        for n in range(workers):
            name = f"worker-{n}"
            self.processes[name] = Process(
                name, self._flask("worker"), env, self.workdir / f"{name}.log"
            )
        for n in range(schedulers):
            name = f"scheduler-{n}"
            self.processes[name] = Process(
                name, self._flask("scheduler"), env, self.workdir / f"{name}.log"
            )
        for process in self.processes.values():
            process.start()
        self._wait_web()
        self._supervising.set()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def stop_app(self) -> None:
        self._supervising.clear()
        if self._supervisor is not None:
            self._supervisor.join()
        for process in self.processes.values():
            process.stop()

    def _supervise(self) -> None:
        while self._supervising.is_set():
            for process in self.processes.values():
                if process.wanted and not process.alive():
                    process.restarts += 1
                    process.start()
            time.sleep(0.5)

    def _wait_web(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("the web process did not come up; see web.log")

    def restarts(self) -> int:
        return sum(p.restarts for p in self.processes.values())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # faults
    def kill_redis(self) -> None:
        assert self.redis.process is not None
        self.redis.process.kill()
        self.redis.process.wait()
        self.redis.process = None

    def start_redis(self) -> None:
        self.redis.start()

    def close(self) -> None:
        self.stop_app()
        self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop("immediate")
        self.fake.stop()
        self.database.dispose()


# -- the workload and its count ----------------------------------------------------------------


@dataclass
class Workload:
    """N dossier events, each for its own citizen phone, so each SMS can be counted."""

    name: str
    size: int
    first: int  # phones and codes are numbered from here; scenarios never overlap
    changes: dict[str, Any] = field(default_factory=dict)
    settled_at: float | None = None  # when every SMS was out and every row settled
    unsettled: int = 0

    def phone(self, i: int) -> str:
        return f"+84912{self.first + i:06d}"

    def phones(self) -> set[str]:
        return {self.phone(i) for i in range(self.size)}

    def body(self, i: int) -> bytes:
        n = self.first + i
        event = {
            "event_id": f"{self.name}-{i}",
            "occurred_at": "2025-07-14T08:30:00+07:00",
            "dossier": {
                "code": f"000.00.31.H26-250714-{n % 10000:04d}{n // 10000:02d}",
                "procedure": "Chứng thực bản sao từ bản chính",
                "status": "received",
                "due_date": "2025-07-16",
            },
            "citizen": {"name": "Nguyễn Văn An", "phone": f"0912{n:06d}", "language": "vi"},
        }
        event["dossier"].update(self.changes)
        return json.dumps(event, ensure_ascii=False).encode()


@dataclass
class Sender:
    """The one-stop-shop system: POSTs each event until it gets a 2xx, as a webhook sender does."""

    base_url: str
    clock_offset: float = 0.0  # the server's clock minus ours (the clock-jump scenario)
    retries: int = 0
    refused: int = 0

    def post(self, body: bytes, deadline: float) -> int:
        with requests.Session() as session:
            while True:
                try:
                    response = session.post(
                        f"{self.base_url}/api/v1/dossier-events",
                        data=body,
                        headers={
                            **signing.signed_headers(
                                SECRET, body, int(time.time() + self.clock_offset)
                            ),
                            "Content-Type": "application/json",
                        },
                        timeout=10,
                    )
                    if response.status_code < 300:
                        return response.status_code
                    if response.status_code < 500 and response.status_code != 429:
                        self.refused += 1
                        return response.status_code
                except requests.RequestException:
                    pass
                self.retries += 1
                if time.monotonic() > deadline:
                    return 0
                time.sleep(0.3)

    def send_all(
        self, workload: Workload, concurrency: int = 8, copies: int = 1, pace: float = 0.0
    ) -> None:
        """Every event (`copies` times each); `pace` seconds between events per connection."""
        deadline = time.monotonic() + 180
        bodies = [workload.body(i) for i in range(workload.size) for _ in range(copies)]

        def post(body: bytes) -> int:
            time.sleep(pace)
            return self.post(body, deadline)

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, bodies))


@dataclass
class Outcome:
    scenario: str
    expected: int
    delivered: int
    duplicates: int
    lost: int
    unsettled: int  # rows left queued/sending in the database at the end
    recover_seconds: float | None
    sender_retries: int = 0
    process_restarts: int = 0
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.duplicates == 0 and self.unsettled == 0


def count(fake: FakeTwilio, phones: set[str]) -> tuple[int, int, float | None]:
    """(distinct phones reached, duplicate SMS, monotonic time of the last one)."""
    with fake._lock:
        mine = [m for m in fake.messages if m.to in phones]
    reached = {m.to for m in mine}
    last = max((m.at for m in mine), default=None)
    return len(reached), len(mine) - len(reached), last.timestamp() if last else None


def unsettled(stack: Stack, workload: Workload) -> int:
    """The workload's messages the database still holds as queued, deferred or sending."""
    from sqlalchemy import func, select

    from notifier.models import Message

    try:
        with stack.database.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(Message)
                    .where(
                        Message.phone.in_(workload.phones()),
                        Message.status.in_(("queued", "deferred", "sending")),
                    )
                )
                or 0
            )
    except Exception:  # the database may be the thing restarting
        return -1


def wait_for(stack: Stack, workload: Workload, timeout: float, settle: float = 3) -> None:
    """Until every phone got its SMS and the database shows every message settled (sent, not
    still `sending`), then a little longer for late duplicates; or until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count(stack.fake, workload.phones())[0] >= workload.size and not unsettled(
            stack, workload
        ):
            workload.settled_at = time.time()
            break
        time.sleep(0.25)
    time.sleep(settle)
    workload.unsettled = unsettled(stack, workload)
    if workload.unsettled > 0:
        describe_unsettled(stack, workload)


def describe_unsettled(stack: Stack, workload: Workload) -> None:
    """Write each unsettled message's history to `<workload>-unsettled.log` in the logs folder,
    so that a failed run says where its messages stopped."""
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from notifier.models import Message

    with stack.database.session() as session:
        found = session.scalars(
            select(Message)
            .options(selectinload(Message.history))
            .where(
                Message.phone.in_(workload.phones()),
                Message.status.in_(("queued", "deferred", "sending")),
            )
        ).all()
        lines = [
            f"{m.id} {m.status} attempts={m.attempts} next_attempt_at={m.next_attempt_at} "
            f"provider={m.provider} reason={m.failure_reason} job={job_state(stack, m.id)}: "
            + ", ".join(
                f"{h.at:%H:%M:%S.%f} {h.status} ({h.source}: {h.detail})" for h in m.history
            )
            for m in found
        ]
    for name, process in stack.processes.items():
        if name != "web" and process.alive():
            assert process.popen is not None
            process.popen.send_signal(signal.SIGUSR2)  # its threads' stacks, into its log
    path = stack.workdir / f"{workload.name}-unsettled.log"
    path.write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} unsettled message(s) described in {path}", flush=True)


def job_state(stack: Stack, message_id: str) -> str:
    """What the job index says of a message: its job, the job's status and last heartbeat."""
    from redis import Redis
    from rq.job import Job
    from rq.queue import Queue

    from notifier.core.runtime import QUEUE_NAMES
    from notifier.messaging.delivery.enqueueing import JOBS_KEY

    connection = Redis.from_url(stack.redis.url)
    job_id = connection.hget(JOBS_KEY, message_id)
    if job_id is None:
        return "none"
    job = Job.fetch_many([job_id.decode()], connection=connection)[0]
    if job is None:
        return f"{job_id.decode()} (gone)"
    queued = {name: job.id in Queue(name, connection=connection).job_ids for name in QUEUE_NAMES}
    return (
        f"{job.id} status={job.get_status()} origin={job.origin} in_queue={queued} "
        f"worker={job.worker_name} started={job.started_at} heartbeat={job.last_heartbeat} "
        f"args={len(job.args[0]) if job.args else 0} ids"
    )


def reconciled(stack: Stack, workload: Workload) -> str:
    """How many of the workload's sends were settled against the provider's record."""
    from sqlalchemy import func, select

    from notifier.models import Message, MessageStatusEvent

    with stack.database.session() as session:
        rows = session.execute(
            select(MessageStatusEvent.status, func.count())
            .join(Message, Message.id == MessageStatusEvent.message_id)
            .where(
                MessageStatusEvent.source == "reconciled",
                Message.phone.in_(workload.phones()),
            )
            .group_by(MessageStatusEvent.status)
        ).all()
    found = dict(rows)
    return (
        f"reconciled: {found.get('sent', 0)} found at the provider, {found.get('queued', 0)} resent"
    )


def outcome(
    stack: Stack,
    workload: Workload,
    fault_ended: float,
    sender: Sender,
    restarts_before: int,
    note: str = "",
) -> Outcome:
    delivered, duplicates, _ = count(stack.fake, workload.phones())
    lost = workload.size - delivered
    settled = workload.settled_at
    recover = round(max(0.0, settled - fault_ended), 1) if settled is not None else None
    return Outcome(
        workload.name,
        workload.size,
        delivered,
        duplicates,
        lost,
        workload.unsettled,
        recover,
        sender.retries,
        stack.restarts() - restarts_before,
        note,
    )


# -- the scenarios ------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    run: Callable[[Stack, Workload], Outcome]
    short: bool = False
    needs_postgres: bool = False


def during_ingest(
    stack: Stack, workload: Workload, fault: Callable[[], None], after: float = 0.3
) -> tuple[Sender, float]:
    """Send the workload while `fault` runs once a part of it is in; returns when the fault ended."""
    sender = Sender(stack.base_url)
    # Paced so that the ingest lasts a few seconds and the fault lands in the middle of it.
    pace = 8 * 6.0 / workload.size
    ingest = threading.Thread(target=sender.send_all, args=(workload,), kwargs={"pace": pace})
    ingest.start()
    while count(stack.fake, workload.phones())[0] < workload.size * after and ingest.is_alive():
        time.sleep(0.05)
    fault()
    ended = time.time()
    ingest.join()
    return sender, ended


def redis_restart_during_ingest(stack: Stack, workload: Workload) -> Outcome:
    before = stack.restarts()

    def fault() -> None:
        stack.kill_redis()  # SIGKILL: queued jobs are gone (no persistence)
        time.sleep(3)
        stack.start_redis()

    sender, ended = during_ingest(stack, workload, fault)
    wait_for(stack, workload, 90)
    return outcome(
        stack, workload, ended, sender, before, "jobs lost with Redis; the sweep re-enqueues"
    )


def postgres_restart(stack: Stack, workload: Workload, *, while_sending: bool) -> Outcome:
    assert stack.postgres is not None
    postgres = stack.postgres
    before = stack.restarts()

    def fault() -> None:
        postgres.stop("immediate")  # a crash: connections cut, no checkpoint
        time.sleep(3)
        postgres.start()

    if not while_sending:
        sender, ended = during_ingest(stack, workload, fault, after=0.2)
    else:
        # Every event is in and the provider is slow, so the restart lands while sending.
        stack.fake.latency = 0.05
        sender = Sender(stack.base_url)
        sender.send_all(workload)
        while count(stack.fake, workload.phones())[0] < workload.size * 0.2:
            time.sleep(0.05)
        fault()
        ended = time.time()
    wait_for(stack, workload, 90)
    stack.fake.latency = 0.0
    return outcome(stack, workload, ended, sender, before)


def worker_sigkill_mid_send(stack: Stack, workload: Workload) -> Outcome:
    """Workers killed while requests are in flight at a slow provider: some were accepted by the
    provider but never recorded; reconciliation finds them instead of sending again."""
    before = stack.restarts()
    stack.fake.latency = 0.3
    sender = Sender(stack.base_url)
    sender.send_all(workload)
    kills = 0
    while count(stack.fake, workload.phones())[0] < workload.size * 0.6 and kills < 6:
        time.sleep(0.45)  # lands inside a 0.3 s provider call most of the time
        for name, process in stack.processes.items():
            if name.startswith("worker") and process.alive():
                assert process.popen is not None
                process.popen.send_signal(signal.SIGKILL)  # the supervisor starts it again
        kills += 1
    ended = time.time()
    stack.fake.latency = 0.0
    wait_for(stack, workload, 90)
    note = f"{kills} SIGKILL rounds; {reconciled(stack, workload)}"
    return outcome(stack, workload, ended, sender, before, note)


def provider_errors_for(
    status: int, code: int | None, seconds: float
) -> Callable[[Stack, Workload], Outcome]:
    def run(stack: Stack, workload: Workload) -> Outcome:
        before = stack.restarts()
        stack.fake.fail_for(
            seconds, status=status, code=code, retry_after=1 if status == 429 else None
        )
        started = time.time()
        sender = Sender(stack.base_url)
        sender.send_all(workload)
        wait_for(stack, workload, seconds + 120)
        return outcome(stack, workload, started + seconds, sender, before)

    return run


def provider_hangs(stack: Stack, workload: Workload) -> Outcome:
    """The provider takes longer than the client timeout, then accepts: outcomes are unknown to
    the worker, which leaves them for reconciliation rather than sending again."""
    before = stack.restarts()
    seconds = 10.0
    stack.fake.hang_for(seconds, delay=3.0)  # client timeout is 2 s
    started = time.time()
    sender = Sender(stack.base_url)
    sender.send_all(workload)
    wait_for(stack, workload, 120)
    return outcome(stack, workload, started + seconds, sender, before, reconciled(stack, workload))


def same_webhook_five_times(stack: Stack, workload: Workload) -> Outcome:
    before = stack.restarts()
    started = time.time()
    sender = Sender(stack.base_url)
    sender.send_all(workload, concurrency=20, copies=5)
    wait_for(stack, workload, 60)
    return outcome(stack, workload, started, sender, before, "each event POSTed 5 times at once")


def two_schedulers(stack: Stack, workload: Workload) -> Outcome:
    """Two schedulers sweep the same backlog: the jobs are lost with Redis, so both find every
    message at once and race to re-enqueue it."""
    stack.stop_app()
    stack.start_app(workers=2, schedulers=2)
    before = stack.restarts()
    stack.kill_redis()
    sender = Sender(stack.base_url)
    sender.send_all(workload)  # committed, but nothing could be enqueued
    stack.start_redis()
    ended = time.time()
    wait_for(stack, workload, 90)
    result = outcome(stack, workload, ended, sender, before, "2 schedulers sweeping one backlog")
    stack.stop_app()
    stack.start_app()
    return result


def clock_jump_over_quiet_hours(stack: Stack, workload: Workload) -> Outcome:
    """Non-urgent notices arrive at 22:00 local time and wait; the clock then jumps to 07:00:05
    the next morning (every process's wall clock, see bench.jumped_clock): each goes out once."""
    now = datetime.now(UTC)
    local = now.astimezone(TZ)
    target = datetime.combine(local.date(), datetime.min.time(), tzinfo=TZ) + timedelta(hours=22)
    offset = round((target - now).total_seconds())
    stack.clock_file.write_text(f"{offset}\n")
    env = {"QUIET_HOURS": "21:00-07:00", "DOSSIER_NOTICES_URGENT": "false"}
    stack.stop_app()
    stack.start_app(workers=2, schedulers=2, env=env, jumped_clock=True)
    before = stack.restarts()
    sender = Sender(stack.base_url, clock_offset=offset)
    sender.send_all(workload)
    time.sleep(5)
    early = count(stack.fake, workload.phones())[0]
    morning = target + timedelta(hours=9, seconds=5)
    stack.clock_file.write_text(f"{round((morning - datetime.now(UTC)).total_seconds())}\n")
    jumped = time.time()
    wait_for(stack, workload, 90)
    result = outcome(
        stack, workload, jumped, sender, before, f"{early} sent during quiet hours (expected 0)"
    )
    if early:
        result.duplicates += early  # a promise broken all the same; count it against the run
    stack.stop_app()
    stack.clock_file.write_text("0\n")
    stack.start_app()
    return result


SCENARIOS = [
    Scenario("redis-restart-during-ingest", redis_restart_during_ingest, short=True),
    Scenario(
        "postgres-restart-during-ingest",
        lambda s, w: postgres_restart(s, w, while_sending=False),
        needs_postgres=True,
    ),
    Scenario(
        "postgres-restart-during-sending",
        lambda s, w: postgres_restart(s, w, while_sending=True),
        needs_postgres=True,
    ),
    Scenario("worker-sigkill-mid-send", worker_sigkill_mid_send, short=True),
    Scenario("provider-500-for-30s", provider_errors_for(500, None, 30)),
    Scenario("provider-hangs-past-timeout", provider_hangs),
    Scenario("provider-429-for-a-while", provider_errors_for(429, 20429, 8), short=True),
    Scenario("same-webhook-5x-concurrently", same_webhook_five_times, short=True),
    Scenario("two-schedulers-at-once", two_schedulers),
    Scenario("clock-jump-over-quiet-hours", clock_jump_over_quiet_hours),
]


# -- running and reporting ----------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> str:
    header = (
        "scenario",
        "expected",
        "delivered",
        "duplicates",
        "lost",
        "unsettled",
        "recover s",
        "retries",
        "restarts",
    )
    rows = [
        (
            o.scenario,
            str(o.expected),
            str(o.delivered),
            str(o.duplicates),
            str(o.lost),
            str(o.unsettled),
            "-" if o.recover_seconds is None else f"{o.recover_seconds:.1f}",
            str(o.sender_retries),
            str(o.process_restarts),
        )
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", action="store_true", help="a few scenarios, under two minutes")
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--size", type=int, help="events per scenario (default 200, short 60)")
    parser.add_argument(
        "--sqlite", action="store_true", help="SQLite instead of a PostgreSQL cluster"
    )
    args = parser.parse_args(argv)
    size = args.size or (60 if args.short else 200)
    chosen = [
        s
        for s in SCENARIOS
        if (s.short or not args.short) and (not args.only or s.name in args.only)
    ]
    use_postgres = not args.sqlite and bool(list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")))
    workdir = Path(tempfile.mkdtemp(prefix="notifier-faults-"))
    workdir.chmod(0o755)  # the PostgreSQL cluster runs as the postgres user
    print(
        f"fault suite: {len(chosen)} scenario(s), {size} events each, "
        f"{'PostgreSQL' if use_postgres else 'SQLite'}; logs in {workdir}",
        flush=True,
    )
    stack = Stack(workdir, use_postgres)
    outcomes: list[Outcome] = []
    skipped: list[str] = []
    try:
        stack.migrate()
        stack.start_app()
        for number, scenario in enumerate(chosen):
            if scenario.needs_postgres and not use_postgres:
                skipped.append(f"{scenario.name}: needs PostgreSQL server binaries")
                continue
            workload = Workload(scenario.name, size, first=number * 10_000)
            started = time.monotonic()
            result = scenario.run(stack, workload)
            outcomes.append(result)
            verdict = "ok" if result.ok else "FAILED"
            print(
                f"  {scenario.name}: {verdict} ({time.monotonic() - started:.0f} s) {result.note}",
                flush=True,
            )
    finally:
        stack.close()
    print()
    print(table(outcomes))
    for line in skipped:
        print(f"skipped: {line}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": "python -m bench.faults" + (" --short" if args.short else ""),
                "database": "postgresql" if use_postgres else "sqlite",
                "events_per_scenario": size,
                "scenarios": [asdict(o) for o in outcomes],
                "skipped": skipped,
            },
            indent=2,
        )
    )
    failed = [o.scenario for o in outcomes if not o.ok]
    print(f"faults: {len(outcomes) - len(failed)} passed, {len(failed)} failed")
    if failed:
        print(f"FAILED: {', '.join(failed)} (logs in {workdir})")
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
