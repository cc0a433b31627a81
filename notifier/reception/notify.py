"""What booked citizens are told: the template fields of a session or a booking, and the SMS
notices about their booking (confirmed on a screen, session cancelled or moved, booking
cancelled by staff)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.messaging import outbox
from notifier.models import Booking, Message, ReceptionSession
from notifier.reception.data import BookingInfo, SessionInfo

_WEEKDAYS: Final = {
    "vi": ("Thứ 2", "Thứ 3", "Thứ 4", "Thứ 5", "Thứ 6", "Thứ 7", "Chủ nhật"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def local_fields(moment: datetime, settings: Settings, language: str = "vi") -> dict[str, str]:
    """A time as SMS templates show it: date (dd/mm/yyyy), day (dd/mm), weekday, time (HH:MM)."""
    local = moment.astimezone(settings.tz)
    names = _WEEKDAYS.get(language, _WEEKDAYS["vi"])
    return {
        "date": local.strftime("%d/%m/%Y"),
        "day": local.strftime("%d/%m"),
        "weekday": names[local.weekday()],
        "time": local.strftime("%H:%M"),
    }


def notice_fields(
    settings: Settings, row: ReceptionSession | SessionInfo, language: str = "vi"
) -> dict[str, Any]:
    """Template values describing a session; `time` and `start` are its start."""
    local = local_fields(row.starts_at, settings, language)
    return {
        "number": row.number,
        "host": row.host,
        "location": row.location,
        **local,
        "start": local["time"],
    }


def booking_fields(
    settings: Settings,
    booking: BookingInfo,
    row: ReceptionSession | SessionInfo,
    language: str = "vi",
) -> dict[str, Any]:
    """Template values describing a booking: the session's, with the citizen's own time."""
    return {
        **notice_fields(settings, row, language),
        "booking_code": booking.code,
        "time": local_fields(booking.expected_at, settings, language)["time"],
    }


def compose(
    session: Session,
    settings: Settings,
    booking: Booking,
    row: ReceptionSession,
    template: str,
    extra: dict[str, Any],
    now: datetime,
    language: str = "vi",
) -> Message:
    """A notice about a booking: urgent and essential (the citizen would come for nothing)."""
    fields = booking_fields(settings, BookingInfo.from_rows(booking, row), row, language)
    return outbox.compose(
        session,
        settings,
        phone=booking.phone,
        template=template,
        personalisation={**fields, **extra},
        urgent=True,
        essential=True,
        kind="reception",
        language=language,
        now=now,
        booking_id=booking.id,
    )


def confirmation(
    session: Session,
    settings: Settings,
    booking_id: int,
    *,
    language: str = "vi",
    now: datetime | None = None,
) -> Message:
    """The SMS confirming a booking made on a screen (USSD): the text an SMS booking is answered
    with (`reply_booked`: code, day, time, place). The caller commits, then enqueues it."""
    booking = session.get_one(Booking, booking_id)
    return compose(
        session, settings, booking, booking.session, "reply_booked", {}, now or utcnow(), language
    )
