"""Sending at scale: batches, many requests in flight, priority, the shared rate limiter, failover."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis
from rq.job import JobStatus
from sqlalchemy import func, literal, select, true

from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import delivery, failover, outbox
from notifier.messaging.sendrate import SendRateLimiter, parse_rates
from notifier.models import Message, MessageStatusEvent, ProviderSwitch
from tests.support.fake_twilio import FakeTwilio, ReceivedMessage
from tests.support.helpers import dossier_event, post_signed, run_jobs


def make_services(make_app: Any, twilio_settings: dict[str, Any], **overrides: Any) -> Services:
    app: Flask = make_app(**{**twilio_settings, **overrides})
    found: Services = app.extensions["notifier"]
    found.app = app  # type: ignore[attr-defined]
    return found


def services_client(services: Services) -> Any:
    return services.app.test_client()  # type: ignore[attr-defined]


def queue_messages(
    services: Services,
    count: int,
    *,
    urgent: bool = False,
    text: str = "Thong bao {i}",
    **links: Any,
) -> list[str]:
    """Commit `count` messages, then enqueue them (as the broadcast and notice code does)."""
    with services.db.transaction() as session:
        created = [
            outbox.create_message(
                session,
                services.settings,
                phone=f"09120{i:05d}",
                prepared=outbox.prepare(services.settings, text.format(i=i)),
                urgent=urgent,
                essential=True,
                kind="broadcast" if not urgent else "dossier",
                **links,
            )
            for i in range(count)
        ]
    delivery.enqueue_committed(services, created)
    return [m.id for m in created]


def statuses_of(services: Services) -> Counter[str]:
    with services.db.session() as session:
        query = select(Message.status, func.count()).group_by(Message.status)
        return Counter({status: count for status, count in session.execute(query)})  # noqa: C416


def test_a_broadcast_goes_out_in_a_few_batch_jobs_each_message_once(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings, SEND_BATCH_SIZE=100, SEND_CONCURRENCY=8)
    ids = queue_messages(services, 250)
    assert services.queues["bulk"].count == 3  # 100 + 100 + 50 ids

    run_jobs(services)

    assert sorted(m.to for m in fake_twilio.messages) == sorted(
        f"+849120{i:05d}" for i in range(250)
    )
    assert statuses_of(services) == Counter({"sent": 250})
    with services.db.session() as session:
        history = session.execute(
            select(MessageStatusEvent.status, func.count())
            .where(MessageStatusEvent.message_id.in_(ids))
            .group_by(MessageStatusEvent.status)
        ).all()
    assert dict(history) == {
        "queued": 250,
        "sending": 250,
        "sent": 250,
    }


def test_requests_run_in_parallel_over_reused_connections(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    fake_twilio.latency = 0.05
    services = make_services(make_app, twilio_settings, SEND_CONCURRENCY=8)
    queue_messages(services, 80)
    run_jobs(services)

    assert len(fake_twilio.messages) == 80
    assert fake_twilio.max_in_flight > 1
    assert fake_twilio.max_in_flight <= 8
    # One persistent connection per sending thread, not one per message.
    assert fake_twilio.connections <= 8


def test_the_next_job_starts_while_the_last_answers_of_the_previous_are_awaited(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    fake_twilio.latency = 0.1
    services = make_services(make_app, twilio_settings, SEND_CONCURRENCY=8, SEND_BATCH_SIZE=4)
    queue_messages(services, 40)
    run_jobs(services)

    # One job's four requests at a time would never put more than four in flight.
    assert fake_twilio.max_in_flight > 4
    assert len({m.to for m in fake_twilio.messages}) == len(fake_twilio.messages) == 40
    # Every answer was recorded by the time the worker found the queues empty.
    assert statuses_of(services) == Counter({"sent": 40})


def test_a_repeated_batch_job_sends_nothing_twice(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings)
    ids = queue_messages(services, 20)
    assert delivery.send_batch(services, ids, "bulk") == {"sent": 20}
    assert delivery.send_batch(services, ids, "bulk") == {}
    run_jobs(services)
    assert len(fake_twilio.messages) == 20


def plan_of(services: Services, statement: Any, **params: Any) -> str:
    """PostgreSQL's plan for `statement` (not run)."""
    with services.db.engine.connect() as connection:
        compiled = statement.compile(dialect=connection.dialect)
        rows = connection.exec_driver_sql(
            f"EXPLAIN {compiled.string}", {**compiled.params, **params}
        )
        return "\n".join(row[0] for row in rows)


