"""Reception sessions and bookings made directly with the models, for reminder tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.models import Booking, ReceptionSession
from notifier.reminders import planner

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def local(text: str) -> datetime:
    """An aware datetime from local (Asia/Ho_Chi_Minh) "YYYY-MM-DD HH:MM"."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def add_session(
    session: Session, starts: str, hours: float = 3, **changes: Any
) -> ReceptionSession:
    number = (session.scalar(select(func.max(ReceptionSession.number))) or 0) + 1
    starts_at = local(starts)
    values: dict[str, Any] = {
        "number": number,
        "starts_at": starts_at,
        "ends_at": starts_at + timedelta(hours=hours),
        "host": "Chủ tịch UBND xã",
        "location": "Phòng tiếp công dân, UBND xã",
        "capacity": 10,
        "slot_minutes": 15,
        **changes,
    }
    row = ReceptionSession(**values)
    session.add(row)
    session.flush()
    return row


def book(
    session: Session,
    settings: Settings,
    reception: ReceptionSession,
    phone: str = "+84912345678",
    expected: str | None = None,
    code: str | None = None,
) -> Booking:
    """Book `phone` into `reception` and schedule its reminders, as the booking flow does."""
    slot = len(reception.bookings)
    booking = Booking(
        session=reception,
        phone=phone,
        code=code or f"K7Q{reception.number}X{slot}",
        slot_index=slot,
        expected_at=local(expected) if expected else reception.starts_at,
        channel="sms",
    )
    session.add(booking)
    session.flush()
    planner.sync_booking_reminders(session, settings, booking)
    return booking
