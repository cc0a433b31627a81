"""Reception sessions: created, listed, cancelled, moved and edited; their rows, read and locked.

Every function takes an open `Session` and flushes, never commits. A change to a session locks
its row first (PostgreSQL `FOR NO KEY UPDATE`; a SQLite transaction holds the write lock from
BEGIN), so it is never interleaved with a booking of the same session.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.models import Booking, ReceptionSession
from notifier.reception import notify
from notifier.reception.data import (
    BOOKED,
    CANCELLED,
    HOLDING,
    MAX_AHEAD,
    MAX_CAPACITY,
    MAX_ID,
    MAX_LENGTH,
    OPEN,
    BookingInfo,
    ReceptionError,
    SessionChange,
    SessionInfo,
)
from notifier.reminders import planner
from notifier.text.textinput import clean_input

_NUMBERS_LOCK: Final = 0x52454350  # PostgreSQL advisory lock serialising number assignment


def create_session(
    session: Session,
    settings: Settings,
    *,
    starts_at: datetime,
    ends_at: datetime,
    host: str,
    location: str,
    capacity: int,
    slot_minutes: int | None = None,
    now: datetime | None = None,
) -> ReceptionSession:
    """Add an open session with the smallest public number no other open, unfinished one uses."""
    now = now or utcnow()
    host_text = text_field(host, "host", 200)
    location_text = text_field(location, "location", 300)
    _check_schedule(starts_at, ends_at, capacity, slot_minutes, now)
    if session.get_bind().dialect.name == "postgresql":
        # Two sessions created at once must not pick the same number (SQLite already serialises).
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _NUMBERS_LOCK})
    taken = set(
        session.scalars(
            select(ReceptionSession.number).where(
                ReceptionSession.status == OPEN, ReceptionSession.ends_at > now
            )
        )
    )
    row = ReceptionSession(
        number=next(n for n in itertools.count(1) if n not in taken),
        starts_at=starts_at.astimezone(UTC),
        ends_at=ends_at.astimezone(UTC),
        host=host_text,
        location=location_text,
        capacity=capacity,
        slot_minutes=slot_minutes,
        status=OPEN,
        booked_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


# -- reading ----------------------------------------------------------------------------------


def upcoming_sessions(
    session: Session, now: datetime | None = None, limit: int | None = None
) -> list[SessionInfo]:
    """Open sessions not started yet, soonest first."""
    query = (
        select(ReceptionSession)
        .where(ReceptionSession.status == OPEN, ReceptionSession.starts_at > (now or utcnow()))
        .order_by(ReceptionSession.starts_at, ReceptionSession.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [SessionInfo.from_row(row) for row in session.scalars(query)]


def unfinished_sessions(
    session: Session, now: datetime | None = None, *, open_only: bool = False, limit: int = 200
) -> list[SessionInfo]:
    """Sessions not over yet (under way or to come, cancelled ones too unless `open_only`),
    soonest first."""
    query = select(ReceptionSession).where(ReceptionSession.ends_at >= (now or utcnow()))
    if open_only:
        query = query.where(ReceptionSession.status == OPEN)
    query = query.order_by(ReceptionSession.starts_at).limit(limit)
    return [SessionInfo.from_row(row) for row in session.scalars(query)]


def finished_sessions(
    session: Session, now: datetime | None = None, *, limit: int = 200
) -> list[SessionInfo]:
    """Sessions over, latest first."""
    query = (
        select(ReceptionSession)
        .where(ReceptionSession.ends_at < (now or utcnow()))
        .order_by(ReceptionSession.starts_at.desc())
        .limit(limit)
    )
    return [SessionInfo.from_row(row) for row in session.scalars(query)]


def list_sessions(session: Session, *, limit: int = 50, offset: int = 0) -> list[SessionInfo]:
    """Every session, latest start first."""
    query = (
        select(ReceptionSession)
        .order_by(ReceptionSession.starts_at.desc(), ReceptionSession.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [SessionInfo.from_row(row) for row in session.scalars(query)]


def get_session(session: Session, session_id: int) -> SessionInfo:
    return SessionInfo.from_row(_session_row(session, session_id))


def session_bookings(
    session: Session, session_id: int, *, states: Sequence[str] | None = None
) -> list[BookingInfo]:
    """A session's bookings in expected-time order (all states unless `states` is given)."""
    return session_with_bookings(session, session_id, states=states)[1]


