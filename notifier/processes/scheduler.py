"""The scheduler process: periodic work (sweeps, reminders, purges) run on fixed intervals.

Every task is safe to run from two schedulers at once: the work it does is claimed in the
database, so a second scheduler only finds nothing left to do. docs/scheduler.md explains why
this is a loop of its own rather than RQ's cron, and how it shares the work with RQ's scheduler.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from notifier.api import batches
from notifier.core.runtime import Services
from notifier.messaging import callbacks, delivery
from notifier.privacy import retention
from notifier.processes.due_jobs import DueJobMover
from notifier.reminders import planner
from notifier.text.workdays import calendar_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicTask:
    name: str
    every_seconds: float
    run: Callable[[Services], object]


TASKS: list[PeriodicTask] = [
    PeriodicTask("sweep-messages", 15, delivery.sweep),
    PeriodicTask("sweep-callbacks", 30, callbacks.sweep),
    PeriodicTask("sweep-batches", 30, batches.sweep_batches),
    PeriodicTask("fire-reminders", 15, planner.fire_due),
    PeriodicTask("purge-retention", 24 * 3600, retention.purge),
]


def run_once(services: Services) -> None:
    mover = DueJobMover(services)
    mover.run()
    mover.stop()  # a running scheduler takes the locks at its next tick, not in a minute
    for task in TASKS:
        _run(task, services)


def run_forever(services: Services, stop: threading.Event | None = None, tick: float = 1.0) -> None:
    stop = stop or threading.Event()
    calendar_for(services.settings)  # a bad HOLIDAY_CALENDAR stops the scheduler at start
    # Intervals run on the monotonic clock: a wall-clock jump neither skips nor repeats a task.
    next_run = {task.name: 0.0 for task in TASKS}
    log.info("scheduler started: %s", ", ".join(f"{t.name}/{t.every_seconds:g}s" for t in TASKS))
    mover = DueJobMover(services)  # retries due now, every tick
    try:
        while not stop.is_set():
            mover.run()
            now = time.monotonic()
            for task in TASKS:
                if now >= next_run[task.name]:
                    _run(task, services)
                    next_run[task.name] = time.monotonic() + task.every_seconds
            stop.wait(tick)
    finally:
        mover.stop()


def _run(task: PeriodicTask, services: Services) -> None:
    try:
        task.run(services)
    except Exception:
        # One failing task (database restarting, say) must not stop the others or the loop.
        log.exception("scheduled task %s failed", task.name)
