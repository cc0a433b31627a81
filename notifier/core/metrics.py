"""Prometheus metrics, read at scrape time from Redis and the database.

Workers run on any number of machines, web workers under gunicorn in any number of processes: so
no process keeps metrics of its own. Workers add their counts (provider requests, latency
histogram buckets, rate-limit waits) to one Redis hash, flushed about once a second; `/metrics`
on any web process reads that hash, the queue lengths and the message counts by status and
provider, so every scrape of every process sees the same cluster-wide figures and nothing needs
`PROMETHEUS_MULTIPROC_DIR` or a scrape target per worker.

This module is what workers need (counting); `metrics_export` renders the text exposition and
is loaded only by a process that serves `/metrics`.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from functools import lru_cache

from redis import Redis

METRICS_KEY = "notifier:metrics"
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)
WAIT_BUCKETS = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
_SEP = "|"


class MetricsBuffer:
    """Counts kept in process and added to Redis in one round trip by `flush`."""

    def __init__(self, redis: Redis, every: float = 1.0) -> None:
        self.redis = redis
        self.every = every
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._sums: defaultdict[str, float] = defaultdict(float)
        self._flushed_at = time.monotonic()

    def request(self, provider: str, outcome: str, seconds: float) -> None:
        """One provider call: `outcome` is sent, retryable, permanent or rate_limited."""
        with self._lock:
            self._counts[_field("requests", provider, outcome)] += 1
            self._observe("latency", provider, seconds, LATENCY_BUCKETS)

    def wait(self, provider: str, seconds: float) -> None:
        """Time a message waited for its rate-limit slot."""
        with self._lock:
            self._observe("wait", provider, seconds, WAIT_BUCKETS)

    def _observe(self, name: str, provider: str, value: float, buckets: tuple[float, ...]) -> None:
        bucket_fields, count_field, sum_field = _histogram_fields(name, provider, buckets)
        index = bisect_left(buckets, value)
        self._counts[bucket_fields[index]] += 1
        self._counts[count_field] += 1
        self._sums[sum_field] += value

    def flush(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._flushed_at < self.every:
            return
        with self._lock:
            counts, sums = self._counts, self._sums
            self._counts, self._sums = Counter(), defaultdict(float)
            self._flushed_at = time.monotonic()
        if not (counts or sums):
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for field, count in counts.items():
                pipe.hincrby(METRICS_KEY, field, count)
            for field, total in sums.items():
                pipe.hincrbyfloat(METRICS_KEY, field, total)
            pipe.execute()


def _field(*parts: str) -> str:
    return _SEP.join(parts)


@lru_cache(maxsize=256)
def _histogram_fields(
    name: str, provider: str, buckets: tuple[float, ...]
) -> tuple[tuple[str, ...], str, str]:
    """Field names of one histogram: one per bucket then +Inf, the count and the sum."""
    les = (*map(repr, buckets), "+Inf")
    return (
        tuple(_field(name, provider, le) for le in les),
        _field(name, provider, "count"),
        _field(name, provider, "sum"),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
