"""Reminders: the rules, keeping them in step with bookings and dossiers, and firing them once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from notifier.core.runtime import Services
from notifier.messaging import consent
from notifier.models import Booking, Message, ReceptionSession, Reminder
from notifier.reminders import planner
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import dossier_event, post_signed, run_jobs
from tests.support.reception import add_session, book, local

PHONE = "+84912345678"


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return {**twilio_settings, "QUIET_HOURS": "21:00-07:00"}


def schedule(services: Services, starts: str, expected: str | None = None, **kw: Any) -> int:
    """A session starting at `starts` (local) with one booking; returns the booking id."""
    with services.db.transaction() as session:
        reception = add_session(session, starts)
        return book(session, services.settings, reception, expected=expected, **kw).id


def reminder_rows(services: Services) -> list[Reminder]:
    with services.db.session() as session:
        return list(session.scalars(select(Reminder).order_by(Reminder.due_at, Reminder.id)))


def scheduled_times(services: Services) -> dict[str, datetime]:
    return {r.kind: r.due_at for r in reminder_rows(services) if r.state == "scheduled"}


def fire_at(services: Services, clock: time_machine.TimeMachineFixture, when: str) -> None:
    clock.move_to(local(when), tick=False)
    planner.fire_due(services)
    run_jobs(services)


# -- booking rules -----------------------------------------------------------------------------


def test_booking_gets_a_reminder_the_evening_before_and_the_morning_of(
    services: Services, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 08:00", expected="2025-07-16 08:15")
    assert scheduled_times(services) == {
        "booking_day_before": local("2025-07-15 17:00"),
        # 07:30 is later than two hours before 08:15
        "booking_same_day": local("2025-07-16 07:30"),
    }


def test_afternoon_session_is_reminded_two_hours_before_it_starts(
    services: Services, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 14:00", expected="2025-07-16 14:30")
    assert scheduled_times(services)["booking_same_day"] == local("2025-07-16 12:00")


def test_morning_reminder_never_falls_inside_quiet_hours(
    make_app: Callable[..., Flask],
    twilio_settings: dict[str, Any],
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    services = make_app(**twilio_settings, QUIET_HOURS="21:00-08:00").extensions["notifier"]
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 08:00", expected="2025-07-16 09:00")
    assert scheduled_times(services)["booking_same_day"] == local("2025-07-16 08:00")


def test_rules_are_configurable(
    make_app: Callable[..., Flask],
    twilio_settings: dict[str, Any],
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    app = make_app(
        **twilio_settings,
        REMINDER_DAY_BEFORE_AT="off",
        REMINDER_SAME_DAY_AT="6h45",
        REMINDER_SAME_DAY_MINUTES_BEFORE=30,
    )
    services: Services = app.extensions["notifier"]
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 08:00")
    assert scheduled_times(services) == {"booking_same_day": local("2025-07-16 07:30")}


def test_nothing_is_scheduled_for_a_time_already_past(
    services: Services, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-15 18:00"), tick=False)  # after the evening reminder
    schedule(services, "2025-07-16 08:00")
    assert scheduled_times(services) == {"booking_same_day": local("2025-07-16 07:30")}

    time_machine.move_to(local("2025-07-16 07:40"), tick=False)  # after the morning one too
    schedule(services, "2025-07-16 09:00", expected="2025-07-16 09:00", code="LATE01")
    with services.db.session() as session:
        late = session.scalars(select(Booking).where(Booking.code == "LATE01")).one()
        assert session.scalar(select(func.count()).where(Reminder.booking_id == late.id)) == 0


def test_reminders_reach_the_citizen_at_their_times_with_the_right_text(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 08:00", expected="2025-07-16 08:15", code="K7Q2XA")

    fire_at(services, time_machine, "2025-07-15 16:59")
    assert fake_twilio.messages == []
    fire_at(services, time_machine, "2025-07-15 17:00")
    fire_at(services, time_machine, "2025-07-16 07:30")
    fire_at(services, time_machine, "2025-07-16 07:31")

    assert [m.body for m in fake_twilio.sent_to(PHONE)] == [
        "UBND xa Dai Thanh nhac Ong/Ba lich tiep cong dan ngay mai 16/07 luc 08:15 tai "
        "Phong tiep cong dan, UBND xa, ma K7Q2XA. Neu khong den, xin nhan HUY K7Q2XA.",
        "UBND xa Dai Thanh nhac Ong/Ba lich tiep cong dan hom nay 16/07 luc 08:15 tai "
        "Phong tiep cong dan, UBND xa, ma K7Q2XA. Neu khong den, xin nhan HUY K7Q2XA.",
    ]
    rows = reminder_rows(services)
    assert [r.state for r in rows] == ["sent", "sent"]
    with services.db.session() as session:
        sent = session.scalars(select(Message).order_by(Message.created_at)).all()
    assert [(m.kind, m.priority, m.essential, m.status) for m in sent] == [
        ("reminder", "bulk", False, "sent")
    ] * 2
    assert {m.id for m in sent} == {r.message_id for r in rows}


def test_a_cancelled_booking_is_never_reminded(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    booking_id = schedule(services, "2025-07-16 08:00")
    with services.db.transaction() as session:
        booking = session.get_one(Booking, booking_id)
        booking.state = "cancelled"
        planner.sync_booking_reminders(session, services.settings, booking)

    assert {(r.state, r.skip_reason) for r in reminder_rows(services)} == {
        ("cancelled", "booking_cancelled")
    }
    fire_at(services, time_machine, "2025-07-16 10:00")
    assert fake_twilio.messages == []


def test_a_booking_cancelled_behind_the_schedulers_back_is_skipped_when_due(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    booking_id = schedule(services, "2025-07-16 08:00")
    with services.db.transaction() as session:
        session.get_one(Booking, booking_id).state = "cancelled"  # no sync

    fire_at(services, time_machine, "2025-07-15 17:00")
    assert fake_twilio.messages == []
    assert [(r.state, r.skip_reason) for r in reminder_rows(services)] == [
        ("skipped", "booking_cancelled"),
        ("scheduled", None),
    ]
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_cancelled_session_cancels_every_reminder_of_it(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    with services.db.transaction() as session:
        reception = add_session(session, "2025-07-16 08:00")
        for n in range(3):
            book(session, services.settings, reception, phone=f"+8491234560{n}")
    with services.db.transaction() as session:
        reception = session.scalars(select(ReceptionSession)).one()
        reception.status = "cancelled"
        planner.sync_bookings(session, services.settings, reception.bookings)

    rows = reminder_rows(services)
    assert len(rows) == 6
    assert {(r.state, r.skip_reason) for r in rows} == {("cancelled", "session_cancelled")}
    fire_at(services, time_machine, "2025-07-16 10:00")
    assert fake_twilio.messages == []


def test_a_moved_session_moves_its_reminders(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    booking_id = schedule(services, "2025-07-16 08:00")
    with services.db.transaction() as session:
        booking = session.get_one(Booking, booking_id)
        booking.session.starts_at = booking.expected_at = local("2025-07-18 14:00")
        planner.sync_booking_reminders(session, services.settings, booking)

    assert scheduled_times(services) == {
        "booking_day_before": local("2025-07-17 17:00"),
        "booking_same_day": local("2025-07-18 12:00"),
    }
    assert len(reminder_rows(services)) == 2  # moved, not duplicated
    fire_at(services, time_machine, "2025-07-16 08:00")
    assert fake_twilio.messages == []
    fire_at(services, time_machine, "2025-07-17 17:00")
    assert "ngay mai 18/07 luc 14:00" in fake_twilio.messages[0].body


def test_a_session_moved_after_its_first_reminder_is_reminded_again(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    booking_id = schedule(services, "2025-07-16 08:00")
    fire_at(services, time_machine, "2025-07-15 17:00")
    with services.db.transaction() as session:
        booking = session.get_one(Booking, booking_id)
        booking.session.starts_at = booking.expected_at = local("2025-07-23 08:00")
        planner.sync_booking_reminders(session, services.settings, booking)
        planner.sync_booking_reminders(session, services.settings, booking)  # idempotent

    assert scheduled_times(services) == {
        "booking_day_before": local("2025-07-22 17:00"),
        "booking_same_day": local("2025-07-23 07:30"),
    }
    fire_at(services, time_machine, "2025-07-22 17:00")
    assert [("ngay mai 23/07" in m.body) for m in fake_twilio.messages] == [False, True]


def test_a_session_moved_without_a_sync_is_reminded_at_the_new_time(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    booking_id = schedule(services, "2025-07-16 08:00")
    with services.db.transaction() as session:
        booking = session.get_one(Booking, booking_id)
        booking.session.starts_at = booking.expected_at = local("2025-07-18 08:00")

    fire_at(services, time_machine, "2025-07-15 17:00")
    assert fake_twilio.messages == []
    fire_at(services, time_machine, "2025-07-17 17:00")
    assert "ngay mai 18/07" in fake_twilio.messages[0].body


def test_after_a_scheduler_outage_only_the_latest_reminder_goes(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 09:00")
    fire_at(services, time_machine, "2025-07-16 07:45")  # nothing ran since Monday

    assert len(fake_twilio.messages) == 1
    assert "hom nay" in fake_twilio.messages[0].body
    assert [(r.kind, r.state, r.skip_reason) for r in reminder_rows(services)] == [
        ("booking_day_before", "skipped", "superseded"),
        ("booking_same_day", "sent", None),
    ]


def test_a_reminder_due_after_the_appointment_began_is_skipped(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 08:00")
    fire_at(services, time_machine, "2025-07-16 08:05")
    assert fake_twilio.messages == []
    assert {r.skip_reason for r in reminder_rows(services)} == {"past"}


def test_opted_out_number_gets_no_reminder_and_staff_see_why(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-16 08:00")
    with services.db.transaction() as session:
        consent.opt_out(session, PHONE, channel="sms")
    fire_at(services, time_machine, "2025-07-15 17:00")

    assert fake_twilio.messages == []
    with services.db.session() as session:
        message = session.scalars(select(Message)).one()
    assert (message.status, message.failure_reason) == ("rejected", "opted_out")


# -- dossier rules -----------------------------------------------------------------------------


def post_ready(client: Any, occurred_at: str, event_id: str = "onestop-ready") -> None:
    event = dossier_event(event_id=event_id, occurred_at=occurred_at, **{"dossier.status": "ready"})
    assert post_signed(client, event).status_code in (200, 202)


def dossier_times(services: Services) -> list[datetime]:
    return [r.due_at for r in reminder_rows(services) if r.state == "scheduled"]


def test_uncollected_result_is_reminded_after_three_working_days_at_most_three_times(
    client: Any,
    services: Services,
    fake_twilio: FakeTwilio,
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)  # a Monday
    post_ready(client, "2025-07-14T10:00:00+07:00")
    run_jobs(services)
    assert dossier_times(services) == [
        local("2025-07-17 08:00"),  # Tue, Wed, Thu
        local("2025-07-22 08:00"),  # Fri, (weekend), Mon, Tue
        local("2025-07-25 08:00"),
    ]
    for when in ("2025-07-17 08:00", "2025-07-22 08:00", "2025-07-25 08:00", "2025-08-30 08:00"):
        fire_at(services, time_machine, when)
    reminder_sms = fake_twilio.messages[1:]
    assert len(reminder_sms) == 3
    assert reminder_sms[0].body == (
        "UBND xa Dai Thanh nhac: ho so 000.00.31.H26-250714-0001 da co ket qua tu 14/07/2025, "
        "moi Ong/Ba den Bo phan Mot cua UBND xa nhan. Ngung nhan tin nhac: TC"
    )


def test_public_holidays_are_not_working_days(
    make_app: Callable[..., Flask],
    twilio_settings: dict[str, Any],
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    time_machine.move_to(local("2025-08-29 10:00"), tick=False)  # Friday before National Day
    app = make_app(**twilio_settings, DOSSIER_REMINDER_REPEATS=0)
    post_ready(app.test_client(), "2025-08-29T10:00:00+07:00")
    # Vietnam's calendar: 1 and 2 September 2025 off, so Wed 3, Thu 4, Fri 5.
    assert dossier_times(app.extensions["notifier"]) == [local("2025-09-05 08:00")]

    time_machine.move_to(local("2025-08-29 10:00"), tick=False)
    app = make_app(
        **twilio_settings,
        DOSSIER_REMINDER_REPEATS=0,
        HOLIDAY_CALENDAR="",
        PUBLIC_HOLIDAYS="--09-02, 2025-09-04",
    )
    post_ready(app.test_client(), "2025-08-29T10:00:00+07:00")
    # Mon 1, (2 off), Wed 3, (4 off), Fri 5.
    assert dossier_times(app.extensions["notifier"]) == [local("2025-09-05 08:00")]


def test_collected_dossier_is_not_reminded_again(
    client: Any,
    services: Services,
    fake_twilio: FakeTwilio,
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    post_ready(client, "2025-07-14T10:00:00+07:00")
    fire_at(services, time_machine, "2025-07-17 08:00")
    returned = dossier_event(
        event_id="onestop-returned",
        occurred_at="2025-07-18T09:00:00+07:00",
        **{"dossier.status": "returned"},
    )
    assert post_signed(client, returned).status_code == 202
    fire_at(services, time_machine, "2025-08-30 08:00")

    assert len(fake_twilio.messages) == 2  # the ready notice and one reminder
    assert [(r.sequence, r.state, r.skip_reason) for r in reminder_rows(services)] == [
        (1, "sent", None),
        (2, "cancelled", "collected"),
        (3, "cancelled", "collected"),
    ]


def test_a_late_ready_event_schedules_only_what_is_still_ahead(
    client: Any, services: Services, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-21 10:00"), tick=False)
    post_ready(client, "2025-07-14T10:00:00+07:00")  # a week late
    assert dossier_times(services) == [local("2025-07-22 08:00"), local("2025-07-25 08:00")]


def test_a_repeated_ready_event_does_not_restart_the_count(
    client: Any, services: Services, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    post_ready(client, "2025-07-14T10:00:00+07:00")
    time_machine.move_to(local("2025-07-16 10:00"), tick=False)
    post_ready(client, "2025-07-16T10:00:00+07:00", event_id="onestop-ready-again")
    assert dossier_times(services) == [
        local("2025-07-17 08:00"),
        local("2025-07-22 08:00"),
        local("2025-07-25 08:00"),
    ]


# -- firing safely -----------------------------------------------------------------------------


def test_two_schedulers_racing_send_each_reminder_once(
    make_app: Callable[..., Flask],
    settings_overrides: dict[str, Any],
    fake_twilio: FakeTwilio,
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    first: Services = make_app(**settings_overrides).extensions["notifier"]
    second: Services = make_app(**settings_overrides).extensions["notifier"]
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    with first.db.transaction() as session:
        reception = add_session(session, "2025-07-16 08:00", hours=8)
        for n in range(30):
            book(session, first.settings, reception, phone=f"+849123456{n:02d}")
    time_machine.move_to(local("2025-07-15 17:00"), tick=False)

    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sweep(services: Services) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                planner.fire_due(services, batch_size=4)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    run_jobs(first)

    assert len(fake_twilio.messages) == 30
    assert len({m.to for m in fake_twilio.messages}) == 30
    with first.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 30
        states = session.execute(
            select(Reminder.kind, Reminder.state, func.count()).group_by(
                Reminder.kind, Reminder.state
            )
        ).all()
    assert sorted(states) == [
        ("booking_day_before", "sent", 30),
        ("booking_same_day", "scheduled", 30),
    ]


def test_a_restart_between_scheduling_and_sending_loses_nothing(
    make_app: Callable[..., Flask],
    settings_overrides: dict[str, Any],
    fake_twilio: FakeTwilio,
    time_machine: time_machine.TimeMachineFixture,
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    before = make_app(**settings_overrides)
    schedule(before.extensions["notifier"], "2025-07-16 08:00")
    before.extensions["notifier"].close()

    time_machine.move_to(local("2025-07-15 17:00"), tick=False)
    after: Services = make_app(**settings_overrides).extensions["notifier"]
    planner.fire_due(after)
    run_jobs(after)
    assert len(fake_twilio.sent_to(PHONE)) == 1


def test_reminders_that_cannot_reach_their_number_are_recorded_and_the_rest_go_on(
    services: Services, fake_twilio: FakeTwilio, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    with services.db.transaction() as session:
        reception = add_session(session, "2025-07-16 08:00")
        for phone in ("0241234567", "091234", "+84912345003"):  # a landline, too short, a mobile
            book(session, services.settings, reception, phone=phone)
    fire_at(services, time_machine, "2025-07-15 17:00")

    assert [m.to for m in fake_twilio.messages] == ["+84912345003"]
    with services.db.session() as session:
        outcomes = sorted(
            session.execute(select(Message.phone, Message.status, Message.failure_reason)).all()
        )
        handed_over = session.scalar(select(func.count()).where(Reminder.state == "sent"))
    assert outcomes == [
        ("+84912345003", "sent", None),
        ("0241234567", "rejected", "landline"),
        ("091234", "rejected", "too_short"),
    ]
    assert handed_over == 3  # the message says why it went no further


def test_upcoming_lists_scheduled_reminders_soonest_first(
    services: Services, time_machine: time_machine.TimeMachineFixture
) -> None:
    time_machine.move_to(local("2025-07-14 10:00"), tick=False)
    schedule(services, "2025-07-18 08:00")
    schedule(services, "2025-07-16 08:00")
    with services.db.session() as session:
        found = planner.upcoming(session, limit=3)
        assert [(r.kind, r.due_at) for r in found] == [
            ("booking_day_before", local("2025-07-15 17:00")),
            ("booking_same_day", local("2025-07-16 07:30")),
            ("booking_day_before", local("2025-07-17 17:00")),
        ]
        assert found[0].booking is not None
