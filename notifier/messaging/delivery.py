"""Getting queued messages to the provider: enqueueing, sending once, retrying, sweeping.

The database is the source of truth. A message row is committed before its job is enqueued, a
job carries only message ids and sends only what it can claim, so a lost or repeated job never
loses or doubles an SMS. No database transaction is held open across a provider call.

At scale, a job carries a batch of ids (`SEND_BATCH_SIZE`) and a worker keeps many provider
requests in flight (`SEND_CONCURRENCY` threads sharing the provider adapters' persistent HTTP
connections). A batch is claimed in small chunks, only as fast as the shared rate limiter hands
out send slots, and outcomes are recorded a few at a time in short transactions; each message
keeps its own status, attempts and retries. A bulk batch checks the urgent queue as it goes and,
when urgent work waits, finishes what it has in flight and puts the rest of its ids back at the
front of the bulk queue, so a broadcast never holds up a reply for long. When a job has nothing
left but answers to await and another job waits, a thread of its own awaits and records them
while the worker starts the next job: the slots stay counted, but none sits idle for a round trip.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue

from redis.exceptions import RedisError
from rq import Queue, get_current_job
from rq.queue import EnqueueData
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.metrics import MetricsBuffer
from notifier.core.runtime import URGENT_QUEUE, Services
from notifier.messaging import consent, statuses
from notifier.messaging.failover import Failover, Route
from notifier.messaging.outbox import claim_batch, defer_if_quiet, record_sent_batch, transition
from notifier.messaging.sendrate import SendRateLimiter, parse_rates
from notifier.models import Message
from notifier.providers import (
    OutboundSms,
    PermanentProviderError,
    Provider,
    ProviderError,
    RateLimitedProviderError,
    ReconcilableProvider,
    RetryableProviderError,
    SendResult,
    SentRecord,
)
from notifier.text.phones import mask
from notifier.text.quiet_hours import quiet_until

log = logging.getLogger(__name__)

SEND_JOB = "jobs.send.send_message"  # one message (jobs enqueued before batching still run)
SEND_BATCH_JOB = "jobs.send.send_batch"
# message id -> id of the job that carries it, so the sweeper can tell a lost job from a slow one
JOBS_KEY = "notifier:send:jobs"
JOB_TIMEOUT = 3600  # a bulk batch under a slow provider's rate limit may take minutes
CLAIM_CHUNK = 100  # most messages claimed in one UPDATE
CLAIM_MIN = 16  # fewest worth a transaction (unless that is all that is left)
URGENT_CHECK_EVERY = 0.05  # seconds between looks at the urgent queue from a bulk batch
URGENT_HORIZON = 5.0  # an urgent message may reserve its rate-limit slot this far ahead
HEARTBEAT_EVERY = 10.0  # seconds between heartbeats of a running send job
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


# -- enqueueing --------------------------------------------------------------------------------


def enqueue(services: Services, items: Sequence[Queued]) -> int:
    """Enqueue send jobs for messages already committed as `queued`. Returns how many went out.

    Redis being down is not an error here: the sweeper re-enqueues what is still queued.
    """
    return _enqueue(services, items)


def enqueue_committed(services: Services, messages: Iterable[Message]) -> int:
    """Enqueue the queued ones among freshly committed messages."""
    return enqueue(services, [Queued.of(m) for m in messages if m.status == statuses.QUEUED])


def _enqueue(
    services: Services,
    items: Sequence[Queued],
    delay: timedelta | None = None,
    at_front: bool = False,
) -> int:
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
                            delay, SEND_BATCH_JOB, chunk, pipeline=pipe, **_job_options(job_id)
                        )
                    else:
                        queue.enqueue_many([_job_data(chunk, job_id, at_front)], pipeline=pipe)
                    pipe.hset(JOBS_KEY, mapping=dict.fromkeys(chunk, job_id))
            pipe.execute()
    except RedisError as exc:
        log.warning("queue unavailable, %d message(s) wait for the sweeper: %s", len(items), exc)
        return 0
    return len(items)


def _job_options(job_id: str) -> dict[str, object]:
    return {
        "job_id": job_id,
        "job_timeout": JOB_TIMEOUT,
        "result_ttl": 600,
        "failure_ttl": 7 * 86400,
    }


def _job_data(ids: list[str], job_id: str, at_front: bool) -> EnqueueData:
    return Queue.prepare_data(
        SEND_BATCH_JOB,
        args=(ids,),
        job_id=job_id,
        timeout=JOB_TIMEOUT,
        result_ttl=600,
        failure_ttl=7 * 86400,
        at_front=at_front,
        description=f"send {len(ids)} message(s)",
    )


# -- the process-wide sending machinery ------------------------------------------------------


class SendPool:
    """Per process: the bounded thread pool, the shared rate limiter, failover and metrics."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.concurrency = max(1, settings.SEND_CONCURRENCY)
        self.executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix="notifier-send")
        # Requests handed to the pool beyond its threads wait in its queue, so a thread that
        # finishes starts the next one at once instead of waiting for the dispatching thread
        # (which competes for the GIL with every sender) to notice and hand out more.
        self.capacity = self.concurrency + self.concurrency // 2
        # Requests handed to the pool and not answered yet, across this process's batches: a
        # batch finishing in the background (see `finish_in_background`) still holds its slots.
        self._busy = 0
        self._lock = threading.Lock()
        self._finishing: list[threading.Thread] = []
        self.limiter = SendRateLimiter(
            services.redis,
            parse_rates(settings.SMS_RATE_LIMITS),
            margin=settings.SMS_RATE_LIMIT_MARGIN,
        )
        self.failover = Failover(services)
        self.metrics = MetricsBuffer(services.redis)
        # Set when the worker is asked to stop: batches put their unclaimed ids back and return.
        self.stopping = threading.Event()

    def flush(self, force: bool = False) -> None:
        try:
            self.metrics.flush(force)
            self.failover.flush()
        except RedisError as exc:
            log.warning("could not write delivery metrics: %s", exc)

    @property
    def busy(self) -> int:
        return self._busy

    def submit(
        self, provider: Provider, claimed: Claimed, route: Route, delay: float
    ) -> Future[Outcome]:
        with self._lock:
            self._busy += 1
        future = self.executor.submit(_send_one, provider, claimed, route, delay)
        future.add_done_callback(self._answered)
        return future

    def _answered(self, _future: Future[Outcome]) -> None:
        with self._lock:
            self._busy -= 1

    def finish_in_background(self, batch: _Batch) -> None:
        """Let `batch` collect and record its last answers in a thread of its own, so the worker
        takes its next job meanwhile instead of leaving slots idle for a provider round trip."""
        thread = threading.Thread(target=batch.finish, name="notifier-finish")
        with self._lock:
            self._finishing = [t for t in self._finishing if t.is_alive()] + [thread]
        thread.start()

    def wait_finished(self) -> None:
        """Until every batch finishing in the background has recorded its answers."""
        with self._lock:
            finishing = list(self._finishing)
        for thread in finishing:
            thread.join()

    def close(self) -> None:
        self.stopping.set()
        self.wait_finished()
        self.executor.shutdown(wait=True)


