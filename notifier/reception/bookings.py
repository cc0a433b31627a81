"""Bookings: a citizen's place in a session, booked, found, cancelled and marked after the day.

Booking is atomic: the session row is locked first (`sessions.lock`), so places and expected
times are handed out one at a time; partial unique indexes on (session, phone) and
(session, slot) back it up in the schema. Every function takes an open `Session` and flushes,
never commits.
"""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.models import Booking, ReceptionSession
from notifier.reception import notify
from notifier.reception.data import (
    BOOKED,
    CANCELLED,
    CODE_ALPHABET,
    CODE_LENGTH,
    HOLDING,
    MAX_ID,
    OPEN,
    RECENT,
    BookingInfo,
    BookOutcome,
    BookStatus,
    CancelOutcome,
    CancelStatus,
    ReceptionError,
    SessionInfo,
)
from notifier.reception.sessions import expected_time, lock, locked_session, text_field
from notifier.reminders import planner
from notifier.text import phones
from notifier.text.textinput import clean_input


def book(
    session: Session,
    settings: Settings,
    *,
    phone: str,
    channel: str,
    number: int | None = None,
    session_id: int | None = None,
    name: str | None = None,
    topic: str | None = None,
    now: datetime | None = None,
) -> BookOutcome:
    """Book a place in the session with public `number` (citizens) or `session_id` (staff, menus).

    One active booking per phone per session: booking again returns the existing one.
    """
    now = now or utcnow()
    phone = _phone(settings, phone)
    name_text = text_field(name, "name", 200, required=False)
    topic_text = text_field(topic, "topic", 300, required=False)
    if session_id is None:
        if number is None:
            raise ReceptionError("give a session number or id", field="number")
        found, status = resolve_number(session, number, now)
        if found is None or status is not None:
            return BookOutcome(status or BookStatus.UNKNOWN, _info(found))
        session_id = found.id
    row = lock(session, session_id)
    if row is None:
        return BookOutcome(BookStatus.UNKNOWN)
    if row.status == CANCELLED:
        return BookOutcome(BookStatus.CANCELLED, SessionInfo.from_row(row))
    if row.starts_at <= now:
        return BookOutcome(BookStatus.PAST, SessionInfo.from_row(row))
    existing = session.scalar(
        select(Booking).where(
            Booking.session_id == row.id, Booking.phone == phone, Booking.state == BOOKED
        )
    )
    if existing is not None:
        return BookOutcome(
            BookStatus.ALREADY_BOOKED,
            SessionInfo.from_row(row),
            BookingInfo.from_rows(existing, row),
        )
    taken = set(
        session.scalars(
            select(Booking.slot_index).where(
                Booking.session_id == row.id, Booking.state.in_(HOLDING)
            )
        )
    )
    free = [index for index in range(row.capacity) if index not in taken]
    if not free:
        return BookOutcome(BookStatus.FULL, SessionInfo.from_row(row))
    booking = Booking(
        session_id=row.id,
        phone=phone,
        name=name_text,
        topic=topic_text,
        code=_new_code(session),
        slot_index=free[0],
        expected_at=expected_time(row, free[0]),
        state=BOOKED,
        channel=channel,
        created_at=now,
        updated_at=now,
    )
    session.add(booking)
    row.booked_count = len(taken) + 1
    row.updated_at = now
    session.flush()
    planner.sync_booking_reminders(session, settings, booking)
    return BookOutcome(
        BookStatus.BOOKED, SessionInfo.from_row(row), BookingInfo.from_rows(booking, row)
    )


