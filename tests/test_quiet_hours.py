"""Quiet hours: the window arithmetic, and messages deferred, held and released around it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from notifier.core.config import Settings
from notifier.core.runtime import Services
from notifier.messaging import delivery
from notifier.models import Message
from notifier.text.quiet_hours import is_quiet, quiet_until
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import dossier_event, post_signed, run_jobs
from tests.support.outbox import add_message
from tests.support.reception import TZ, local

NIGHT = (time(21), time(7))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2025-07-14 20:59", None),
        ("2025-07-14 21:00", "2025-07-15 07:00"),
        ("2025-07-14 23:30", "2025-07-15 07:00"),  # before midnight: ends tomorrow
        ("2025-07-15 00:00", "2025-07-15 07:00"),
        ("2025-07-15 02:00", "2025-07-15 07:00"),  # after midnight: ends today
        ("2025-07-15 06:59", "2025-07-15 07:00"),
        ("2025-07-15 07:00", None),
        ("2025-07-15 12:00", None),
    ],
)
def test_window_across_midnight(now: str, expected: str | None) -> None:
    found = quiet_until(local(now), NIGHT, TZ)
    assert found == (local(expected) if expected else None)
    assert found is None or found.tzinfo == UTC


def test_window_within_one_day_and_switched_off() -> None:
    lunch = (time(12), time(13, 30))
    assert quiet_until(local("2025-07-14 12:10"), lunch, TZ) == local("2025-07-14 13:30")
    assert quiet_until(local("2025-07-14 13:30"), lunch, TZ) is None
    assert quiet_until(local("2025-07-14 11:59"), lunch, TZ) is None
    assert quiet_until(local("2025-07-14 23:00"), None, TZ) is None
    assert quiet_until(local("2025-07-14 23:00"), (time(7), time(7)), TZ) is None


def test_a_window_end_skipped_by_a_daylight_saving_jump_ends_at_the_jump() -> None:
    paris = ZoneInfo("Europe/Paris")  # 30 March 2025: 02:00 jumps to 03:00
    night = (time(22), time(2, 30))
    before = datetime(2025, 3, 29, 23, 0, tzinfo=paris)
    assert quiet_until(before, night, paris) == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)


ZONES = ["Asia/Ho_Chi_Minh", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]
clocks = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
instants = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(zone=st.sampled_from(ZONES), start=clocks, end=clocks, now=instants)
def test_quiet_until_is_the_end_of_the_window_now_is_in(
    zone: str, start: time, end: time, now: datetime
) -> None:
    tz = ZoneInfo(zone)
    found = quiet_until(now, (start, end), tz)
    wall = now.astimezone(tz).time()
    inside = start != end and (
        start <= wall < end if start < end else (wall >= start or wall < end)
    )
    assert (found is not None) == inside
    if found is not None:
        assert now <= found <= now + timedelta(hours=25)
        assert not is_quiet(found, (start, end), tz)  # it is over when it says so
        if found > now:
            assert is_quiet(found - timedelta(seconds=1), (start, end), tz)  # and not before


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("21:00-07:00", (time(21), time(7))),
        ("21h-7h30", (time(21), time(7, 30))),
        (" 22:00 – 06:00 ", (time(22), time(6))),
        ("off", None),
        ("", None),
    ],
)
def test_quiet_hours_setting_is_read_leniently(raw: str, expected: Any) -> None:
    assert Settings(QUIET_HOURS=raw).quiet_hours == expected


@pytest.mark.parametrize("raw", ["21:00", "21:00-25:00", "evening", "21:00-07:00-08:00"])
def test_a_bad_quiet_hours_setting_stops_the_service_with_its_name(raw: str) -> None:
    with pytest.raises(ValueError, match="QUIET_HOURS"):
        Settings(QUIET_HOURS=raw)


# -- messages around the window ----------------------------------------------------------------


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return {**twilio_settings, "QUIET_HOURS": "21:00-07:00"}


def load(services: Services, message_id: str) -> Message:
    with services.db.session() as session:
        return session.scalars(
            select(Message).where(Message.id == message_id).options(selectinload(Message.history))
        ).one()


def bulk_message(services: Services) -> str:
    """A non-urgent message, as a reminder or a broadcast makes, committed and enqueued."""
    message_id = add_message(services, urgent=False, kind="broadcast")
    with services.db.session() as session:
        delivery.enqueue_committed(services, [session.get_one(Message, message_id)])
    return message_id


def test_non_urgent_message_at_night_waits_until_morning(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 23:00"), tick=False)
    message_id = bulk_message(services)
    run_jobs(services)
    message = load(services, message_id)
    assert (message.status, message.next_attempt_at) == ("deferred", local("2025-07-15 07:00"))

    time_machine.move_to(local("2025-07-15 06:59"), tick=False)
    assert delivery.sweep(services).released == 0
    time_machine.move_to(local("2025-07-15 07:00"), tick=False)
    assert delivery.sweep(services).released == 1
    run_jobs(services)
    assert len(fake_twilio.messages) == 1
    assert [h.status for h in load(services, message_id).history] == [
        "deferred",
        "queued",
        "sending",
        "sent",
    ]


def test_dossier_notices_are_urgent_by_default(
    client: Any,
    services: Services,
    fake_twilio: FakeTwilio,
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    time_machine.move_to(local("2025-07-14 23:00"), tick=False)
    response = post_signed(client, dossier_event(occurred_at="2025-07-14T22:59:00+07:00"))
    assert response.get_json()["messages"][0]["status"] == "queued"
    run_jobs(services)
    assert len(fake_twilio.messages) == 1


def test_dossier_notices_can_respect_quiet_hours(
    make_app: Callable[..., Flask],
    settings_overrides: dict[str, Any],
    fake_twilio: FakeTwilio,
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    app = make_app(**settings_overrides, DOSSIER_NOTICES_URGENT=False)
    services: Services = app.extensions["notifier"]
    time_machine.move_to(local("2025-07-14 23:00"), tick=False)
    response = post_signed(
        app.test_client(), dossier_event(occurred_at="2025-07-14T22:59:00+07:00")
    )
    assert response.get_json()["messages"][0]["status"] == "deferred"
    run_jobs(services)
    assert fake_twilio.messages == []

    time_machine.move_to(local("2025-07-15 07:00"), tick=False)
    delivery.sweep(services)
    run_jobs(services)
    assert len(fake_twilio.messages) == 1


def test_a_sweep_that_slept_through_the_morning_does_not_release_into_the_next_night(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 23:00"), tick=False)
    message_id = bulk_message(services)

    # The scheduler was down all day and wakes up inside the following night's window.
    time_machine.move_to(local("2025-07-15 22:30"), tick=False)
    assert delivery.sweep(services).released == 0
    run_jobs(services)
    message = load(services, message_id)
    assert (message.status, message.next_attempt_at) == ("deferred", local("2025-07-16 07:00"))
    assert fake_twilio.messages == []

    time_machine.move_to(local("2025-07-16 07:00"), tick=False)
    assert delivery.sweep(services).released == 1
    run_jobs(services)
    assert len(fake_twilio.messages) == 1


def test_a_queued_bulk_message_reaching_the_worker_at_night_is_deferred(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 20:59"), tick=False)
    message_id = bulk_message(services)
    assert load(services, message_id).status == "queued"

    time_machine.move_to(local("2025-07-14 21:05"), tick=False)  # the worker was behind
    run_jobs(services)
    message = load(services, message_id)
    assert (message.status, message.next_attempt_at) == ("deferred", local("2025-07-15 07:00"))
    assert fake_twilio.messages == []

    time_machine.move_to(local("2025-07-15 07:00"), tick=False)
    delivery.sweep(services)
    run_jobs(services)
    assert len(fake_twilio.messages) == 1
