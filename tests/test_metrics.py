"""Prometheus metrics: the same cluster-wide figures from every web process."""

from __future__ import annotations

from typing import Any

from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from notifier.core.runtime import Services
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import dossier_event, post_signed, run_jobs


def scrape(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
    }


def test_metrics_count_messages_requests_latency_and_queues(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    app: Flask = make_app(**twilio_settings)
    services: Services = app.extensions["notifier"]
    fake_twilio.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")
    post_signed(app.test_client(), dossier_event())
    post_signed(
        app.test_client(), dossier_event(event_id="second", **{"citizen.phone": "0987654321"})
    )
    assert services.queues["urgent"].count == 2
    before = scrape(app)
    assert before[("notifier_queue_jobs", (("queue", "urgent"),))] == 2
    assert before[("notifier_messages", (("provider", ""), ("status", "queued")))] == 2

    run_jobs(services)
    # A second web process (another gunicorn worker) sees the same figures.
    other: Flask = make_app(**twilio_settings)
    for metrics in (scrape(app), scrape(other)):
        assert metrics[("notifier_messages", (("provider", "twilio"), ("status", "sent")))] == 1
        assert metrics[("notifier_messages", (("provider", "twilio"), ("status", "failed")))] == 1
        requests = "notifier_provider_requests_total"
        assert metrics[(requests, (("outcome", "sent"), ("provider", "twilio")))] == 1
        assert metrics[(requests, (("outcome", "permanent"), ("provider", "twilio")))] == 1
        latency = "notifier_provider_latency_seconds_count"
        assert metrics[(latency, (("provider", "twilio"),))] == 2
        assert metrics[("notifier_rate_limit_wait_seconds_count", (("provider", "twilio"),))] == 2
        assert metrics[("notifier_queue_jobs", (("queue", "urgent"),))] == 0


def test_metrics_can_be_switched_off(make_app: Any) -> None:
    app: Flask = make_app(METRICS_ENABLED=False)
    response = app.test_client().get("/metrics")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