def session_with_bookings(
    session: Session,
    session_id: int,
    *,
    states: Sequence[str] | None = None,
    by_place: bool = False,
) -> tuple[SessionInfo, list[BookingInfo]]:
    """A session and its bookings in expected-time order, or by place number (`by_place`: a
    cancelled booking stays beside the place it held); all states unless `states` is given."""
    row = _session_row(session, session_id)
    query = select(Booking).where(Booking.session_id == row.id)
    if states is not None:
        query = query.where(Booking.state.in_(states))
    if by_place:
        query = query.order_by(Booking.slot_index, Booking.id)
    else:
        query = query.order_by(Booking.expected_at, Booking.id)
    bookings = [BookingInfo.from_rows(booking, row) for booking in session.scalars(query)]
    return SessionInfo.from_row(row), bookings


# -- changing ---------------------------------------------------------------------------------


def cancel_session(
    session: Session,
    settings: Settings,
    session_id: int,
    *,
    reason: str,
    now: datetime | None = None,
) -> SessionChange:
    """Cancel a session and its bookings; every booked citizen gets a notice with the reason."""
    now = now or utcnow()
    reason_text = text_field(reason, "reason", 500)
    row = locked_session(session, session_id)
    if row.status == CANCELLED:
        return SessionChange(SessionInfo.from_row(row), changed=False)
    if row.ends_at <= now:
        raise ReceptionError("the session has already taken place", kind="conflict")
    row.status = CANCELLED
    row.cancel_reason = reason_text
    row.cancelled_at = now
    row.updated_at = now
    affected = _bookings(session, row.id, (BOOKED,))
    for booking in affected:
        booking.state = CANCELLED
        booking.updated_at = now
    row.booked_count = _holding_count(session, row.id)
    session.flush()
    notices = [
        notify.compose(
            session,
            settings,
            booking,
            row,
            "reception_session_cancelled",
            {"reason": reason_text},
            now,
        )
        for booking in affected
    ]
    for booking in affected:
        planner.sync_booking_reminders(session, settings, booking)
    return SessionChange(SessionInfo.from_row(row), changed=True, notices=notices)


def move_session(
    session: Session,
    settings: Settings,
    session_id: int,
    *,
    starts_at: datetime,
    ends_at: datetime,
    location: str | None = None,
    now: datetime | None = None,
) -> SessionChange:
    """Move a session (and optionally its place); bookings keep their order, get new times, and
    every booked citizen is told."""
    now = now or utcnow()
    location_text = text_field(location, "location", 300, required=False)
    row = locked_session(session, session_id)
    _check_changeable(row, now)
    _check_schedule(starts_at, ends_at, row.capacity, row.slot_minutes, now)
    starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    changed = (
        starts_at != row.starts_at
        or ends_at != row.ends_at
        or (location_text is not None and location_text != row.location)
    )
    if not changed:
        return SessionChange(SessionInfo.from_row(row), changed=False)
    row.starts_at, row.ends_at = starts_at, ends_at
    row.location = location_text or row.location
    row.updated_at = now
    holding = _bookings(session, row.id, HOLDING)
    for booking in holding:
        booking.expected_at = expected_time(row, booking.slot_index)
        booking.updated_at = now
    session.flush()
    notices = [
        notify.compose(session, settings, booking, row, "reception_session_moved", {}, now)
        for booking in holding
        if booking.state == BOOKED
    ]
    for booking in holding:
        planner.sync_booking_reminders(session, settings, booking)
    return SessionChange(SessionInfo.from_row(row), changed=True, notices=notices)


def update_session(
    session: Session,
    settings: Settings,
    session_id: int,
    *,
    host: str | None = None,
    capacity: int | None = None,
    now: datetime | None = None,
) -> SessionChange:
    """Change the host or the number of places; nobody is notified (their times stay)."""
    now = now or utcnow()
    row = locked_session(session, session_id)
    _check_changeable(row, now)
    if host is not None:
        row.host = text_field(host, "host", 200) or row.host
    if capacity is not None and capacity != row.capacity:
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ReceptionError(f"capacity must be between 1 and {MAX_CAPACITY}", field="capacity")
        highest = session.scalar(
            select(func.max(Booking.slot_index)).where(
                Booking.session_id == row.id, Booking.state.in_(HOLDING)
            )
        )
        if highest is not None and capacity <= highest:
            raise ReceptionError(
                f"places up to number {highest + 1} are booked already",
                kind="conflict",
                field="capacity",
            )
        if row.slot_minutes is None and row.booked_count:
            # Evenly shared times would all move: change the times with `move_session` instead.
            raise ReceptionError(
                "this session shares its time evenly among places and has bookings: "
                "set slot_minutes or keep the capacity",
                kind="conflict",
                field="capacity",
            )
        minutes = (row.ends_at - row.starts_at) // timedelta(minutes=1)
        if capacity * (row.slot_minutes or 1) > minutes:
            raise ReceptionError(f"{capacity} places do not fit in {minutes} min", field="capacity")
        row.capacity = capacity
    row.updated_at = now
    session.flush()
    return SessionChange(SessionInfo.from_row(row), changed=True)


