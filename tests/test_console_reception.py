"""The reception schedule from the console: create, edit, move, cancel, attendance; the simulator."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from notifier import reception
from notifier.core.runtime import Services
from notifier.models import AuditLog, Booking, InboundMessage, Message, ReceptionSession
from tests.support.console import staff_client
from tests.support.helpers import run_jobs

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CITIZENS = ("0912345678", "0987654321")


def session_form(days_ahead: int = 3, **changes: str) -> dict[str, str]:
    day = (datetime.now(TZ) + timedelta(days=days_ahead)).date()
    return {
        "date": day.isoformat(),
        "starts": "08:00",
        "ends": "11:00",
        "host": "Chủ tịch UBND xã",
        "location": "Phòng tiếp công dân",
        "capacity": "10",
        "slot_minutes": "15",
        **changes,
    }


def create(client: FlaskClient, token: str, **changes: str) -> int:
    response = client.post(
        "/reception/sessions", data={**session_form(**changes), "csrf_token": token}
    )
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def book_citizens(services: Services, session_id: int) -> list[str]:
    codes = []
    for phone in CITIZENS:
        outcome = reception.Reception(services).book(
            phone=phone, channel="sms", session_id=session_id
        )
        assert outcome.ok
        assert outcome.booking is not None
        codes.append(outcome.booking.code)
    run_jobs(services)  # the booking confirmations
    return codes


def notices(services: Services, template: str) -> list[Message]:
    with services.db.session() as session:
        return list(session.scalars(select(Message).where(Message.template == template)).all())


def audit_of(services: Services) -> list[str]:
    with services.db.session() as session:
        return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all())


def test_create_a_session(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "officer")
    session_id = create(client, token)
    with services.db.session() as session:
        row = session.get_one(ReceptionSession, session_id)
    assert row.number == 1
    assert row.starts_at.astimezone(TZ).strftime("%H:%M") == "08:00"
    assert row.capacity == 10
    assert "session_created" in audit_of(services)
    assert f'data-session-id="{session_id}"' in client.get("/reception").text


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ends": "07:00"}, "ends_at"),
        ({"days_ahead": "-2"}, "starts_at"),
        ({"capacity": "0"}, "capacity"),
        ({"capacity": "many"}, "không hợp lệ"),
        ({"date": "30/02/2026"}, "không hợp lệ"),
        ({"host": ""}, "host"),
    ],
)
def test_bad_session_forms_are_refused(
    client: FlaskClient, services: Services, changes: dict[str, Any], expected: str
) -> None:
    client, token = staff_client(services, client, "officer")
    days = int(changes.pop("days_ahead", 3))
    response = client.post(
        "/reception/sessions", data={**session_form(days, **changes), "csrf_token": token}
    )
    assert response.status_code == 400
    assert expected in response.text
    with services.db.session() as session:
        assert session.scalars(select(ReceptionSession)).all() == []


def test_cancel_notifies_every_booked_citizen(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "officer")
    session_id = create(client, token)
    book_citizens(services, session_id)
    response = client.post(
        f"/reception/sessions/{session_id}/cancel",
        data={"reason": "Lãnh đạo đi công tác", "csrf_token": token},
    )
    assert response.status_code == 302
    run_jobs(services)
    sent = notices(services, "reception_session_cancelled")
    assert sorted(m.phone for m in sent) == ["+84912345678", "+84987654321"]
    assert {m.status for m in sent} == {"delivered"}
    assert "Lanh dao di cong tac" in (sent[0].body or "")
    with services.db.session() as session:
        states = set(session.scalars(select(Booking.state)).all())
    assert states == {"cancelled"}
    assert audit_of(services)[-1] == "session_cancelled"
    page = client.get(f"/reception/sessions/{session_id}").text
    assert "Đã hủy" in page
    assert 'id="cancel-form"' not in page


def test_move_notifies_and_shifts_the_times(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "officer")
    session_id = create(client, token)
    book_citizens(services, session_id)
    form = session_form(4, starts="13:30", ends="16:30")
    response = client.post(
        f"/reception/sessions/{session_id}/move",
        data={"date": form["date"], "starts": "13:30", "ends": "16:30", "csrf_token": token},
    )
    assert response.status_code == 302
    sent = notices(services, "reception_session_moved")
    assert len(sent) == 2
    with services.db.session() as session:
        times = sorted(
            b.expected_at.astimezone(TZ).strftime("%H:%M")
            for b in session.scalars(select(Booking)).all()
        )
    assert times == ["13:30", "13:45"]
    assert audit_of(services)[-1] == "session_moved"


def test_edit_refuses_a_capacity_below_the_bookings(
    client: FlaskClient, services: Services
) -> None:
    client, token = staff_client(services, client, "officer")
    session_id = create(client, token)
    book_citizens(services, session_id)
    refused = client.post(
        f"/reception/sessions/{session_id}/edit", data={"capacity": "1", "csrf_token": token}
    )
    assert refused.status_code == 409
    assert "booked already" in refused.text
    ok = client.post(
        f"/reception/sessions/{session_id}/edit",
        data={"capacity": "12", "host": "Phó Chủ tịch UBND xã", "csrf_token": token},
    )
    assert ok.status_code == 302
    with services.db.session() as session:
        row = session.get_one(ReceptionSession, session_id)
    assert (row.capacity, row.host) == (12, "Phó Chủ tịch UBND xã")


def test_mark_attended_and_no_show(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "officer")
    session_id = create(client, token)
    first, second = book_citizens(services, session_id)
    too_early = client.post(
        f"/reception/sessions/{session_id}/bookings/{first}",
        data={"state": "attended", "csrf_token": token},
    )
    assert too_early.status_code == 409
    now = datetime.now(TZ)
    with services.db.transaction() as session:
        session.execute(
            update(ReceptionSession).values(
                starts_at=now - timedelta(minutes=30), ends_at=now + timedelta(hours=2)
            )
        )
    for code, state in ((first, "attended"), (second, "no_show")):
        response = client.post(
            f"/reception/sessions/{session_id}/bookings/{code}",
            data={"state": state, "csrf_token": token},
        )
        assert response.status_code == 302
    with services.db.session() as session:
        states = {b.code: b.state for b in session.scalars(select(Booking)).all()}
    assert states == {first: "attended", second: "no_show"}
    assert audit_of(services).count("booking_state") == 2
    assert (
        client.post(
            f"/reception/sessions/{session_id}/bookings/NOPE99",
            data={"state": "attended", "csrf_token": token},
        ).status_code
        == 404
    )


def test_viewer_sees_the_schedule_but_cannot_change_it(
    client: FlaskClient, services: Services
) -> None:
    officer, token = staff_client(services, client, "officer")
    session_id = create(officer, token)
    viewer, viewer_token = staff_client(services, officer.application.test_client(), "viewer")
    page = viewer.get(f"/reception/sessions/{session_id}").text
    assert 'id="cancel-form"' not in page
    assert "session-form" not in viewer.get("/reception").text
    for path in ("/reception/sessions", f"/reception/sessions/{session_id}/cancel"):
        response = viewer.post(
            path, data={**session_form(), "reason": "x", "csrf_token": viewer_token}
        )
        assert response.status_code == 403


def test_simulator_reply_goes_through_inbound_handling(
    client: FlaskClient, services: Services
) -> None:
    client, token = staff_client(services, client, "officer")
    create(client, token)
    response = client.post(
        "/simulator/reply", data={"phone": "0912345678", "text": "LICH", "csrf_token": token}
    )
    assert response.status_code == 302
    run_jobs(services)
    with services.db.session() as session:
        received = session.scalars(select(InboundMessage)).one()
    assert received.channel == "console"
    assert received.intent
    conversation = client.get(response.headers["Location"]).text
    assert "LICH" in conversation
    assert received.reply_text
    assert received.reply_text.split()[0] in conversation
    assert "simulator_reply" in audit_of(services)
