"""The batch engine: the life of one send job, from the ids it carries to their recorded outcome.

A batch claims its ids in small chunks (`sending`, never two workers for one message), as fast
as the shared rate limiter hands out slots; dispatches each claimed message to the pool on its
route (its bound provider, or where failover points); collects the answers (metrics, failover
health, 429 pauses); and hands them to its recorder, which writes them a few at a time in short
transactions. Each message keeps its own status, attempts and retries. No database transaction
is held open across a provider call.

A bulk batch checks the urgent queue as it goes and, when urgent work waits (or the worker is
stopping), finishes what it has in flight and puts the rest of its ids back at the front of the
bulk queue, so a broadcast never holds up a reply for long. When a job has nothing left but
answers to await and another job waits, a thread of its own awaits and records them while the
worker starts the next job: the slots stay counted, but none sits idle for a round trip.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from queue import Empty, SimpleQueue

from redis.exceptions import RedisError
from rq import get_current_job

from notifier.core.db import utcnow
from notifier.core.runtime import URGENT_QUEUE, Services
from notifier.messaging import statuses
from notifier.messaging.delivery.enqueueing import JOB_TIMEOUT, Queued, enqueue
from notifier.messaging.delivery.pool import Claimed, Outcome, send_pool, sender_of
from notifier.messaging.delivery.recorder import Recorder
from notifier.messaging.failover import Route
from notifier.messaging.outbox import claim_batch, defer_if_quiet
from notifier.models import Message
from notifier.providers import PermanentProviderError, Provider, RateLimitedProviderError
from notifier.text.quiet_hours import quiet_until

log = logging.getLogger(__name__)

CLAIM_CHUNK = 100  # most messages claimed in one UPDATE
CLAIM_MIN = 16  # fewest worth a transaction (unless that is all that is left)
URGENT_CHECK_EVERY = 0.05  # seconds between looks at the urgent queue from a bulk batch
URGENT_HORIZON = 5.0  # an urgent message may reserve its rate-limit slot this far ahead
HEARTBEAT_EVERY = 10.0  # seconds between heartbeats of a running send job


def send_batch(
    services: Services, message_ids: Sequence[str], priority: str | None = None
) -> dict[str, int]:
    """Send the still-queued messages among `message_ids`; counts of what became of them.

    `priority` is the queue the batch came from: a bulk batch makes way for urgent work. In a
    worker, the last answers of a batch are awaited in the background when another job waits
    (their messages show as "sending" in the counts returned).
    """
    batch = _Batch(
        services,
        message_ids,
        priority=priority,
        yield_to_urgent=priority != URGENT_QUEUE,
        hand_off=get_current_job() is not None,
    )
    batch.run()
    return batch.counts


def send_message(services: Services, message_id: str) -> str:
    """Send one message if it is still queued. Returns the message's status afterwards."""
    batch = _Batch(services, [message_id], priority=None, yield_to_urgent=False, hand_off=False)
    batch.run()
    if message_id in batch.recorder.final:
        return batch.recorder.final[message_id]
    with services.db.session() as session:
        current = session.get(Message, message_id)
        return current.status if current else "missing"


