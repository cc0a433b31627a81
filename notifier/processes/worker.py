"""The queue worker process: RQ's in-process worker, with sending spread over a thread pool.

RQ runs one job at a time, urgent queue first; a send job carries a batch of message ids and
keeps up to `SEND_CONCURRENCY` provider requests in flight (`delivery.send_batch`). Jobs of other
kinds run as usual. On SIGTERM a running batch stops claiming, finishes what is in flight and
puts the rest back in its queue, so a worker stops within about one provider round trip.
"""

from __future__ import annotations

import logging
from types import FrameType

from rq.worker import SimpleWorker

from notifier.core.runtime import Services, freeze_startup_objects
from notifier.messaging import delivery

log = logging.getLogger(__name__)


class NotifierWorker(SimpleWorker):
    services: Services | None = None

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        if self.services is not None:
            delivery.stop_sending(self.services)
        super().request_stop(signum, frame)


def run_worker(services: Services, *, burst: bool = False) -> bool:
    """Work the urgent then bulk queues until stopped (or, with `burst`, until they are empty)."""
    worker = NotifierWorker(list(services.queues.values()), connection=services.redis)
    worker.services = services
    freeze_startup_objects()
    try:
        # No RQ scheduler child here: the scheduler process moves due retries
        # (notifier.scheduled_jobs says why).
        return bool(worker.work(burst=burst, with_scheduler=False, logging_level="WARNING"))
    finally:
        delivery.close_pool(services)
