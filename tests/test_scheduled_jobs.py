"""Retries scheduled for later reach their queue when due, moved by the scheduler process."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from rq.job import Job

from notifier.core.runtime import Services
from notifier.processes import scheduler
from notifier.processes.due_jobs import DueJobMover
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import run_jobs
from tests.support.processes import RedisServer
from tests.test_delivery_at_scale import make_services, queue_messages


def schedule_due_job(services: Services) -> None:
    """A job whose time has come (a send batch with nothing left in it)."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    services.queues["urgent"].enqueue_at(past, "jobs.send.send_batch", [])


def test_a_failed_send_is_retried_once_its_backoff_is_over(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings, SEND_RETRY_BASE_SECONDS=30)
    fake_twilio.fail_next(1, status=503)
    queue_messages(services, 1, urgent=True)
    run_jobs(services)
    urgent = services.queues["urgent"]
    registry = urgent.scheduled_job_registry
    [retry] = registry.get_job_ids()

    mover = DueJobMover(services)
    mover.run()
    assert urgent.count == 0  # 30 s of backoff to go
    assert registry.count == 1

    over = datetime.now(UTC) - timedelta(seconds=1)
    registry.schedule(Job.fetch(retry, connection=services.redis), over)
    mover.run()
    assert urgent.job_ids == [retry]
    assert registry.count == 0
    run_jobs(services)
    assert [m.to for m in fake_twilio.messages] == ["+84912000000"]


def test_of_two_schedulers_one_moves_the_jobs_and_the_other_takes_over_when_it_stops(
    services: Services,
) -> None:
    first, second = DueJobMover(services), DueJobMover(services)
    first.run()
    second.run()
    assert first.scheduler.acquired_locks == {"urgent", "bulk"}
    assert second.scheduler.acquired_locks == set()

    first.stop()
    schedule_due_job(services)
    second.run()
    assert second.scheduler.acquired_locks == {"urgent", "bulk"}
    assert services.queues["urgent"].count == 1


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


def test_a_redis_restart_pauses_the_moves_without_stopping_them(
    make_app: Callable[..., Flask], own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    services: Services = make_app(REDIS_URL=own_redis.url).extensions["notifier"]
    mover = DueJobMover(services)
    mover.run()
    own_redis.stop()
    with caplog.at_level(logging.WARNING, logger="notifier.processes.due_jobs"):
        for _ in range(3):
            mover.run()
    assert len(caplog.records) == 1  # said once, not once a second
    assert "cannot move due retries" in caplog.records[0].getMessage()

    own_redis.start()  # empty: the locks went with the old data
    schedule_due_job(services)
    mover.run()
    assert services.queues["urgent"].count == 1


def test_a_one_off_scheduler_run_leaves_the_locks_to_the_running_scheduler(
    services: Services,
) -> None:
    scheduler.run_once(services)  # `notifier scheduler --once`, from cron say
    running = DueJobMover(services)
    running.run()
    assert running.scheduler.acquired_locks == {"urgent", "bulk"}
