"""Helpers for console tests: staff users, signing in, CSRF tokens, seeding pages with data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from notifier.core.runtime import Services
from notifier.models import (
    Booking,
    Dossier,
    DossierEvent,
    Message,
    MessageStatusEvent,
    ReceptionSession,
)
from notifier.staff import accounts

PASSWORD = "correct horse battery"
_META_TOKEN = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
_FORM_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_staff(services: Services, username: str, role: str, password: str = PASSWORD) -> int:
    with services.db.transaction() as session:
        user = accounts.create_user(session, username, password, role)
        session.flush()
        return user.id


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = _META_TOKEN.search(page.text) or _FORM_TOKEN.search(page.text)
    assert match is not None, f"no CSRF token on {path}"
    return match.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> TestResponse:
    token = csrf_token(client)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def signed_in(client: FlaskClient, username: str) -> str:
    """Sign in and return the CSRF token of the new session."""
    response = login(client, username)
    assert response.status_code == 302, response.text
    return csrf_token(client, "/")


def staff_client(services: Services, client: FlaskClient, role: str) -> tuple[FlaskClient, str]:
    make_staff(services, role, role)
    return client, signed_in(client, role)


PHONES = ("+84912345678", "+84987654321", "+84335551234")


def seed_console_data(services: Services) -> dict[str, int | str]:
    """A dossier with an event and two messages (one failed), a session with two bookings."""
    now = datetime.now(UTC)
    with services.db.transaction() as session:
        dossier = Dossier(
            code="000.00.31.H26-250714-0001",
            procedure="Chứng thực bản sao từ bản chính",
            status="received",
            status_changed_at=now - timedelta(days=1),
            due_date=(now - timedelta(days=1)).date(),
            citizen_name="Nguyễn Văn An",
            phone=PHONES[0],
            received_at=now - timedelta(days=1),
            created_at=now - timedelta(days=1),
        )
        session.add(dossier)
        session.flush()
        event = DossierEvent(
            event_id="ev-1",
            payload_hash="0" * 64,
            dossier_id=dossier.id,
            status="received",
            occurred_at=now - timedelta(days=1),
            note=f"Gọi lại {PHONES[2]} nếu cần",
        )
        session.add(event)
        session.flush()
        delivered = _message(dossier.id, PHONES[0], "delivered", now, event_id=event.id)
        failed = _message(dossier.id, PHONES[1], "failed", now, reason="unreachable")
        session.add_all([delivered, failed])
        reception = ReceptionSession(
            number=1,
            starts_at=now + timedelta(days=2),
            ends_at=now + timedelta(days=2, hours=3),
            host="Chủ tịch UBND xã",
            location="Phòng tiếp công dân",
            capacity=10,
            slot_minutes=15,
            booked_count=2,
        )
        session.add(reception)
        session.flush()
        for index, phone in enumerate(PHONES[1:]):
            session.add(
                Booking(
                    session_id=reception.id,
                    phone=phone,
                    name=f"Công dân {index}",
                    topic=f"Đất đai, liên hệ {phone}",
                    code=f"BK{index:04d}",
                    slot_index=index,
                    expected_at=reception.starts_at + timedelta(minutes=15 * index),
                    channel="sms",
                )
            )
        session.flush()
        return {
            "dossier_id": dossier.id,
            "session_id": reception.id,
            "delivered_id": delivered.id,
            "failed_id": failed.id,
        }


def _message(
    dossier_id: int,
    phone: str,
    status: str,
    now: datetime,
    reason: str | None = None,
    event_id: int | None = None,
) -> Message:
    message = Message(
        phone=phone,
        template="dossier_received",
        personalisation={"code": "000.00.31.H26-250714-0001", "procedure": "Chung thuc"},
        body=f"Ho so da duoc tiep nhan. Lien he {phone}",
        encoding="GSM-7",
        segments=1,
        characters=60,
        status=status,
        failure_reason=reason,
        kind="dossier",
        created_at=now - timedelta(hours=1),
        sent_at=now - timedelta(hours=1),
        delivered_at=now if status == "delivered" else None,
        dossier_id=dossier_id,
        dossier_event_id=event_id,
    )
    message.history.append(MessageStatusEvent(status="queued", at=now, source="created"))
    message.history.append(MessageStatusEvent(status=status, at=now, source="twilio"))
    return message