def resolve_number(
    session: Session, number: int, now: datetime
) -> tuple[ReceptionSession | None, BookStatus | None]:
    """The session a citizen means by `number`, and why it cannot be booked (None: it can)."""
    if not 0 < number <= MAX_ID:
        return None, BookStatus.UNKNOWN
    rows = session.scalars(
        select(ReceptionSession)
        .where(ReceptionSession.number == number, ReceptionSession.ends_at > now - RECENT)
        .order_by(ReceptionSession.starts_at.desc())
    ).all()
    active = [row for row in rows if row.status == OPEN and row.ends_at > now]
    if active:
        row = min(active, key=lambda r: r.starts_at)
        return row, None if row.starts_at > now else BookStatus.PAST
    if rows:
        latest = rows[0]
        return latest, BookStatus.CANCELLED if latest.status == CANCELLED else BookStatus.PAST
    return None, BookStatus.UNKNOWN


# -- reading ----------------------------------------------------------------------------------


def upcoming_bookings(
    session: Session, settings: Settings, phone: str, now: datetime | None = None
) -> list[BookingInfo]:
    """A citizen's active bookings in sessions not started yet, soonest first."""
    now = now or utcnow()
    phone = _phone(settings, phone)
    rows = session.execute(
        select(Booking, ReceptionSession)
        .join(ReceptionSession, Booking.session_id == ReceptionSession.id)
        .where(
            Booking.phone == phone,
            Booking.state == BOOKED,
            ReceptionSession.status == OPEN,
            ReceptionSession.starts_at > now,
        )
        .order_by(ReceptionSession.starts_at, Booking.id)
    ).all()
    return [BookingInfo.from_rows(booking, row) for booking, row in rows]


def get_booking(session: Session, code: str) -> BookingInfo:
    booking = _booking_by_code(session, code)
    if booking is None:
        raise ReceptionError(f"no booking with code {normalize_code(code)!r}", kind="not_found")
    return BookingInfo.from_rows(booking, booking.session)


def day_bookings(
    session: Session, settings: Settings, day: date
) -> list[tuple[BookingInfo, SessionInfo]]:
    """Every booking not cancelled of the sessions starting on a local day, with its session, in
    the order citizens are received: the day's printable list."""
    start = datetime.combine(day, time(0), tzinfo=settings.tz)
    rows = session.execute(
        select(Booking, ReceptionSession)
        .join(ReceptionSession, Booking.session_id == ReceptionSession.id)
        .where(
            ReceptionSession.starts_at >= start,
            ReceptionSession.starts_at < start + timedelta(days=1),
            Booking.state != CANCELLED,
        )
        .order_by(ReceptionSession.starts_at, Booking.slot_index)
    ).all()
    return [
        (BookingInfo.from_rows(booking, row), SessionInfo.from_row(row)) for booking, row in rows
    ]


# -- cancelling and marking -------------------------------------------------------------------


def cancel_for_phone(
    session: Session,
    settings: Settings,
    phone: str,
    *,
    code: str | None = None,
    number: int | None = None,
    now: datetime | None = None,
) -> CancelOutcome:
    """A citizen cancels: the booking with `code`, the one in session `number`, or their only
    upcoming one (several: `CHOOSE`, with the candidates). A code of someone else's booking is
    answered as unknown."""
    now = now or utcnow()
    phone = _phone(settings, phone)
    if code:
        booking = _booking_by_code(session, code)
        if booking is None or booking.phone != phone:
            return CancelOutcome(CancelStatus.NOT_FOUND)
        return _cancel(session, settings, booking, now)
    if number is not None:
        row, _ = resolve_number(session, number, now)
        booking = None
        if row is not None:
            booking = session.scalar(
                select(Booking).where(
                    Booking.session_id == row.id, Booking.phone == phone, Booking.state == BOOKED
                )
            )
        if booking is None:
            return CancelOutcome(CancelStatus.NOTHING)
        return _cancel(session, settings, booking, now)
    upcoming = upcoming_bookings(session, settings, phone, now)
    if not upcoming:
        return CancelOutcome(CancelStatus.NOTHING)
    if len(upcoming) > 1:
        return CancelOutcome(CancelStatus.CHOOSE, candidates=tuple(upcoming))
    return _cancel(session, settings, session.get_one(Booking, upcoming[0].id), now)