# -- rules shared with bookings ---------------------------------------------------------------


def expected_time(row: ReceptionSession, slot_index: int) -> datetime:
    """start + index × slot; without a slot length, the session is shared evenly (whole minutes)."""
    if row.slot_minutes:
        return row.starts_at + timedelta(minutes=row.slot_minutes * slot_index)
    minutes = (row.ends_at - row.starts_at) // timedelta(minutes=1)
    return row.starts_at + timedelta(minutes=(slot_index * minutes) // row.capacity)


def text_field(
    value: str | None, name: str, max_length: int, *, required: bool = True
) -> str | None:
    """A free-text field cleaned like every inbound text, checked for presence and length."""
    cleaned = clean_input(value or "", multiline=False)
    if required and not cleaned:
        raise ReceptionError(f"{name} is required", field=name)
    if len(cleaned) > max_length:
        raise ReceptionError(f"{name} is longer than {max_length} characters", field=name)
    return cleaned or None


def lock(session: Session, session_id: int) -> ReceptionSession | None:
    """The session row, locked until commit and re-read (another writer may just have changed it)."""
    if not 0 < session_id <= MAX_ID:
        return None
    return session.scalar(
        select(ReceptionSession)
        .where(ReceptionSession.id == session_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def locked_session(session: Session, session_id: int) -> ReceptionSession:
    """`lock`, for a session that must exist."""
    row = lock(session, session_id)
    if row is None:
        raise ReceptionError(f"no reception session {session_id}", kind="not_found")
    return row


# -- internals --------------------------------------------------------------------------------


def _session_row(session: Session, session_id: int) -> ReceptionSession:
    row = session.get(ReceptionSession, session_id) if 0 < session_id <= MAX_ID else None
    if row is None:
        raise ReceptionError(f"no reception session {session_id}", kind="not_found")
    return row


def _check_schedule(
    starts_at: datetime,
    ends_at: datetime,
    capacity: int,
    slot_minutes: int | None,
    now: datetime,
) -> None:
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ReceptionError(f"{name} must include a time zone offset", field=name)
    if starts_at <= now:
        raise ReceptionError("starts_at is in the past", field="starts_at")
    if starts_at - now > MAX_AHEAD:
        raise ReceptionError("starts_at is more than a year ahead", field="starts_at")
    if ends_at <= starts_at:
        raise ReceptionError("ends_at must be after starts_at", field="ends_at")
    if ends_at - starts_at > MAX_LENGTH:
        raise ReceptionError("a session lasts at most 24 hours", field="ends_at")
    if not 1 <= capacity <= MAX_CAPACITY:
        raise ReceptionError(f"capacity must be between 1 and {MAX_CAPACITY}", field="capacity")
    minutes = (ends_at - starts_at) // timedelta(minutes=1)
    if slot_minutes is not None:
        if slot_minutes < 1:
            raise ReceptionError("slot_minutes must be at least 1", field="slot_minutes")
        if slot_minutes * capacity > minutes:
            raise ReceptionError(
                f"{capacity} places of {slot_minutes} min do not fit in {minutes} min",
                field="capacity",
            )
    elif capacity > minutes:
        raise ReceptionError(
            f"{capacity} places do not fit in {minutes} min (one minute each at least)",
            field="capacity",
        )


def _check_changeable(row: ReceptionSession, now: datetime) -> None:
    if row.status == CANCELLED:
        raise ReceptionError("the session is cancelled", kind="conflict")
    if row.starts_at <= now:
        raise ReceptionError("the session has already started", kind="conflict")


def _bookings(session: Session, session_id: int, states: Sequence[str]) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.session_id == session_id, Booking.state.in_(states))
            .order_by(Booking.slot_index)
            .execution_options(populate_existing=True)
        )
    )


def _holding_count(session: Session, session_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Booking)
            .where(Booking.session_id == session_id, Booking.state.in_(HOLDING))
        )
        or 0
    )
