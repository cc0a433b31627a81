"""The worker command as operators run it: a real process, started, stopped and killed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from rq.scheduler import RQScheduler

from bench.delivery import count_sent, create_messages
from bench.harness import Stack, wait_until
from notifier.core.db import utcnow
from notifier.messaging import delivery


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.delenv("BENCH_DATABASE_URL", raising=False)  # a SQLite file of its own
    with Stack() as running:
        running.start_redis()
        running.start_fake_twilio(latency=0.05)
        running.create_database()
        yield running


def test_worker_sends_stops_on_sigterm_and_a_restarted_one_finishes(stack: Stack) -> None:
    with stack.app_services() as services:
        items = create_messages(services, 200)
        [worker] = stack.start_workers(1, SEND_CONCURRENCY="4", SEND_BATCH_SIZE="200")
        delivery.enqueue(services, items)
        wait_until(lambda: count_sent(services) >= 20, 60, "first messages")

        assert worker.stop() == 0  # SIGTERM: the batch puts the rest back and the worker exits
        assert 20 <= count_sent(services) < 200
        worker.start()
        wait_until(lambda: count_sent(services) >= 200, 120, "all messages")
    stats = stack.twilio_stats()
    assert stats["messages"] == 200  # nothing sent twice across the restart


def test_a_killed_worker_loses_nothing_and_doubles_nothing(stack: Stack) -> None:
    with stack.app_services() as services:
        items = create_messages(services, 200)
        [worker] = stack.start_workers(1, SEND_CONCURRENCY="4", SEND_BATCH_SIZE="50")
        delivery.enqueue(services, items)
        wait_until(lambda: count_sent(services) >= 10, 60, "first messages")
        worker.kill()  # mid-send: a few messages are left `sending`, their outcome unknown
        # The provider finishes what reached it (as a real one would, long before the sweep).
        wait_until(lambda: stack.twilio_stats()["in_flight"] == 0, 10, "the provider")
        # Minutes later the sweep settles those with the provider's own record and puts the
        # dead worker's unclaimed messages back in the queue; a new worker sends the rest.
        swept = delivery.sweep(services, now=utcnow() + timedelta(minutes=5))
        assert swept.requeued + swept.adopted + swept.retried > 0
        worker.start()
        wait_until(lambda: count_sent(services) >= 200, 120, "every message", every=0.5)
    assert stack.twilio_stats()["messages"] == 200


def test_sigusr2_prints_where_each_thread_of_a_worker_and_the_scheduler_is_and_stops_nothing(
    stack: Stack,
) -> None:
    processes = [*stack.start_workers(1), stack.start_scheduler()]
    # Both past start-up, into their loops: the worker has registered with RQ (start_workers
    # waits for that), the scheduler holds the lock for moving due retries.
    lock = RQScheduler.get_locking_key("urgent")
    wait_until(lambda: bool(stack.redis().exists(lock)), 30, "the scheduler")
    for process in processes:
        process.signal(signal.SIGUSR2)
    for process in processes:
        wait_until(
            lambda p=process: "most recent call first" in p.log_path.read_text(), 10, "stacks"
        )
        assert process.alive
        assert process.stop() == 0


def test_a_worker_killed_while_it_waits_for_work_takes_no_job_with_it(stack: Stack) -> None:
    """A killed worker must leave no process behind holding its place in Redis' queue of
    waiting readers (RQ's scheduler child used to): the next job goes to a live worker."""
    with stack.app_services() as services:
        [first] = stack.start_workers(1)
        time.sleep(1)  # waiting in BLPOP
        # Only the worker's own process, as the OOM killer would (not its process group).
        os.kill(first.pid, signal.SIGKILL)
        assert first.popen is not None
        first.popen.wait(10)
        stack.start_workers(1)
        delivery.enqueue(services, create_messages(services, 1))
        wait_until(lambda: count_sent(services) == 1, 20, "the message")
