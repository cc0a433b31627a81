"""Retention: old texts are emptied, the statistics stay; and the scheduler that runs it all."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.models import InboundMessage, Message, Reminder
from notifier.privacy import retention
from notifier.processes import scheduler
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import run_jobs
from tests.support.outbox import add_message
from tests.support.reception import add_session, book, local


def old_message(services: Services, days_old: float, status: str = "delivered") -> str:
    return add_message(services, urgent=True, days_old=days_old, status=status)


def add_inbound(services: Services, days_old: float) -> int:
    with services.db.transaction() as session:
        row = InboundMessage(
            channel="android",
            phone="+84912345678",
            text="DAT 2 tranh chap dat dai",
            intent="book",
            reply_text="Da dat lich, ma K7Q2XA",
            received_at=utcnow() - timedelta(days=days_old),
        )
        session.add(row)
        session.flush()
        return row.id


def test_texts_older_than_the_retention_period_are_emptied_and_the_rest_kept(
    services: Services,
) -> None:
    old = old_message(services, 91)
    old_failed = old_message(services, 200, status="failed")
    recent = old_message(services, 89)
    still_pending = old_message(services, 91, status="queued")
    old_inbound = add_inbound(services, 91)
    recent_inbound = add_inbound(services, 10)

    assert retention.purge(services) == retention.PurgeResult(messages=2, inbound=1)
    assert retention.purge(services) == retention.PurgeResult(messages=0, inbound=0)

    with services.db.session() as session:
        purged = session.get_one(Message, old)
        assert (purged.body, purged.personalisation) == (None, None)
        assert purged.body_purged_at is not None
        # What statistics need stays.
        assert (purged.status, purged.segments, purged.encoding, purged.template) == (
            "delivered",
            1,
            "GSM-7",
            "dossier_ready",
        )
        assert purged.phone == "+84912345678"
        assert session.get_one(Message, old_failed).body is None
        assert session.get_one(Message, recent).body is not None
        assert session.get_one(Message, still_pending).body is not None  # not sent yet
        inbound = session.get_one(InboundMessage, old_inbound)
        assert (inbound.text, inbound.reply_text, inbound.intent) == (None, None, "book")
        assert inbound.text_purged_at is not None
        assert session.get_one(InboundMessage, recent_inbound).text is not None


def test_purge_works_in_batches(services: Services) -> None:
    for _ in range(7):
        old_message(services, 100)
    assert retention.purge(services, batch_size=3).messages == 7
    with services.db.session() as session:
        assert session.scalar(select(func.count()).where(Message.body.is_not(None))) == 0


def test_retention_period_is_configurable_and_zero_keeps_everything(
    make_app: Callable[..., Flask],
) -> None:
    services: Services = make_app(RETENTION_DAYS=7).extensions["notifier"]
    old_message(services, 8)
    assert retention.purge(services).messages == 1

    services = make_app(RETENTION_DAYS=0).extensions["notifier"]
    old_message(services, 3650)
    assert retention.purge(services).messages == 0


# -- the scheduler -----------------------------------------------------------------------------


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return {**twilio_settings, "QUIET_HOURS": "21:00-07:00"}


def test_one_scheduler_pass_sends_due_reminders_and_purges_old_texts(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    old = old_message(services, 120)
    with services.db.transaction() as session:
        book(session, services.settings, add_session(session, "2025-07-16 08:00"))

    time_machine.move_to(local("2025-07-15 17:00"), tick=False)
    scheduler.run_once(services)
    run_jobs(services)

    assert len(fake_twilio.messages) == 1
    with services.db.session() as session:
        assert session.get_one(Message, old).body is None
        assert session.scalar(select(func.count()).where(Reminder.state == "sent")) == 1


def test_scheduler_command_runs_every_task_once(
    app: Flask,
    services: Services,
    fake_twilio: FakeTwilio,
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    with services.db.transaction() as session:
        book(session, services.settings, add_session(session, "2025-07-16 08:00"))
    time_machine.move_to(local("2025-07-16 07:30"), tick=False)

    result = app.test_cli_runner().invoke(args=["notifier", "scheduler", "--once"])
    assert result.exit_code == 0, result.output
    run_jobs(services)
    assert len(fake_twilio.messages) == 1
    assert "hom nay" in fake_twilio.messages[0].body


def test_reminders_command_lists_what_is_scheduled(
    app: Flask, services: Services, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    with services.db.transaction() as session:
        book(session, services.settings, add_session(session, "2025-07-16 08:00"))

    result = app.test_cli_runner().invoke(args=["notifier", "reminders"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split() == ["due", "(local)", "kind", "to", "for"]
    assert lines[1].split()[:3] == ["2025-07-15", "17:00", "booking_day_before"]
    assert "+84 91x xxx 678" in lines[1]
    assert "0912345678" not in result.output.replace(" ", "")
    assert len(lines) == 3


def test_scheduler_loop_fires_reminders_until_stopped(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    with services.db.transaction() as session:
        book(session, services.settings, add_session(session, "2025-07-16 08:00"))
    time_machine.move_to(local("2025-07-15 17:00"), tick=False)

    stop = threading.Event()
    loop = threading.Thread(target=scheduler.run_forever, args=(services, stop, 0.05))
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _sent_reminders(services):
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert _sent_reminders(services) == 1


def _sent_reminders(services: Services) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).where(Reminder.state == "sent")) or 0)


def test_scheduler_refuses_to_start_with_an_unknown_holiday_calendar(
    make_app: Callable[..., Flask],
) -> None:
    services: Services = make_app(HOLIDAY_CALENDAR="XX").extensions["notifier"]
    with pytest.raises(ValueError, match="HOLIDAY_CALENDAR"):
        scheduler.run_forever(services, threading.Event())