class _Batch:
    """One batch of ids: claim in chunks, keep up to SEND_CONCURRENCY requests in flight.

    The calling thread claims and dispatches; provider calls run in the pool's threads; the
    recorder's thread writes the outcomes.
    """

    def __init__(
        self,
        services: Services,
        ids: Sequence[str],
        *,
        priority: str | None,
        yield_to_urgent: bool,
        hand_off: bool,
    ) -> None:
        self.services = services
        self.priority = priority
        self.yield_to_urgent = yield_to_urgent
        self.hand_off = hand_off
        self.pool = send_pool(services)
        self.recorder = Recorder(services, self.pool.failover)
        self.pending: deque[str] = deque(dict.fromkeys(ids))  # not claimed yet
        self.ready: deque[tuple[Claimed, Route]] = deque()  # claimed, waiting for a slot
        self.in_flight = 0  # handed to the pool, not answered yet
        self.completions: SimpleQueue[Future[Outcome]] = SimpleQueue()
        self.claim_size = CLAIM_CHUNK
        self.slot_at = 0.0  # monotonic time before which no rate-limit slot is worth asking for
        self.yielding = False  # urgent work waits, or the worker stops: claim no more
        self.urgent_checked_at = 0.0
        self.waiting_checked_at = 0.0
        self.beat_at = time.monotonic()
        self.counts: dict[str, int] = {}

    def run(self) -> None:
        """Claim, send and collect until every claimed message is answered; then count what
        became of them and put back what was not claimed."""
        self.recorder.start()
        handed_off = False
        try:
            while (self.pending and not self.yielding) or self.ready or self.in_flight:
                if self._only_answers_left() and self._other_work_waits():
                    handed_off = True
                    break
                self._make_way_for_urgent()
                self._claim_and_dispatch()
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
        self._count(handed_off)
        if handed_off:
            self.pool.finish_in_background(self.finish)
        else:
            # Earlier batches' last answers are recorded before the queue looks done.
            self.pool.wait_finished()
        self._put_back_unclaimed()

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

    # -- the steps, in the order `run` takes them ------------------------------------------------

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

    def _make_way_for_urgent(self) -> None:
        """Stop claiming when the worker is stopping, or (bulk only) when urgent work waits."""
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

    def _claim_and_dispatch(self) -> None:
        """Send what was claimed before as slots free up; claim more when it is worth it."""
        self._dispatch()
        if self._claim():
            self._dispatch()

    def _claim(self) -> bool:
        """Claim the next chunk, sized to the slots about to free up; False if not worth it yet."""
        if self.yielding or not self.pending or time.monotonic() < self.slot_at:
            return False
        free = self.pool.capacity - self.pool.busy - len(self.ready)
        # Claim ahead a little, in chunks worth a transaction, so slots never wait for a claim.
        want = min(len(self.pending), self.claim_size, free + self.pool.concurrency // 4)
        enough = min(CLAIM_MIN, self.pool.concurrency // 4, len(self.pending), self.claim_size)
        if want <= 0 or want < max(1, enough):
            return False
        chunk = [self.pending.popleft() for _ in range(want)]
        claimed = _claim_chunk(self.services, chunk)
        got = {c.id for c in claimed}
        self.recorder.skip([i for i in chunk if i not in got])
        for c in claimed:
            self.priority = self.priority or c.priority
            route = Route(c.bound) if c.bound else self.pool.failover.route()
            self.ready.append((c, route))
        return True

    def _dispatch(self) -> None:
        """Hand claimed messages to the pool, each at the time its rate-limit slot comes."""
        now = time.monotonic()
        if now < self.slot_at:
            return
        free = self.pool.capacity - self.pool.busy
        waiting = [self.ready.popleft() for _ in range(min(free, len(self.ready)))]
        if not waiting:
            return
        by_provider: dict[str, list[tuple[Claimed, Route]]] = defaultdict(list)
        for entry in waiting:
            by_provider[entry[1].provider].append(entry)
        left: list[tuple[Claimed, Route]] = []
        for name, entries in by_provider.items():
            left += self._dispatch_to(name, entries, now)
        if left:
            self.ready.extendleft(reversed(left))
            # Rate limited: claim only about as many as the limiter lets through per horizon.
            self.claim_size = max(1, len(waiting) - len(left))
        else:
            self.claim_size = min(CLAIM_CHUNK, self.claim_size * 2)

    def _dispatch_to(
        self, name: str, entries: list[tuple[Claimed, Route]], now: float
    ) -> list[tuple[Claimed, Route]]:
        """Submit what the limiter has slots for to provider `name`; returns the rest."""
        try:
            provider = self.services.provider(name)
        except ValueError as exc:
            error = PermanentProviderError("provider_not_configured", str(exc))
            self.recorder.record([Outcome(c, r, error=error) for c, r in entries])
            return []
        delays, retry_in = self._reserve(name, provider, entries)
        for (claimed, route), delay in zip(entries, delays, strict=False):
            self.pool.metrics.wait(name, delay)
            future = self.pool.submit(provider, claimed, route, delay)
            self.in_flight += 1
            future.add_done_callback(self.completions.put)
        if retry_in is not None and len(delays) < len(entries):
            self.slot_at = now + max(retry_in, 0.005)
        return entries[len(delays) :]

    def _reserve(
        self, name: str, provider: Provider, entries: list[tuple[Claimed, Route]]
    ) -> tuple[list[float], float | None]:
        """Rate-limit slots for `entries`: the wait before each granted one, and when to ask
        again for the rest (None: the limiter is unreachable, so every entry goes now)."""
        urgent = entries[0][0].priority == URGENT_QUEUE
        try:
            reservation = self.pool.limiter.reserve(
                name,
                sender_of(provider),
                [c.segments for c, _ in entries],
                horizon=URGENT_HORIZON if urgent else None,
            )
        except RedisError as exc:
            log.warning("rate limiter unavailable, sending unthrottled: %s", exc)
            return [0.0] * len(entries), None
        return reservation.delays, reservation.retry_in

    def _collect(self) -> None:
        """Take the answers that came in, observe them, and pass them to the recorder."""
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
        self.recorder.record(outcomes)

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
                self.pool.limiter.pause(name, sender_of(self.services.provider(name)), pause)
            except RedisError as exc:
                log.warning("could not pause the rate limiter: %s", exc)

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

    def _drain(self) -> None:
        """After an error (database gone, say): still record what the provider already answered."""
        try:
            while self.in_flight:
                self._collect()
        except Exception:
            log.exception("could not collect %d provider answer(s)", self.in_flight)

    def _count(self, handed_off: bool) -> None:
        """What became of the batch's messages (the recorder may still be writing: a copy)."""
        self.counts = dict(Counter(self.recorder.final.copy().values()))
        if handed_off:
            self.counts[statuses.SENDING] = self.in_flight

    def _put_back_unclaimed(self) -> None:
        """Put the unclaimed rest back, ahead of other bulk work, then let urgent work run."""
        if not self.pending:
            return
        items = [Queued(i, self.priority or "bulk", 0) for i in self.pending]
        enqueue(self.services, items, at_front=True)
        log.info("batch yields: %d message(s) put back in the queue", len(items))


def _claim_chunk(services: Services, ids: list[str]) -> list[Claimed]:
    """Claim the still-queued ones among `ids` (`sending`), in one short transaction."""
    settings = services.settings
    with services.db.transaction() as session:
        deferred: set[str] = set()
        if quiet_until(utcnow(), settings.quiet_hours, settings.tz) is not None:
            # A backlog drained late must not wake citizens: bulk waits for the morning.
            deferred = {i for i in ids if defer_if_quiet(session, settings, i)}
        messages = claim_batch(session, [i for i in ids if i not in deferred])
        return [
            Claimed(m.id, m.phone, m.body or "", m.segments, m.attempts, m.priority, m.provider)
            for m in messages
        ]