_pools: dict[int, SendPool] = {}
_pools_lock = threading.Lock()


def send_pool(services: Services) -> SendPool:
    """The process's SendPool for `services` (built on first use)."""
    with _pools_lock:
        pool = _pools.get(id(services))
        if pool is None:
            pool = _pools[id(services)] = SendPool(services)
            services.on_close(lambda: close_pool(services))
        return pool


def stop_sending(services: Services) -> None:
    """Ask running batches to wrap up (the worker is stopping)."""
    with _pools_lock:
        pool = _pools.get(id(services))
    if pool is not None:
        pool.stopping.set()


def close_pool(services: Services) -> None:
    with _pools_lock:
        pool = _pools.pop(id(services), None)
    if pool is not None:
        pool.close()


# -- sending -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A message this worker has claimed (`sending`), as plain values."""

    id: str
    phone: str
    body: str
    segments: int
    attempt: int
    priority: str
    bound: str | None  # provider chosen at creation (a reply goes back the way it came)


@dataclass
class Outcome:
    claimed: Claimed
    route: Route
    result: SendResult | None = None
    error: ProviderError | None = None
    seconds: float = 0.0


def send_message(services: Services, message_id: str) -> str:
    """Send one message if it is still queued. Returns the message's status afterwards."""
    run = _Batch(services, [message_id], yield_to_urgent=False)
    run.run()
    if message_id in run.final:
        return run.final[message_id]
    with services.db.session() as session:
        current = session.get(Message, message_id)
        return current.status if current else "missing"


