"""Reminders at scale: schedule 100,000, then fire them when they fall due.

50,000 bookings for reception sessions on one day give 100,000 reminders in two bursts, the
realistic worst case: every day-before reminder is due at 17:00 and every morning one at 07:30.

- scheduling: `reminders.sync_bookings` over batches of 1,000 bookings a transaction, against
  the naive way (each reminder worked out and inserted in a transaction of its own);
- firing: `reminders.fire_due` from the moment the burst is due until it is drained, against the
  naive way (claim one row, compose, commit, enqueue, repeat). Lateness is measured per batch,
  from the due time to the moment the batch's messages are committed and enqueued; the
  scheduler's poll interval (15 s) comes on top.

The naive ways run on a smaller sample (BENCH_REMINDERS_BASELINE) and their totals for the
full count are projected from their rate. The clock is moved with time-machine (ticking) so
the due times are reached without waiting for them.

PostgreSQL when BENCH_DATABASE_URL is set (in a schema of its own, dropped afterwards), else a
SQLite file; a private redis-server on a free port. Writes bench/results/reminders.json.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import time_machine
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.orm import selectinload

from notifier import models
from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import delivery, outbox
from notifier.models import Booking, ReceptionSession, Reminder
from notifier.reminders import planner
from tests.support.processes import RedisServer

RESULTS = Path(__file__).resolve().parent / "results" / "reminders.json"
SCHEMA = "bench_reminders"
TZ_NAME = "Asia/Ho_Chi_Minh"
DAY = datetime.fromisoformat("2030-01-09 08:00")  # a Wednesday
BASELINE_DAY = datetime.fromisoformat("2030-01-16 08:00")
PER_SESSION = 100
SYNC_BATCH = 1000


def main() -> dict[str, Any]:
    # Stopped from outside, still remove the schema and stop the private redis-server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    total = int(os.environ.get("BENCH_REMINDERS", "100000"))
    sample = int(os.environ.get("BENCH_REMINDERS_BASELINE", "2000"))
    with _database() as (url, backend), _redis() as redis_url:
        settings = Settings.from_env(
            {
                "DATABASE_URL": url,
                "REDIS_URL": redis_url,
                "SMS_PROVIDER": "console",
                "QUIET_HOURS": "21:00-07:00",
                "TIMEZONE": TZ_NAME,
                "LOG_LEVEL": "WARNING",
            }
        )
        services = Services.from_settings(settings)
        models.create_all(services.db)
        try:
            result = _run(services, backend, total, sample)
        finally:
            services.close()
    _report(result)
    return result


def _run(services: Services, backend: str, total: int, sample: int) -> dict[str, Any]:
    tz = services.settings.tz
    with time_machine.travel(_local(tz, DAY - timedelta(days=2), 9), tick=True):
        ours_ids = _add_bookings(services, DAY, total // 2, prefix="A")
        base_ids = _add_bookings(services, BASELINE_DAY, sample // 2, prefix="B")
        scheduled, schedule_seconds = _schedule(services, ours_ids)
        naive_scheduled, naive_schedule_seconds = _schedule_naively(services, base_ids)

    fired: list[float] = []
    fire_seconds = 0.0
    # The two bursts: every day-before reminder at 17:00, every morning one at 07:30.
    for due in (_local(tz, DAY - timedelta(days=1), 17), _local(tz, DAY, 7, 30)):
        with time_machine.travel(due - timedelta(seconds=1), tick=True):
            lateness, seconds = _drain(services, due)
        fired += lateness
        fire_seconds += seconds
    naive_due = _local(tz, BASELINE_DAY - timedelta(days=1), 17)
    with time_machine.travel(naive_due - timedelta(seconds=1), tick=True):
        naive_lateness, naive_fire_seconds = _drain_naively(services, naive_due)

    schedule_rate = scheduled / schedule_seconds
    naive_schedule_rate = naive_scheduled / naive_schedule_seconds
    fire_rate = len(fired) / fire_seconds
    naive_fire_rate = len(naive_lateness) / naive_fire_seconds
    return {
        "benchmark": "reminders",
        "database": backend,
        "reminders": scheduled,
        "scheduling": {
            "seconds": round(schedule_seconds, 2),
            "per_second": round(schedule_rate),
            "baseline": {
                "method": "one reminder, one transaction",
                "sample": naive_scheduled,
                "per_second": round(naive_schedule_rate),
                "projected_seconds": round(scheduled / naive_schedule_rate, 1),
            },
            "speedup": round(schedule_rate / naive_schedule_rate, 1),
        },
        "firing": {
            "fired": len(fired),
            "bursts": 2,
            "seconds": round(fire_seconds, 2),
            "per_second": round(fire_rate),
            "lateness_seconds": _percentiles(fired),
            "baseline": {
                "method": "claim one row, compose, commit, enqueue",
                "sample": len(naive_lateness),
                "per_second": round(naive_fire_rate),
                "lateness_seconds": _percentiles(naive_lateness),
                "projected_last_seconds": round(len(fired) / 2 / naive_fire_rate, 1),
            },
            "speedup": round(fire_rate / naive_fire_rate, 1),
        },
    }


# -- data --------------------------------------------------------------------------------------


def _local(tz: Any, day: datetime, hour: int, minute: int = 0) -> datetime:
    return day.replace(hour=hour, minute=minute, tzinfo=tz)


def _add_bookings(services: Services, day: datetime, count: int, prefix: str) -> list[int]:
    """`count` bookings on sessions of `day` (08:00-09:30 local), inserted in bulk, unscheduled."""
    tz = services.settings.tz
    starts = day.replace(tzinfo=tz)
    with services.db.transaction() as session:
        first_number = (session.scalar(select(func.max(ReceptionSession.number))) or 0) + 1
        sessions = [
            {
                "number": first_number + n,
                "starts_at": starts,
                "ends_at": starts + timedelta(minutes=90),
                "host": "Chủ tịch UBND xã",
                "location": "Phòng tiếp công dân, UBND xã",
                "capacity": PER_SESSION,
                "slot_minutes": 1,
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            for n in range(-(-count // PER_SESSION))
        ]
        session_ids = list(
            session.scalars(insert(ReceptionSession).returning(ReceptionSession.id), sessions)
        )
        rows = [
            {
                "session_id": session_ids[n // PER_SESSION],
                "phone": f"+849{n:08d}",
                "code": f"{prefix}{n:07d}",
                "slot_index": n % PER_SESSION,
                "expected_at": starts + timedelta(minutes=(n % PER_SESSION) * 90 // PER_SESSION),
                "state": "booked",
                "channel": "sms",
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            for n in range(count)
        ]
        ids: list[int] = []
        for start in range(0, len(rows), 5000):
            ids += session.scalars(
                insert(Booking).returning(Booking.id), rows[start : start + 5000]
            )
    return ids


def _load(session: Any, ids: list[int]) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking).where(Booking.id.in_(ids)).options(selectinload(Booking.session))
        )
    )


def _count_scheduled(services: Services, ids: list[int]) -> int:
    with services.db.session() as session:
        found = 0
        for start in range(0, len(ids), 500):
            found += (
                session.scalar(
                    select(func.count()).where(
                        Reminder.booking_id.in_(ids[start : start + 500]),
                        Reminder.state == "scheduled",
                    )
                )
                or 0
            )
        return found


# -- scheduling --------------------------------------------------------------------------------


def _schedule(services: Services, ids: list[int]) -> tuple[int, float]:
    started = time.perf_counter()
    for start in range(0, len(ids), SYNC_BATCH):
        with services.db.transaction() as session:
            planner.sync_bookings(
                session, services.settings, _load(session, ids[start : start + SYNC_BATCH])
            )
    return _count_scheduled(services, ids), time.perf_counter() - started


def _schedule_naively(services: Services, ids: list[int]) -> tuple[int, float]:
    started = time.perf_counter()
    for booking_id in ids:
        with services.db.session() as session:
            booking = session.get_one(Booking, booking_id)
            due = planner.booking_schedule(services.settings, booking)
        for (kind, sequence), at in due.items():
            with services.db.transaction() as session:
                session.add(
                    Reminder(kind=kind, sequence=sequence, due_at=at, booking_id=booking_id)
                )
    return _count_scheduled(services, ids), time.perf_counter() - started


# -- firing ------------------------------------------------------------------------------------


def _wait_until(moment: datetime) -> None:
    while utcnow() < moment:
        time.sleep(0.01)


def _drain(services: Services, due: datetime) -> tuple[list[float], float]:
    """Fire a burst batch by batch; each reminder's lateness is its batch's commit+enqueue time."""
    _wait_until(due)
    started = time.perf_counter()
    lateness: list[float] = []
    while True:
        result = planner.fire_due(services, max_batches=1)
        late = (utcnow() - due).total_seconds()
        lateness += [late] * result.sent
        if result.sent + result.skipped + result.rescheduled == 0:
            return lateness, time.perf_counter() - started


def _drain_naively(services: Services, due: datetime) -> tuple[list[float], float]:
    _wait_until(due)
    started = time.perf_counter()
    lateness: list[float] = []
    settings = services.settings
    while True:
        with services.db.transaction() as session:
            row = session.scalars(
                select(Reminder)
                .where(Reminder.state == "scheduled", Reminder.due_at <= utcnow())
                .order_by(Reminder.due_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if row is None:
                return lateness, time.perf_counter() - started
            booking = session.get_one(Booking, row.booking_id)
            local = planner.appointment_of(booking).astimezone(settings.tz)
            message = outbox.compose(
                session,
                settings,
                phone=booking.phone,
                template=f"reminder_{row.kind}",
                personalisation={
                    "date": f"{local:%d/%m}",
                    "time": f"{local:%H:%M}",
                    "location": booking.session.location,
                    "booking_code": booking.code,
                },
                urgent=False,
                essential=False,
                kind="reminder",
                booking_id=booking.id,
            )
            row.message = message
            row.state = "sent"
        delivery.enqueue_committed(services, [message])
        lateness.append((utcnow() - due).total_seconds())


# -- plumbing ----------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(quantile: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))], 2)

    return {
        "p50": round(statistics.median(ordered), 2),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": round(ordered[-1], 2),
    }


@contextmanager
def _database() -> Iterator[tuple[str, str]]:
    url = os.environ.get("BENCH_DATABASE_URL", "")
    if not url:
        with tempfile.TemporaryDirectory(prefix="bench-reminders-") as folder:
            yield f"sqlite:///{folder}/bench.sqlite3", "sqlite"
        return
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{SCHEMA}", "postgresql"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        engine.dispose()


@contextmanager
def _redis() -> Iterator[str]:
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


def _report(result: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    s, f = result["scheduling"], result["firing"]
    rows = [
        (
            "schedule",
            f"{s['per_second']:,}/s",
            f"{s['seconds']} s",
            f"{s['baseline']['per_second']:,}/s",
            f"{s['speedup']}x",
        ),
        (
            "fire",
            f"{f['per_second']:,}/s",
            f"{f['seconds']} s",
            f"{f['baseline']['per_second']:,}/s",
            f"{f['speedup']}x",
        ),
    ]
    print(
        f"reminders on {result['database']}: {result['reminders']:,} scheduled, {f['fired']:,} fired"
    )
    print(f"{'':<10}{'rate':>12}{'total':>12}{'naive rate':>14}{'speedup':>10}")
    for name, rate, total, naive, speedup in rows:
        print(f"{name:<10}{rate:>12}{total:>12}{naive:>14}{speedup:>10}")
    late = f["lateness_seconds"]
    print(
        f"lateness after the due time (s): p50 {late['p50']}, p95 {late['p95']}, "
        f"p99 {late['p99']}, max {late['max']}; naive projected last: "
        f"{f['baseline']['projected_last_seconds']} s (plus the scheduler's 15 s poll)"
    )
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
