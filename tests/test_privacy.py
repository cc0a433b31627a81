"""Personal data: export everything held for one number, forget it everywhere, keep statistics."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import Session

from notifier.core.db import Base, utcnow
from notifier.core.runtime import Services
from notifier.messaging import consent
from notifier.models import (
    AuditLog,
    Booking,
    Dossier,
    InboundMessage,
    Message,
    ReceptionSession,
    Reminder,
)
from notifier.privacy import subjects
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import dossier_event, post_signed, run_jobs

CITIZEN = "+84912345678"
OTHER = "+84987654321"
# Any way the citizen's number may be written inside a stored value.
CITIZEN_DIGITS = re.compile(r"912\D?345\D?678")


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return twilio_settings


def seed_person(app: Flask, services: Services, phone_written: str, code_day: str) -> None:
    """A dossier notice sent, a reply received, an opt-out, a booking with its reminder."""
    event = dossier_event(
        event_id=f"ev-{code_day}",
        **{"citizen.phone": phone_written, "dossier.code": f"000.00.31.H26-{code_day}-0001"},
    )
    assert post_signed(app.test_client(), event).status_code == 202
    run_jobs(services)
    phone = subjects.phone_key(phone_written)
    now = utcnow()
    with services.db.transaction() as session:
        consent.opt_out(session, phone, channel="sms")
        reception = ReceptionSession(
            number=int(code_day[-2:]),
            starts_at=now + timedelta(days=2),
            ends_at=now + timedelta(days=2, hours=3),
            host="Chủ tịch UBND xã",
            location="Phòng tiếp dân",
            capacity=10,
        )
        booking = Booking(
            session=reception,
            phone=phone,
            name="Nguyễn Văn An",
            topic="tranh chấp đất đai",
            code=f"B{code_day}",
            slot_index=0,
            expected_at=now + timedelta(days=2),
            channel="sms",
        )
        session.add(booking)
        session.flush()
        session.add(
            Reminder(
                kind="booking_day_before", due_at=now + timedelta(days=1), booking_id=booking.id
            )
        )
        session.add(
            InboundMessage(
                channel="twilio",
                external_id=f"SMin-{code_day}",
                phone=phone,
                text="DAT 1 tranh chấp đất",
                reply_text="Ông/Bà đã đặt lịch",
            )
        )


def cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["notifier", *args])


def test_export_gathers_everything_held_for_the_number_in_any_written_form(
    app: Flask, services: Services
) -> None:
    seed_person(app, services, "0912 345 678", "250714")
    seed_person(app, services, "0987.654.321", "250715")

    result = cli(app, "export-phone", "+84 912-345-678")

    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["phone"] == CITIZEN
    [dossier] = document["dossiers"]
    assert dossier["phone"] == "0912 345 678"  # stored as the one-stop-shop sent it
    assert dossier["citizen_name"] == "Nguyễn Văn An"
    [message] = document["messages"]
    assert "Ho so 000.00.31.H26-250714-0001" in message["body"]
    assert [e["status"] for e in document["message_status_events"]] == ["queued", "sending", "sent"]
    assert len(document["dossier_events"]) == 1
    assert document["contacts"][0]["opted_out"] is True
    assert document["consent_events"][0]["action"] == "opt_out"
    assert document["bookings"][0]["topic"] == "tranh chấp đất đai"
    assert document["inbound_messages"][0]["text"] == "DAT 1 tranh chấp đất"
    assert len(document["reminders"]) == 1
    exported = json.dumps(document)  # nothing of the other citizen, in any form:
    assert "987654321" not in exported
    assert "987.654.321" not in exported
    assert "H26-250715" not in exported
    with services.db.session() as session:
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "privacy.export")).one()
    assert audit.target == "+84 91x xxx 678"


def all_text_values(session: Session) -> list[str]:
    values = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text)]
        for row in session.execute(select(*columns)).all():
            values.extend(str(v) for v in row if v is not None)
        json_columns = [c for c in table.columns if c.type.__class__.__name__ == "JSON"]
        for row in session.execute(select(*json_columns)).all() if json_columns else []:
            values.extend(json.dumps(v, ensure_ascii=False) for v in row if v is not None)
    return values


def test_forget_leaves_no_trace_of_the_number_but_keeps_statistics(
    app: Flask, services: Services, fake_twilio: FakeTwilio
) -> None:
    seed_person(app, services, "0912 345 678", "250714")
    seed_person(app, services, OTHER, "250715")
    # A notice not sent yet must not go out after the citizen is forgotten.
    post_signed(
        app.test_client(),
        dossier_event(
            event_id="late", occurred_at="2025-07-20T08:00:00+07:00", **{"dossier.status": "ready"}
        ),
    )
    with services.db.transaction() as session:
        pending = session.scalars(select(Message).where(Message.status == "queued")).one()
        pending_id = pending.id

    result = cli(app, "forget-phone", "0912345678", "--actor", "admin:lan")

    assert result.exit_code == 0, result.output
    assert "1 message(s) stopped" in result.output
    assert "1 reminder(s) cancelled" in result.output
    run_jobs(services)
    assert len(fake_twilio.sent_to(CITIZEN)) == 1  # only the notice sent before
    with services.db.session() as session:
        leaks = [v for v in all_text_values(session) if CITIZEN_DIGITS.search(v)]
        assert leaks == []
        # Names and topics are gone too; only the other citizen's remain.
        for column in (Dossier.citizen_name, Booking.name, Booking.topic, InboundMessage.text):
            assert session.scalar(select(func.count()).where(column.is_not(None))) == 1
        # Statistics survive: every message is still counted with its status and size.
        rows = session.execute(select(Message.status, Message.segments, Message.phone)).all()
        assert sorted(r.status for r in rows) == ["rejected", "sent", "sent"]
        tokens = {r.phone for r in rows if r.phone != OTHER}
        assert len(tokens) == 1
        assert tokens.pop().startswith("anon-")
        pending = session.get_one(Message, pending_id)
        assert pending.failure_reason == "forgotten"
        assert pending.body is None
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "privacy.forget")).one()
        assert audit.actor == "admin:lan"
        assert audit.detail is not None
        assert audit.detail["rows"]["messages"] == 2
        # The other citizen is untouched.
        assert (
            session.scalar(select(func.count()).select_from(Message).where(Message.phone == OTHER))
            == 1
        )


def test_forgetting_a_number_held_nowhere_says_so(app: Flask) -> None:
    result = cli(app, "forget-phone", "0912 345 678")
    assert result.exit_code == 0
    assert "nothing held" in result.output


@pytest.mark.parametrize("command", ["export-phone", "forget-phone"])
def test_text_without_digits_is_refused_clearly(app: Flask, command: str) -> None:
    result = cli(app, command, "không có số")
    assert result.exit_code != 0
    assert "Give a phone number" in result.output


def test_every_phone_column_of_every_model_is_covered() -> None:
    covered = {(h.model.__tablename__, h.phone) for h in subjects.HOLDINGS}
    phone_columns = {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if "phone" in column.name
    }
    assert phone_columns <= covered, "add the new phone column to privacy.subjects.HOLDINGS"