def send_batch(
    services: Services, message_ids: Sequence[str], priority: str | None = None
) -> dict[str, int]:
    """Send the still-queued messages among `message_ids`; counts of what became of them.

    `priority` is the queue the batch came from: a bulk batch makes way for urgent work.
    """
    run = _Batch(services, message_ids, yield_to_urgent=priority != URGENT_QUEUE)
    run.priority = priority
    # In a worker, the last answers of a batch are awaited in the background when another job
    # waits (their messages show as "sending" in the counts returned).
    run.hand_off = get_current_job() is not None
    run.run()
    return run.counts


@dataclass
class _Batch:
    """One batch of ids: claim in chunks, keep up to SEND_CONCURRENCY requests in flight.

    The calling thread claims and dispatches; provider calls run in the pool's threads; a
    recorder thread writes outcomes in batches, so a slow commit never stalls sending.
    """

    services: Services
    ids: Sequence[str]
    yield_to_urgent: bool
    final: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pool = send_pool(self.services)
        self.pending: deque[str] = deque(dict.fromkeys(self.ids))
        self.ready: deque[tuple[Claimed, Route]] = deque()
        self.in_flight = 0
        self.completions: SimpleQueue[Future[Outcome]] = SimpleQueue()
        self.claim_size = CLAIM_CHUNK
        self.slot_at = 0.0  # monotonic time before which no rate-limit slot is worth asking for
        self.urgent_checked_at = 0.0
        self.beat_at = time.monotonic()
        self.yielding = False
        self.priority: str | None = None
        self.hand_off = False
        self.waiting_checked_at = 0.0
        self.counts: dict[str, int] = {}
        self.recorder = _Recorder(self)

    def run(self) -> None:
        self.recorder.start()
        handed_off = False
        try:
            while (self.pending and not self.yielding) or self.ready or self.in_flight:
                if self._only_answers_left() and self._other_work_waits():
                    handed_off = True
                    break
                self._check_urgent()
                self._fill()
                self._collect()
                self.pool.flush()
                self._heartbeat()
        except BaseException:
            self._drain()
            raise
        finally:
            if not handed_off:
                self.recorder.close()
                self.pool.flush(force=True)
        # What became of the batch's messages (the recorder may still be writing: a copy).
        self.counts = dict(Counter(self.final.copy().values()))
        if handed_off:
            self.counts[statuses.SENDING] = self.in_flight
            self.pool.finish_in_background(self)
        else:
            # Earlier batches' last answers are recorded before the queue looks done.
            self.pool.wait_finished()
        if self.pending:
            # Put the unclaimed rest back, ahead of other bulk work, then let urgent work run.
            items = [Queued(i, self.priority or "bulk", 0) for i in self.pending]
            _enqueue(self.services, items, at_front=True)
            log.info("batch yields: %d message(s) put back in the queue", len(items))

    def finish(self) -> None:
        """Collect and record the answers still awaited (in a thread of its own)."""
        try:
            self._drain()
            self.recorder.close()
        except Exception:
            # Their messages stay "sending"; reconciliation settles them against the provider.
            log.exception("could not record the last answers of a batch")
        finally:
            self.pool.flush(force=True)

    def _only_answers_left(self) -> bool:
        return (
            self.hand_off
            and bool(self.in_flight)
            and not self.ready
            and (not self.pending or self.yielding)
        )

    def _other_work_waits(self) -> bool:
        now = time.monotonic()
        if now - self.waiting_checked_at < URGENT_CHECK_EVERY:
            return False
        self.waiting_checked_at = now
        try:
            names = {URGENT_QUEUE, self.priority or "bulk"}
            return any(self.services.queue(name).count for name in names)
        except RedisError:
            return False

    # -- stages --------------------------------------------------------------------------------
    def _heartbeat(self) -> None:
        """Tell the sweeper this job is alive (a killed worker's job goes silent)."""
        now = time.monotonic()
        if now - self.beat_at < HEARTBEAT_EVERY:
            return
        self.beat_at = now
        job = get_current_job()
        if job is not None:
            with contextlib.suppress(RedisError):
                job.heartbeat(utcnow(), JOB_TIMEOUT + 60, xx=True)

    def _check_urgent(self) -> None:
        if self.yielding or not self.pending:
            return
        if self.pool.stopping.is_set():
            self.yielding = True
            return
        if not self.yield_to_urgent or self.priority == URGENT_QUEUE:
            return
        now = time.monotonic()
        if now - self.urgent_checked_at < URGENT_CHECK_EVERY:
            return
        self.urgent_checked_at = now
        try:
            self.yielding = bool(self.services.queue(URGENT_QUEUE).count)
        except RedisError:
            self.yielding = False

    def _fill(self) -> None:
        if self.ready:
            self._submit_ready()
        if self.yielding or not self.pending or time.monotonic() < self.slot_at:
            return
        free = self.pool.capacity - self.pool.busy - len(self.ready)
        # Claim ahead a little, in chunks worth a transaction, so slots never wait for a claim.
        want = min(len(self.pending), self.claim_size, free + self.pool.concurrency // 4)
        enough = min(CLAIM_MIN, self.pool.concurrency // 4, len(self.pending), self.claim_size)
        if want <= 0 or want < max(1, enough):
            return
        chunk = [self.pending.popleft() for _ in range(want)]
        settings = self.services.settings
        with self.services.db.transaction() as session:
            deferred: set[str] = set()
            if quiet_until(utcnow(), settings.quiet_hours, settings.tz) is not None:
                # A backlog drained late must not wake citizens: bulk waits for the morning.
                deferred = {i for i in chunk if defer_if_quiet(session, settings, i)}
            messages = claim_batch(session, [i for i in chunk if i not in deferred])
            claimed = [
                Claimed(m.id, m.phone, m.body or "", m.segments, m.attempts, m.priority, m.provider)
                for m in messages
            ]
        got = {c.id for c in claimed}
        self.recorder.forget([i for i in chunk if i not in got])
        for c in claimed:
            self.priority = self.priority or c.priority
            route = Route(c.bound) if c.bound else self.pool.failover.route()
            self.ready.append((c, route))
        self._submit_ready()

    def _submit_ready(self) -> None:
        now = time.monotonic()
        if now < self.slot_at:
            return
        free = self.pool.capacity - self.pool.busy
        waiting = [self.ready.popleft() for _ in range(min(free, len(self.ready)))]
        if not waiting:
            return
        groups: dict[str, list[tuple[Claimed, Route]]] = defaultdict(list)
        for entry in waiting:
            groups[entry[1].provider].append(entry)
        left: list[tuple[Claimed, Route]] = []
        for name, entries in groups.items():
            try:
                provider = self.services.provider(name)
            except ValueError as exc:
                error = PermanentProviderError("provider_not_configured", str(exc))
                self.recorder.put([Outcome(c, r, error=error) for c, r in entries])
                continue
            urgent = entries[0][0].priority == URGENT_QUEUE
            try:
                reservation = self.pool.limiter.reserve(
                    name,
                    _sender(provider),
                    [c.segments for c, _ in entries],
                    horizon=URGENT_HORIZON if urgent else None,
                )
            except RedisError as exc:
                log.warning("rate limiter unavailable, sending unthrottled: %s", exc)
                reservation = None
            delays = reservation.delays if reservation else [0.0] * len(entries)
            for (claimed, route), delay in zip(entries, delays, strict=False):
                self.pool.metrics.wait(name, delay)
                future = self.pool.submit(provider, claimed, route, delay)
                self.in_flight += 1
                future.add_done_callback(self.completions.put)
            left.extend(entries[len(delays) :])
            if reservation is not None and len(delays) < len(entries):
                self.slot_at = now + max(reservation.retry_in, 0.005)
        if left:
            self.ready.extendleft(reversed(left))
            # Rate limited: claim only about as many as the limiter lets through per horizon.
            self.claim_size = max(1, len(waiting) - len(left))
        else:
            self.claim_size = min(CLAIM_CHUNK, self.claim_size * 2)

    def _collect(self) -> None:
        if not self.in_flight:
            if self.ready:
                time.sleep(min(max(self.slot_at - time.monotonic(), 0.001), 0.05))
            return
        # Slots held by a batch finishing in the background free up without waking this one.
        timeout = 0.05 if self.pool.busy <= self.in_flight else 0.005
        if self.ready:
            timeout = min(max(self.slot_at - time.monotonic(), 0.001), 0.05)
        try:
            futures = [self.completions.get(timeout=timeout)]
        except Empty:
            return
        with contextlib.suppress(Empty):
            while True:
                futures.append(self.completions.get_nowait())
        self.in_flight -= len(futures)
        outcomes = [future.result() for future in futures]
        for outcome in outcomes:
            self._observe(outcome)
        self.recorder.put(outcomes)

    def _drain(self) -> None:
        """After an error (database gone, say): still record what the provider already answered."""
        try:
            while self.in_flight:
                self._collect()
        except Exception:
            log.exception("could not collect %d provider answer(s)", self.in_flight)

    def _observe(self, outcome: Outcome) -> None:
        """Metrics, failover health and 429 pauses, as soon as an answer is in."""
        name = outcome.route.provider
        error = outcome.error
        throttled = isinstance(error, RateLimitedProviderError)
        kind = (
            "sent"
            if error is None
            else "rate_limited"
            if throttled
            else "retryable"
            if error.retryable
            else "permanent"
        )
        self.pool.metrics.request(name, kind, outcome.seconds)
        provider_failed = error is not None and error.retryable and not throttled
        if outcome.route.probe:
            self.pool.failover.probe_result(not provider_failed)
        else:
            self.pool.failover.record(name, not provider_failed)
        if throttled:
            assert error is not None
            pause = error.retry_after or self.services.settings.RATE_LIMIT_DEFAULT_PAUSE_SECONDS
            try:
                self.pool.limiter.pause(name, _sender(self.services.provider(name)), pause)
            except RedisError as exc:
                log.warning("could not pause the rate limiter: %s", exc)


_STOP = object()


class _Recorder(threading.Thread):
    """Writes a batch's outcomes to the database, as many per transaction as have piled up."""

    def __init__(self, batch: _Batch) -> None:
        super().__init__(name="notifier-record", daemon=True)
        self.batch = batch
        self.services = batch.services
        self.inbox: SimpleQueue[object] = SimpleQueue()
        self.done_ids: list[str] = []
        self.error: BaseException | None = None

    def put(self, outcomes: list[Outcome]) -> None:
        if outcomes:
            self.inbox.put(outcomes)

    def forget(self, ids: list[str]) -> None:
        """Ids that needed nothing (already sent or gone): drop them from the job index."""
        if ids:
            self.inbox.put(ids)

    def close(self) -> None:
        self.inbox.put(_STOP)
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        stop = False
        while not stop:
            items = [self.inbox.get()]
            with contextlib.suppress(Empty):
                while len(items) < 64:
                    items.append(self.inbox.get_nowait())
            outcomes: list[Outcome] = []
            for item in items:
                if item is _STOP:
                    stop = True
                elif isinstance(item, list) and item and isinstance(item[0], Outcome):
                    outcomes += item
                elif isinstance(item, list):
                    self.done_ids += item
            if self.error is not None:
                continue  # keep draining so close() returns; the first error is raised there
            try:
                if outcomes:
                    self._record(outcomes)
                if stop or len(self.done_ids) >= 500:
                    self._forget()
            except BaseException as exc:
                log.exception("could not record %d outcome(s)", len(outcomes))
                self.error = exc

    def _record(self, outcomes: list[Outcome]) -> None:
        retries: dict[tuple[str, float], list[Queued]] = defaultdict(list)
        settings = self.services.settings
        reroute = self.batch.pool.failover.reroutes()
        now = utcnow()
        final = self.batch.final
        plain = [o for o in outcomes if o.result is not None and o.result.status == statuses.SENT]
        others = [
            o for o in outcomes if not (o.result is not None and o.result.status == statuses.SENT)
        ]
        with self.services.db.transaction() as session:
            moved = record_sent_batch(
                session,
                [
                    (o.claimed.id, o.route.provider, o.result.provider_message_id)
                    for o in plain
                    if o.result
                ],
                now,
            )
            final.update((o.claimed.id, statuses.SENT) for o in plain if o.claimed.id in moved)
            rows = (
                session.scalars(
                    # Locked: a delivery receipt may be arriving for one of them right now.
                    select(Message)
                    .where(Message.id.in_([o.claimed.id for o in others]))
                    .with_for_update()
                ).all()
                if others
                else []
            )
            by_id = {m.id: m for m in rows}
            for outcome in others:
                message = by_id[outcome.claimed.id]
                if outcome.error is None:
                    _record_sent(session, message, outcome)
                else:
                    delay = _record_failure(session, message, outcome, settings, reroute, now)
                    if delay is not None:
                        retries[(message.priority, delay.total_seconds())].append(
                            Queued.of(message)
                        )
                final[message.id] = message.status
        for (_, seconds), items in retries.items():
            _enqueue(self.services, items, delay=timedelta(seconds=seconds))
        self.done_ids += [
            o.claimed.id for o in outcomes if final.get(o.claimed.id) != statuses.QUEUED
        ]

    def _forget(self) -> None:
        """Drop finished ids from the job index (retried ones were re-indexed to their new job)."""
        done, self.done_ids = self.done_ids, []
        if not done:
            return
        try:
            self.services.redis.hdel(JOBS_KEY, *done)
        except RedisError as exc:
            log.warning("could not update the job index: %s", exc)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _sender(provider: Provider) -> str:
    return str(getattr(provider, "sender", "") or "")


def _send_one(provider: Provider, claimed: Claimed, route: Route, delay: float) -> Outcome:
    """Runs in a pool thread: wait for the reserved slot, then one provider request."""
    if delay > 0:
        time.sleep(delay)
    outcome = Outcome(claimed, route)
    started = time.perf_counter()
    try:
        outcome.result = provider.send(
            OutboundSms(claimed.id, claimed.phone, claimed.body, claimed.segments)
        )
    except ProviderError as exc:
        outcome.error = exc
    except Exception as exc:
        # An adapter bug must not leave the message stuck in `sending`.
        log.exception("provider %s raised unexpectedly for message %s", route.provider, claimed.id)
        outcome.error = RetryableProviderError("provider_error", repr(exc)[:200])
    outcome.seconds = time.perf_counter() - started
    return outcome


def _record_sent(session: Session, message: Message, outcome: Outcome) -> None:
    assert outcome.result is not None
    provider = outcome.route.provider
    message.provider = provider
    message.provider_message_id = outcome.result.provider_message_id
    transition(session, message, statuses.SENT, source=provider)
    if outcome.result.status == statuses.DELIVERED:
        transition(session, message, statuses.DELIVERED, source=provider)
    log.debug(
        "message %s %s via %s to %s", message.id, message.status, provider, mask(message.phone)
    )


def _record_failure(
    session: Session,
    message: Message,
    outcome: Outcome,
    settings: Settings,
    reroute: bool,
    now: datetime,
) -> timedelta | None:
    """Put the message back in the queue (returns the delay) or fail it (returns None)."""
    exc = outcome.error
    assert exc is not None
    provider = outcome.route.provider
    attempt = outcome.claimed.attempt
    if exc.ambiguous:
        # It may have been accepted: never resend blindly. The message stays `sending` and the
        # sweep settles it against the provider's own record (`reconcile_stuck`).
        log.warning("message %s outcome unknown via %s: %s", message.id, provider, exc)
        message.provider = provider
        return None
    retry = exc.retryable and attempt < settings.SEND_MAX_ATTEMPTS
    log.warning(
        "message %s attempt %d via %s failed (%s): %s",
        message.id,
        attempt,
        provider,
        "retry" if retry else "final",
        exc,
    )
    if not retry:
        message.provider = provider
        reason = "provider_unavailable" if exc.retryable else exc.reason
        transition(
            session, message, statuses.FAILED, source=provider, reason=reason, detail=exc.detail
        )
        if exc.reason == "opted_out":
            consent.opt_out(session, message.phone, channel=provider, now=now)
        return None
    if reroute and not outcome.claimed.bound and not isinstance(exc, RateLimitedProviderError):
        delay = timedelta(0)  # the fallback provider takes it at once
    else:
        delay = retry_delay(attempt, settings.SEND_RETRY_BASE_SECONDS, exc.retry_after)
    message.next_attempt_at = now + delay
    transition(session, message, statuses.QUEUED, source=provider, detail=exc.detail or exc.reason)
    return delay


def retry_delay(attempt: int, base_seconds: float, retry_after: float | None = None) -> timedelta:
    """Exponential backoff (base, 3×base, 9×base…), never sooner than the provider asked."""
    seconds = base_seconds * (3 ** (attempt - 1))
    if retry_after is not None:
        seconds = max(seconds, retry_after)
    return timedelta(seconds=min(seconds, 3600))


# -- sweeping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    released: int  # deferred messages whose quiet hours ended
    requeued: int  # queued messages whose job was lost
    adopted: int = 0  # stuck in `sending`, found at the provider: recorded as sent
    retried: int = 0  # stuck in `sending`, unknown to the provider: queued again


def sweep(services: Services, now: datetime | None = None, limit: int = 5000) -> SweepResult:
    """Release deferred messages that are due, settle messages stuck in `sending`, and
    re-enqueue queued ones whose job went missing."""
    now = now or utcnow()
    released = _release_deferred(services, now, limit)
    adopted, retried = reconcile_stuck(services, now)
    grace = timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS)
    with services.db.session() as session:
        rows = session.execute(
            select(Message.id, Message.priority, Message.attempts)
            .where(Message.status == statuses.QUEUED, Message.next_attempt_at <= now - grace)
            .order_by(Message.next_attempt_at)
            .limit(limit)
        ).all()
    stale = [Queued(*row) for row in rows]
    lost = _without_live_jobs(services, stale, now)
    requeued = enqueue(services, lost)
    if released or requeued:
        log.info("sweep: %d released from quiet hours, %d re-enqueued", released, requeued)
    return SweepResult(released, requeued, adopted, retried)


# A provider's clock and ours may differ a little; a record this much older than the claim
# may still be the message.
CLOCK_SKEW = timedelta(minutes=2)


def reconcile_stuck(services: Services, now: datetime, limit: int = 500) -> tuple[int, int]:
    """Settle messages a worker claimed but never finished (killed mid-send, or no answer).

    The provider may have accepted such a message before the worker died, so it is looked up in
    the provider's own record first: found, it is recorded as sent (never sent twice); not
    found, it is queued again. Returns (adopted, queued again). `SENDING_STALE_SECONDS` must be
    well above the provider timeout, so a worker still waiting for an answer is left alone.
    """
    stale_before = now - timedelta(seconds=services.settings.SENDING_STALE_SECONDS)
    with services.db.session() as session:
        stuck = session.execute(
            select(Message.id, Message.phone, Message.body, Message.provider, Message.updated_at)
            .where(Message.status == statuses.SENDING, Message.updated_at <= stale_before)
            .order_by(Message.updated_at)
            .limit(limit)
        ).all()
    adopted = retried = 0
    for message_id, phone, body, provider_name, claimed_at in stuck:
        provider = services.provider(provider_name)
        found: SentRecord | None = None
        if isinstance(provider, ReconcilableProvider):
            try:
                records = provider.sent_to(phone, claimed_at - CLOCK_SKEW)
            except ProviderError as exc:
                log.warning("cannot reconcile %s with %s yet: %s", message_id, provider.name, exc)
                continue
            found = _unclaimed_match(services, provider.name, records, body or "")
        outcome = _settle_stuck(services, message_id, claimed_at, provider.name, found, now)
        adopted += outcome == statuses.SENT
        retried += outcome == statuses.QUEUED
    if adopted or retried:
        log.info("stuck sends: %d found at the provider, %d queued again", adopted, retried)
    return adopted, retried


def _unclaimed_match(
    services: Services, provider: str, records: Sequence[SentRecord], body: str
) -> SentRecord | None:
    """The provider's record of this text not already tied to another of our messages."""
    candidates = [r for r in records if r.body == body]
    if not candidates:
        return None
    with services.db.session() as session:
        known = set(
            session.scalars(
                select(Message.provider_message_id).where(
                    Message.provider == provider,
                    Message.provider_message_id.in_([r.provider_message_id for r in candidates]),
                )
            )
        )
    # Oldest first: of two identical texts, the earlier claim takes the earlier record.
    for record in reversed(candidates):
        if record.provider_message_id not in known:
            return record
    return None


def _settle_stuck(
    services: Services,
    message_id: str,
    claimed_at: datetime,
    provider: str,
    found: SentRecord | None,
    now: datetime,
) -> str | None:
    with services.db.transaction() as session:
        # Only the sweeper that moves the row first settles it (two schedulers, a late worker).
        taken = session.execute(
            update(Message)
            .where(
                Message.id == message_id,
                Message.status == statuses.SENDING,
                Message.updated_at == claimed_at,
            )
            .values(updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        message = session.get_one(Message, message_id, populate_existing=True)
        if found is not None:
            message.provider = provider
            message.provider_message_id = found.provider_message_id
            transition(
                session,
                message,
                statuses.SENT,
                source="reconciled",
                detail="send cut short; the provider had accepted it",
                now=now,
            )
            return statuses.SENT
        if message.attempts >= services.settings.SEND_MAX_ATTEMPTS:
            transition(
                session,
                message,
                statuses.FAILED,
                source="reconciled",
                reason="provider_unavailable",
                detail="no answer from the provider after several attempts",
                now=now,
            )
            return statuses.FAILED
        message.next_attempt_at = now
        transition(
            session,
            message,
            statuses.QUEUED,
            source="reconciled",
            detail="send cut short; the provider has no record of it",
            now=now,
        )
        item = Queued.of(message)
    enqueue(services, [item])
    return statuses.QUEUED


def _release_deferred(services: Services, now: datetime, limit: int) -> int:
    settings = services.settings
    resume_at = quiet_until(now, settings.quiet_hours, settings.tz)
    if resume_at is not None:
        # Due, but the sweep runs inside the next window (it slept through the end of the last
        # one, or the clock jumped): they wait for this window to end too.
        with services.db.transaction() as session:
            session.execute(
                update(Message)
                .where(Message.status == statuses.DEFERRED, Message.next_attempt_at <= now)
                .values(next_attempt_at=resume_at)
                .execution_options(synchronize_session=False)
            )
        return 0
    with services.db.transaction() as session:
        messages = session.scalars(
            select(Message)
            .where(Message.status == statuses.DEFERRED, Message.next_attempt_at <= now)
            .order_by(Message.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for message in messages:
            message.next_attempt_at = now
            transition(session, message, statuses.QUEUED, source="scheduler", now=now)
        items = [Queued.of(m) for m in messages]
    enqueue(services, items)
    return len(items)


def _without_live_jobs(services: Services, items: Sequence[Queued], now: datetime) -> list[Queued]:
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
