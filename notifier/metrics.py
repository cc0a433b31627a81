"""Prometheus metrics, read at scrape time from Redis and the database.

Workers run on any number of machines, web workers under gunicorn in any number of processes: so
no process keeps metrics of its own. Workers add their counts (provider requests, latency
histogram buckets, rate-limit waits) to one Redis hash, flushed about once a second; `/metrics`
on any web process reads that hash, the queue lengths and the message counts by status and
provider, so every scrape of every process sees the same cluster-wide figures and nothing needs
`PROMETHEUS_MULTIPROC_DIR` or a scrape target per worker.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterator
from functools import lru_cache

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import Redis
from sqlalchemy import func, select

from notifier.models import Message, ProviderSwitch
from notifier.runtime import QUEUE_NAMES, Services

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


class NotifierCollector(Collector):
    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        yield from self._messages()
        yield from self._queues()
        yield from self._from_workers()
        yield from self._switches()

    def _messages(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "notifier_messages", "Messages by status and provider", labels=["status", "provider"]
        )
        with self.services.db.session() as session:
            rows = session.execute(
                select(Message.status, Message.provider, func.count()).group_by(
                    Message.status, Message.provider
                )
            ).all()
        for status, provider, count in rows:
            gauge.add_metric([status, provider or ""], count)
        yield gauge

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "notifier_queue_jobs",
            "Jobs waiting in each queue (a send job carries a batch)",
            labels=["queue"],
        )
        scheduled = GaugeMetricFamily(
            "notifier_queue_scheduled_jobs", "Jobs scheduled for later (retries)", labels=["queue"]
        )
        for name in QUEUE_NAMES:
            queue = self.services.queues[name]
            depth.add_metric([name], queue.count)
            scheduled.add_metric([name], queue.scheduled_job_registry.count)
        yield depth
        yield scheduled

    def _from_workers(self) -> Iterator[Metric]:
        raw = self.services.redis.hgetall(METRICS_KEY)
        values = {_text(k): float(v) for k, v in raw.items()}
        requests = CounterMetricFamily(
            "notifier_provider_requests",
            "Provider send requests by outcome",
            labels=["provider", "outcome"],
        )
        for field, value in sorted(values.items()):
            kind, provider, outcome = field.split(_SEP, 2)
            if kind == "requests":
                requests.add_metric([provider, outcome], value)
        yield requests
        yield _histogram(
            values,
            "latency",
            LATENCY_BUCKETS,
            "notifier_provider_latency_seconds",
            "Time a provider took to answer a send request",
        )
        yield _histogram(
            values,
            "wait",
            WAIT_BUCKETS,
            "notifier_rate_limit_wait_seconds",
            "Time a message waited for its slot under the provider rate limit",
        )

    def _switches(self) -> Iterator[Metric]:
        counter = CounterMetricFamily(
            "notifier_provider_switches",
            "Switches to the fallback provider and back",
            labels=["from_provider", "to_provider"],
        )
        with self.services.db.session() as session:
            rows = session.execute(
                select(
                    ProviderSwitch.from_provider, ProviderSwitch.to_provider, func.count()
                ).group_by(ProviderSwitch.from_provider, ProviderSwitch.to_provider)
            ).all()
        for from_provider, to_provider, count in rows:
            counter.add_metric([from_provider, to_provider], count)
        yield counter


def _histogram(
    values: dict[str, float], kind: str, buckets: tuple[float, ...], name: str, doc: str
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["provider"])
    providers = sorted({f.split(_SEP)[1] for f in values if f.startswith(kind + _SEP)})
    for provider in providers:
        cumulative = 0.0
        points = []
        for le in [*map(repr, buckets), "+Inf"]:
            cumulative += values.get(_field(kind, provider, le), 0.0)
            points.append((le, cumulative))
        family.add_metric(
            [provider], points, sum_value=values.get(_field(kind, provider, "sum"), 0.0)
        )
    return family


def render(services: Services) -> bytes:
    """The text exposition of every metric, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NotifierCollector(services))
    return generate_latest(registry)