def test_claims_read_only_their_own_messages_after_a_broadcast_is_queued(
    make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    """Statistics taken before a broadcast say almost nothing is queued; a claim of a few ids
    must still find them by primary key, not read the whole queue through the status index."""
    services = make_services(make_app, twilio_settings)
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL's planner")
    queue_messages(services, 300)
    table = Message.__table__
    with services.db.engine.begin() as connection:
        connection.execute(table.update().values(status="delivered"))
        connection.exec_driver_sql("ANALYZE messages")
        # A broadcast of 20,000, as copies of one message (far quicker than composing each).
        copied = [c for c in table.columns if c.name not in ("id", "status")]
        connection.execute(
            table.insert().from_select(
                ["id", "status", *copied],
                select(
                    func.gen_random_uuid().cast(table.c.id.type),
                    literal("queued"),
                    *copied,
                )
                .select_from(table.join(func.generate_series(1, 20_000).alias("n"), true()))
                .where(table.c.id == select(table.c.id).limit(1).scalar_subquery()),
            )
        )
        ids = connection.scalars(select(table.c.id).where(table.c.status == "queued")).all()

    claim = plan_of(services, outbox._CLAIM.postgresql, ids=ids[:20], now=utcnow())
    mark_sent = plan_of(
        services,
        outbox._MARK_SENT_FROM_ARRAYS,
        ids=ids[:20],
        providers=["twilio"] * 20,
        sent_ids=[f"SM{i}" for i in range(20)],
        now=utcnow(),
    )

    for plan in (claim, mark_sent):
        assert "pk_messages" in plan, plan
        assert "ix_messages_status" not in plan, plan
        assert "Seq Scan on messages" not in plan, plan


def test_failures_in_a_batch_are_handled_message_by_message(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings, SEND_CONCURRENCY=1)
    fake_twilio.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")
    fake_twilio.fail_next(1, status=503)
    ids = queue_messages(services, 5)
    run_jobs(services)

    with services.db.session() as session:
        rows = {m.id: m for m in session.scalars(select(Message))}
    assert [rows[i].status for i in ids] == ["failed", "sent", "sent", "sent", "sent"]
    assert rows[ids[0]].failure_reason == "invalid_number"
    assert rows[ids[1]].attempts == 2  # the 503 was retried
    assert len(fake_twilio.messages) == 4


def test_an_urgent_notice_overtakes_a_running_broadcast(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    fake_twilio.latency = 0.02
    services = make_services(make_app, twilio_settings, SEND_CONCURRENCY=4, SEND_BATCH_SIZE=1000)
    queue_messages(services, 300)
    client = services_client(services)

    def reply_during_broadcast(received: ReceivedMessage) -> None:
        if len(fake_twilio.messages) == 10:
            assert post_signed(client, dossier_event()).status_code == 202

    fake_twilio.on_message = reply_during_broadcast
    run_jobs(services)

    recipients = [m.to for m in fake_twilio.messages]
    assert len(recipients) == 301
    assert len(set(recipients)) == 301
    # The notice went out while most of the broadcast was still waiting.
    assert recipients.index("+84912345678") < 100
    assert statuses_of(services) == Counter({"sent": 301})


def test_a_stopping_worker_puts_the_rest_of_its_batch_back(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings, SEND_CONCURRENCY=2, SEND_BATCH_SIZE=1000)
    queue_messages(services, 200)

    def stop_early(received: ReceivedMessage) -> None:
        if len(fake_twilio.messages) == 5:
            delivery.stop_sending(services)

    fake_twilio.on_message = stop_early
    [job] = services.queues["bulk"].jobs
    delivery.send_batch(services, job.args[0], "bulk")
    waiting = statuses_of(services)["queued"]
    assert 0 < waiting < 200
    assert waiting == sum(len(j.args[0]) for j in services.queues["bulk"].jobs) - 200
    # The sweeper sees their new job and leaves them alone.
    later = utcnow() + timedelta(hours=1)
    assert delivery.sweep(services, now=later).requeued == 0

    delivery.close_pool(services)  # a new worker process
    fake_twilio.on_message = None
    run_jobs(services)
    assert len(fake_twilio.messages) == 200
    assert len({m.to for m in fake_twilio.messages}) == 200


def delete_the_jobs(services: Services) -> None:
    """Redis lost them (restarted without persistence, say)."""
    for job in services.queues["bulk"].jobs:
        job.delete()


def take_the_job_and_die(services: Services) -> None:
    """A worker pops the job's id, then dies before starting it: the job still says "queued",
    but no queue holds it any more."""
    services.redis.lpop(services.queues["bulk"].key)


@pytest.mark.parametrize("lose_the_job", [delete_the_jobs, take_the_job_and_die])
def test_sweeper_re_enqueues_messages_whose_batch_job_was_lost(
    make_app: Any,
    twilio_settings: dict[str, Any],
    fake_twilio: FakeTwilio,
    lose_the_job: Callable[[Services], None],
) -> None:
    services = make_services(make_app, twilio_settings)
    queue_messages(services, 3)
    lose_the_job(services)
    later = utcnow() + timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS + 1)
    assert delivery.sweep(services, now=later).requeued == 3
    assert delivery.sweep(services, now=later).requeued == 0
    run_jobs(services)
    assert len(fake_twilio.messages) == 3


def test_a_retry_whose_scheduled_job_is_never_moved_is_sent_by_the_sweep(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    """No scheduler process moved the retry (none running, or Redis was away): the sweep must
    not wait for one."""
    services = make_services(make_app, twilio_settings, SEND_RETRY_BASE_SECONDS=30)
    fake_twilio.fail_next(1, status=503)
    [message_id] = queue_messages(services, 1)
    run_jobs(services)  # no scheduler runs here: the retry stays scheduled
    bulk = services.queues["bulk"]
    assert bulk.scheduled_job_registry.count == 1
    grace = timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS)

    not_due = utcnow() + timedelta(seconds=30) + grace - timedelta(seconds=5)
    assert delivery.sweep(services, now=not_due).requeued == 0
    due = utcnow() + timedelta(seconds=30) + grace + timedelta(seconds=5)
    assert delivery.sweep(services, now=due).requeued == 1
    run_jobs(services)
    assert [m.to for m in fake_twilio.messages] == ["+84912000000"]

    # The scheduler comes back and moves the old job at last: it finds nothing left to send.
    [late_id] = bulk.scheduled_job_registry.get_job_ids()
    bulk.enqueue_job(bulk.fetch_job(late_id))  # type: ignore[arg-type]
    run_jobs(services)
    assert len(fake_twilio.messages) == 1
    with services.db.session() as session:
        assert session.get_one(Message, message_id).status == "sent"


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limiter_spaces_slots_by_segments_and_shares_them(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    first = SendRateLimiter(redis, {"twilio": 10})
    second = SendRateLimiter(redis, {"twilio": 10})  # another worker, same Redis

    started = time.monotonic()
    got = first.reserve("twilio", "UBND", [1, 3, 1], horizon=10)
    assert got.delays[0] == pytest.approx(0, abs=0.005)
    assert got.delays[1] - got.delays[0] == pytest.approx(0.1, abs=0.001)
    assert got.delays[2] - got.delays[1] == pytest.approx(0.3, abs=0.001)  # 3 segments
    later = second.reserve("twilio", "UBND", [1], horizon=10)
    between = time.monotonic() - started  # the second slot is counted from a later "now"
    assert later.delays[0] + between >= got.delays[2] + 0.1 - 0.005
    # Another sender has its own limit.
    assert first.reserve("twilio", "OTHER", [1], horizon=10).delays[0] == pytest.approx(
        0, abs=0.005
    )


def test_rate_limiter_hands_out_only_what_fits_the_horizon(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    limiter = SendRateLimiter(redis, {"twilio": 10})
    got = limiter.reserve("twilio", "", [1] * 10, horizon=0.25)
    assert len(got.delays) == 3  # 0, 0.1 and 0.2 s from now
    nothing = limiter.reserve("twilio", "", [1], horizon=0.25)
    assert nothing.delays == []
    assert 0 < nothing.retry_in <= 0.06


def test_a_429_pause_holds_back_every_worker_even_without_a_configured_rate(
    redis_url: str,
) -> None:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    limiter = SendRateLimiter(redis, {})
    assert limiter.reserve("twilio", "", [1, 1, 1]).delays == [0, 0, 0]
    limiter.pause("twilio", "", 2)
    held = SendRateLimiter(redis, {}).reserve("twilio", "", [1])
    assert held.delays == []
    assert 1.5 < held.retry_in <= 1.75


def test_messages_respect_the_provider_limit_end_to_end(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    fake_twilio.rate_limit_per_second = 20
    services = make_services(
        make_app, twilio_settings, SMS_RATE_LIMITS="twilio=20", SMS_RATE_LIMIT_MARGIN=0.1
    )
    queue_messages(services, 30)
    run_jobs(services)
    assert fake_twilio.rejected_429 == 0
    assert len(fake_twilio.messages) == 30


def test_retry_after_of_a_429_delays_the_retry_and_pauses_the_limiter(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings)
    fake_twilio.fail_next(1, status=429, code=20429, message="Too Many Requests", retry_after=30)
    [message_id] = queue_messages(services, 1)
    run_jobs(services)

    with services.db.session() as session:
        message = session.get_one(Message, message_id)
    assert message.status == "queued"
    assert message.next_attempt_at is not None
    assert message.next_attempt_at - utcnow() > timedelta(seconds=25)
    assert services.queues["bulk"].scheduled_job_registry.count == 1
    limiter = delivery.send_pool(services).limiter
    assert limiter.reserve("twilio", "UBND-XA", [1]).retry_in > 25


@given(st.text(max_size=40))
def test_rate_limit_setting_is_parsed_or_refused_with_a_clear_error(raw: str) -> None:
    error = ""
    try:
        rates = parse_rates(raw)
    except ValueError as exc:
        error = str(exc)
    else:
        assert all(rate > 0 for rate in rates.values())
    assert not error or "SMS_RATE_LIMITS" in error


def test_rate_limit_setting_examples() -> None:
    assert parse_rates("twilio=50, android_gateway=0.5") == {"twilio": 50, "android_gateway": 0.5}
    assert parse_rates("") == {}
    with pytest.raises(ValueError, match="twilio=fast"):
        parse_rates("twilio=fast")


# -- failover ----------------------------------------------------------------------------------

FAILOVER = {
    "SMS_FALLBACK_PROVIDER": "console",
    "FAILOVER_MIN_REQUESTS": 3,
    "FAILOVER_ERROR_RATE": 0.5,
    "FAILOVER_COOLDOWN_SECONDS": 600.0,
    "SEND_CONCURRENCY": 1,
}


def providers_used(services: Services) -> Counter[str]:
    with services.db.session() as session:
        return Counter(p or "" for p in session.scalars(select(Message.provider)))


def test_failing_primary_sends_to_the_fallback_then_swings_back(
    make_app: Any,
    twilio_settings: dict[str, Any],
    fake_twilio: FakeTwilio,
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = make_services(make_app, twilio_settings, **FAILOVER)
    fake_twilio.fail_next(3, status=503)
    queue_messages(services, 6)
    run_jobs(services)

    assert fake_twilio.messages == []
    assert providers_used(services) == Counter({"console": 6})
    assert statuses_of(services) == Counter({"delivered": 6})
    status = failover.provider_status(services)
    assert status.active == "console"
    assert [(s.from_provider, s.to_provider, s.reason) for s in status.switches] == [
        ("twilio", "console", "failing")
    ]

    # Ten minutes on, the primary answers again: one probe, then everything goes back to it.
    with time_machine.travel(utcnow() + timedelta(minutes=11), tick=True):
        queue_messages(services, 4, text="Tin sau {i}")
        delivery.close_pool(services)  # as a worker started later would
        run_jobs(services)
    assert len(fake_twilio.messages) == 4
    status = failover.provider_status(services)
    assert status.active == "twilio"
    assert [(s.from_provider, s.to_provider, s.reason) for s in status.switches] == [
        ("console", "twilio", "recovered"),
        ("twilio", "console", "failing"),
    ]


def test_without_a_fallback_a_failing_primary_is_retried_with_backoff(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings, **{**FAILOVER, "SMS_FALLBACK_PROVIDER": ""})
    fake_twilio.fail_next(3, status=503)
    queue_messages(services, 3)
    run_jobs(services)
    assert len(fake_twilio.messages) == 3
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(ProviderSwitch)) == 0


def test_a_message_bound_to_the_primary_never_goes_to_the_fallback(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings, **FAILOVER)
    fake_twilio.fail_next(4, status=503)
    queue_messages(services, 3)
    [bound] = queue_messages(services, 1, text="Tra loi", provider="twilio")
    run_jobs(services)
    with services.db.session() as session:
        message = session.get_one(Message, bound)
    assert message.provider == "twilio"
    assert message.status == "sent"
    assert [m.body for m in fake_twilio.messages] == ["Tra loi"]


def test_failover_status_is_shown_to_api_clients(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    from notifier.api import keys

    services = make_services(make_app, twilio_settings, **FAILOVER)
    with services.db.transaction() as session:
        _, key = keys.create_api_key(session, "ops", "live")
    client = services_client(services)
    assert client.get("/api/v1/delivery/status").status_code == 401

    fake_twilio.fail_next(3, status=503)
    queue_messages(services, 3)
    run_jobs(services)
    body = client.get(
        "/api/v1/delivery/status", headers={"Authorization": f"Bearer {key}"}
    ).get_json()
    assert body["primary"] == "twilio"
    assert body["active"] == "console"
    assert body["switches"][0]["reason"] == "failing"
    assert body["queues"] == {"urgent": 0, "bulk": 0}


def test_a_late_answer_never_overwrites_what_the_sweep_settled(
    make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    services = make_services(make_app, twilio_settings)
    claimed, settled = queue_messages(services, 2)
    with services.db.transaction() as session:
        outbox.claim_batch(session, [claimed])  # `sending`; the other was put back by the sweep
    with services.db.transaction() as session:
        moved = outbox.record_sent_batch(
            session, [(claimed, "twilio", "SM1"), (settled, "twilio", "SM2")]
        )
    assert moved == {claimed}
    with services.db.session() as session:
        rows = {m.id: m for m in session.scalars(select(Message))}
        sent_events = session.scalars(
            select(MessageStatusEvent.message_id).where(MessageStatusEvent.status == "sent")
        ).all()
    assert rows[claimed].status == "sent"
    assert rows[claimed].provider_message_id == "SM1"
    assert rows[settled].status == "queued"
    assert sent_events == [claimed]


def test_ids_of_a_job_whose_worker_went_silent_are_sent_again(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    services = make_services(make_app, twilio_settings, SWEEP_GRACE_SECONDS=0)
    queue_messages(services, 3)
    [job] = services.queues["bulk"].jobs
    # A worker took the job, then was killed before claiming anything: the job stays "started".
    services.queues["bulk"].remove(job)
    job.started_at = utcnow()
    job.set_status(JobStatus.STARTED)
    job.save()

    assert delivery.sweep(services, now=utcnow() + timedelta(seconds=10)).requeued == 0
    assert delivery.sweep(services, now=utcnow() + timedelta(seconds=40)).requeued == 3
    run_jobs(services)
    assert len(fake_twilio.messages) == 3