def cancel_by_code(
    session: Session, settings: Settings, code: str, *, now: datetime | None = None
) -> CancelOutcome:
    """Staff cancel a booking; the citizen gets a notice."""
    now = now or utcnow()
    booking = _booking_by_code(session, code)
    if booking is None:
        raise ReceptionError(f"no booking with code {normalize_code(code)!r}", kind="not_found")
    outcome = _cancel(session, settings, booking, now)
    if outcome.status is not CancelStatus.CANCELLED:
        return outcome
    notice = notify.compose(
        session, settings, booking, booking.session, "reception_booking_cancelled", {}, now
    )
    return CancelOutcome(outcome.status, outcome.booking, notices=[notice])


def set_booking_state(
    session: Session,
    settings: Settings,
    code: str,
    state: str,
    *,
    now: datetime | None = None,
) -> BookingInfo:
    """Mark a booking attended or no-show (or back to booked), from the session's day on."""
    now = now or utcnow()
    if state not in HOLDING:
        raise ReceptionError(f"state must be one of {', '.join(HOLDING)}", field="state")
    found = _booking_by_code(session, code)
    if found is None:
        raise ReceptionError(f"no booking with code {normalize_code(code)!r}", kind="not_found")
    row = locked_session(session, found.session_id)
    booking = _fresh_booking(session, found.id)
    if booking.state == CANCELLED or row.status == CANCELLED:
        raise ReceptionError("the booking was cancelled", kind="conflict", field="state")
    if state != BOOKED and _local_day(row.starts_at, settings) > _local_day(now, settings):
        raise ReceptionError("the session has not taken place yet", kind="conflict", field="state")
    if booking.state != state:
        booking.state = state
        booking.updated_at = now
        session.flush()
        planner.sync_booking_reminders(session, settings, booking)
    return BookingInfo.from_rows(booking, row)


def normalize_code(code: str) -> str:
    return "".join(clean_input(code).split()).upper()[:16]


# -- internals --------------------------------------------------------------------------------


def _phone(settings: Settings, raw: str) -> str:
    try:
        return phones.normalize(raw, allow_international=settings.ALLOW_INTERNATIONAL_SMS)
    except phones.InvalidPhoneNumber as exc:
        raise ReceptionError(str(exc), field="phone") from None


def _info(row: ReceptionSession | None) -> SessionInfo | None:
    return SessionInfo.from_row(row) if row is not None else None


def _booking_by_code(session: Session, code: str) -> Booking | None:
    normalized = normalize_code(code)
    if not normalized:
        return None
    return session.scalar(select(Booking).where(Booking.code == normalized))


def _fresh_booking(session: Session, booking_id: int) -> Booking:
    return session.scalars(
        select(Booking).where(Booking.id == booking_id).execution_options(populate_existing=True)
    ).one()


def _cancel(session: Session, settings: Settings, booking: Booking, now: datetime) -> CancelOutcome:
    row = locked_session(session, booking.session_id)
    booking = _fresh_booking(session, booking.id)
    if booking.state == CANCELLED:
        return CancelOutcome(CancelStatus.ALREADY_CANCELLED, BookingInfo.from_rows(booking, row))
    if booking.state != BOOKED or row.starts_at <= now:
        return CancelOutcome(CancelStatus.PAST, BookingInfo.from_rows(booking, row))
    booking.state = CANCELLED
    booking.updated_at = now
    row.booked_count = max(row.booked_count - 1, 0)
    row.updated_at = now
    session.flush()
    planner.sync_booking_reminders(session, settings, booking)
    return CancelOutcome(CancelStatus.CANCELLED, BookingInfo.from_rows(booking, row))


def _new_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if session.scalar(select(Booking.id).where(Booking.code == code)) is None:
            return code


def _local_day(moment: datetime, settings: Settings) -> date:
    return moment.astimezone(settings.tz).date()
