"""The process-wide sending machinery: one bounded thread pool, rate limiter, failover and metrics.

Every batch a worker runs shares them. A pool thread makes one provider request for one claimed
message (`send_one`) and answers with an `Outcome`; it writes nothing to the database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from redis.exceptions import RedisError

from notifier.core.metrics import MetricsBuffer
from notifier.core.runtime import Services
from notifier.messaging.failover import Failover, Route
from notifier.messaging.sendrate import SendRateLimiter, parse_rates
from notifier.providers import (
    OutboundSms,
    Provider,
    ProviderError,
    RetryableProviderError,
    SendResult,
)

log = logging.getLogger(__name__)


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
    """The provider's answer to one request: a result, or the error it raised."""

    claimed: Claimed
    route: Route
    result: SendResult | None = None
    error: ProviderError | None = None
    seconds: float = 0.0


def send_one(provider: Provider, claimed: Claimed, route: Route, delay: float) -> Outcome:
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


def sender_of(provider: Provider) -> str:
    """The sender the rate limit counts against (adapters may have one)."""
    return str(getattr(provider, "sender", "") or "")


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
        future = self.executor.submit(send_one, provider, claimed, route, delay)
        future.add_done_callback(self._answered)
        return future

    def _answered(self, _future: Future[Outcome]) -> None:
        with self._lock:
            self._busy -= 1

    def finish_in_background(self, finish: Callable[[], None]) -> None:
        """Run a batch's `finish` (collect and record its last answers) in a thread of its own,
        so the worker takes its next job meanwhile instead of leaving slots idle for a provider
        round trip."""
        thread = threading.Thread(target=finish, name="notifier-finish")
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
