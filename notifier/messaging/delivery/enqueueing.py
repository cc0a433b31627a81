"""Putting committed messages on the send queues, and the job index the sweeper reads.

A job carries only message ids (`SEND_BATCH_SIZE` at most), never message content, so a lost or
repeated job can neither lose nor double an SMS. The job index (`JOBS_KEY`, message id → id of
the job carrying it) lets the sweeper tell a lost job from a slow one.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.exceptions import RedisError
from rq import Queue
from rq.queue import EnqueueData

from notifier.core.runtime import Services
from notifier.messaging import statuses
from notifier.models import Message

log = logging.getLogger(__name__)

SEND_BATCH_JOB = "jobs.send.send_batch"
# message id -> id of the job that carries it, so the sweeper can tell a lost job from a slow one
JOBS_KEY = "notifier:send:jobs"
JOB_TIMEOUT = 3600  # a bulk batch under a slow provider's rate limit may take minutes
RESULT_TTL = 600
FAILURE_TTL = 7 * 86400
# A started job silent this long (three missed heartbeats) died with its worker: the sweeper sends
# its still-queued ids again. Taking a live but stalled job for dead costs only a job that finds
# nothing left to claim (claims are atomic), so this need not be long.
STALE_AFTER = timedelta(seconds=30)


@dataclass(frozen=True)
class Queued:
    """What enqueueing needs to know of a message (plain values, safe after the session closes)."""

    id: str
    priority: str
    attempts: int

    @classmethod
    def of(cls, message: Message) -> Queued:
        return cls(message.id, message.priority, message.attempts)


def enqueue_committed(services: Services, messages: Iterable[Message]) -> int:
    """Enqueue the queued ones among freshly committed messages."""
    return enqueue(services, [Queued.of(m) for m in messages if m.status == statuses.QUEUED])


def enqueue(
    services: Services,
    items: Sequence[Queued],
    *,
    delay: timedelta | None = None,
    at_front: bool = False,
) -> int:
    """Enqueue send jobs for messages already committed as `queued`. Returns how many went out.

    `delay` schedules the jobs (a retry's backoff); `at_front` puts them ahead of their queue (a
    bulk batch's unclaimed rest, put back to make way for urgent work). Redis being down is not
    an error here: the sweeper re-enqueues what is still queued.
    """
    if not items:
        return 0
    by_priority: dict[str, list[str]] = defaultdict(list)
    for item in items:
        by_priority[item.priority].append(item.id)
    size = max(1, services.settings.SEND_BATCH_SIZE)
    try:
        with services.redis.pipeline() as pipe:
            for priority, ids in by_priority.items():
                queue = services.queue(priority)
                for start in range(0, len(ids), size):
                    chunk = ids[start : start + size]
                    job_id = f"send-{uuid.uuid4().hex}"
                    if delay is not None and delay > timedelta(0):
                        queue.enqueue_in(
                            delay,
                            SEND_BATCH_JOB,
                            chunk,
                            pipeline=pipe,
                            job_id=job_id,
                            job_timeout=JOB_TIMEOUT,
                            result_ttl=RESULT_TTL,
                            failure_ttl=FAILURE_TTL,
                        )
                    else:
                        queue.enqueue_many([_job_data(chunk, job_id, at_front)], pipeline=pipe)
                    pipe.hset(JOBS_KEY, mapping=dict.fromkeys(chunk, job_id))
            pipe.execute()
    except RedisError as exc:
        log.warning("queue unavailable, %d message(s) wait for the sweeper: %s", len(items), exc)
        return 0
    return len(items)


def _job_data(ids: list[str], job_id: str, at_front: bool) -> EnqueueData:
    return Queue.prepare_data(
        SEND_BATCH_JOB,
        args=(ids,),
        job_id=job_id,
        timeout=JOB_TIMEOUT,
        result_ttl=RESULT_TTL,
        failure_ttl=FAILURE_TTL,
        at_front=at_front,
        description=f"send {len(ids)} message(s)",
    )


def forget_jobs(services: Services, message_ids: Sequence[str]) -> None:
    """Drop finished messages from the job index (a retried one is re-indexed to its new job)."""
    if not message_ids:
        return
    try:
        services.redis.hdel(JOBS_KEY, *message_ids)
    except RedisError as exc:
        log.warning("could not update the job index: %s", exc)


def without_live_jobs(services: Services, items: Sequence[Queued], now: datetime) -> list[Queued]:
    """The items whose job is gone (or never was): none if the queue cannot be asked."""
    if not items:
        return []
    try:
        job_ids = [
            _text(j) if j else None for j in services.redis.hmget(JOBS_KEY, [i.id for i in items])
        ]
    except RedisError as exc:
        log.warning("sweep cannot reach the queue: %s", exc)
        return []
    known = sorted({j for j in job_ids if j})
    live = services.live_jobs(known, stale_after=STALE_AFTER, now=now)
    if live is None:
        return []
    return [item for item, job_id in zip(items, job_ids, strict=True) if job_id not in live]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
