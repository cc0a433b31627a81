"""The Prometheus text exposition of `/metrics`, read at scrape time (see `notifier.metrics`).

Kept apart so that only a process serving `/metrics` loads prometheus_client.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from notifier.core.metrics import _SEP, LATENCY_BUCKETS, METRICS_KEY, WAIT_BUCKETS, _field, _text
from notifier.core.runtime import QUEUE_NAMES, Services
from notifier.models import Message, ProviderSwitch


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
