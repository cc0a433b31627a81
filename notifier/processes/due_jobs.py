"""Moving jobs scheduled for later (retries of sends and callbacks) onto their queue when due.

This is RQ's own scheduler (`rq.scheduler.RQScheduler`), run in the scheduler process instead of
the child process that RQ forks from a worker started `with_scheduler=True`. That child:

- inherits the worker's Redis sockets. When the worker is killed (SIGKILL, the OOM killer) while
  it waits in BLPOP, the child keeps that socket open, so Redis still counts the dead worker as
  waiting and hands it the next job, which is then never run;
- dies when its Redis connection drops, and the worker starts it again only at its maintenance,
  every ten minutes, so due retries wait that long;
- is forked from a process running a thread pool, which may copy a lock another thread holds.

RQ's lock per queue lets one scheduler process of several move the jobs; another takes over
within two minutes of the first one stopping. The message sweep sends a retry that is overdue by
`SWEEP_GRACE_SECONDS` in any case.
"""

from __future__ import annotations

import contextlib
import logging

from redis.exceptions import RedisError
from rq.scheduler import RQScheduler

from notifier.core.runtime import Services

log = logging.getLogger(__name__)


class DueJobMover:
    """Moves due scheduled jobs of every queue; call `run` about once a second."""

    def __init__(self, services: Services) -> None:
        self.scheduler = RQScheduler(
            list(services.queues.values()), connection=services.redis, logging_level="WARNING"
        )
        self.failing = False

    def run(self) -> None:
        scheduler = self.scheduler
        try:
            if not scheduler.acquired_locks or scheduler.should_reacquire_locks:
                scheduler.acquire_locks()
            if scheduler.acquired_locks:
                scheduler.heartbeat()  # keeps the locks; notices one lost to another scheduler
                scheduler.enqueue_scheduled_jobs()
        except RedisError as exc:
            if not self.failing:  # once per outage, not once a second
                log.warning("cannot move due retries to their queue yet: %s", exc)
            self.failing = True
            return
        if self.failing:
            log.info("due retries move to their queue again")
        self.failing = False

    def stop(self) -> None:
        """Hand the locks over at once rather than when they expire."""
        with contextlib.suppress(RedisError):
            self.scheduler.release_locks()
