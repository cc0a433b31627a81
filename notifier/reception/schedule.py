"""The citizen-reception schedule (lịch tiếp công dân): sessions, bookings and their notices.

One domain for every channel: SMS keywords, the USSD menu, the staff console and the API book,
cancel and move through here and get plain data and outcome objects back. Two layers:

- functions taking an open `Session` (they flush, never commit), to be composed inside a larger
  transaction: an inbound SMS is stored, acted on and answered in one;
- `Reception(services)`: the same operations, each in its own transaction, with the notices to
  booked citizens enqueued after the commit.

Booking is atomic. The session row is locked first (PostgreSQL `FOR NO KEY UPDATE`; a SQLite
transaction holds the write lock from BEGIN), so places and expected times are handed out one at
a time; partial unique indexes on (session, phone) and (session, slot) back it up in the schema.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import delivery, outbox
from notifier.models import Booking, Message, ReceptionSession
from notifier.reminders import planner
from notifier.text import phones
from notifier.text.textinput import clean_input

OPEN: Final = "open"
CANCELLED: Final = "cancelled"
BOOKED: Final = "booked"
ATTENDED: Final = "attended"
NO_SHOW: Final = "no_show"
# Booking states that hold a place (and its expected time).
HOLDING: Final = (BOOKED, ATTENDED, NO_SHOW)

MAX_CAPACITY: Final = 500
MAX_LENGTH: Final = timedelta(hours=24)
MAX_AHEAD: Final = timedelta(days=366)  # a schedule is published weeks, not years, ahead
# No 0/O, 1/I/L: codes are read aloud and typed on keypads.
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH: Final = 6
# A number asked for after its session ended is answered "past" for this long, then "unknown".
RECENT: Final = timedelta(days=7)
_NUMBERS_LOCK: Final = 0x52454350  # PostgreSQL advisory lock serialising number assignment
_MAX_ID: Final = 2**31 - 1

_WEEKDAYS: Final = {
    "vi": ("Thứ 2", "Thứ 3", "Thứ 4", "Thứ 5", "Thứ 6", "Thứ 7", "Chủ nhật"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}

T = TypeVar("T")


class ReceptionError(ValueError):
    """A request the schedule refuses. `kind`: invalid (bad values), not_found or conflict."""

    def __init__(
        self,
        message: str,
        *,
        kind: Literal["invalid", "not_found", "conflict"] = "invalid",
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.field = field


# -- plain data -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionInfo:
    id: int
    number: int
    starts_at: datetime
    ends_at: datetime
    host: str
    location: str
    capacity: int
    slot_minutes: int | None
    status: str
    cancel_reason: str | None
    booked: int
    remaining: int
    created_at: datetime

    @classmethod
    def of(cls, row: ReceptionSession) -> SessionInfo:
        return cls(
            id=row.id,
            number=row.number,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            host=row.host,
            location=row.location,
            capacity=row.capacity,
            slot_minutes=row.slot_minutes,
            status=row.status,
            cancel_reason=row.cancel_reason,
            booked=row.booked_count,
            remaining=max(row.capacity - row.booked_count, 0) if row.status == OPEN else 0,
            created_at=row.created_at,
        )


@dataclass(frozen=True)
class BookingInfo:
    id: int
    code: str
    session_id: int
    session_number: int
    session_starts_at: datetime
    location: str
    phone: str  # E.164; mask it before showing it to anyone but its owner
    name: str | None
    topic: str | None
    slot_index: int
    expected_at: datetime
    state: str
    channel: str
    created_at: datetime

    @classmethod
    def of(cls, booking: Booking, row: ReceptionSession) -> BookingInfo:
        return cls(
            id=booking.id,
            code=booking.code,
            session_id=row.id,
            session_number=row.number,
            session_starts_at=row.starts_at,
            location=row.location,
            phone=booking.phone,
            name=booking.name,
            topic=booking.topic,
            slot_index=booking.slot_index,
            expected_at=booking.expected_at,
            state=booking.state,
            channel=booking.channel,
            created_at=booking.created_at,
        )


class BookStatus(StrEnum):
    BOOKED = "booked"
    ALREADY_BOOKED = "already_booked"  # the existing booking is returned
    FULL = "full"
    PAST = "past"  # the session has started or taken place
    CANCELLED = "cancelled"
    UNKNOWN = "unknown_session"


@dataclass(frozen=True)
class BookOutcome:
    status: BookStatus
    session: SessionInfo | None = None
    booking: BookingInfo | None = None

    @property
    def ok(self) -> bool:
        return self.status in (BookStatus.BOOKED, BookStatus.ALREADY_BOOKED)


class CancelStatus(StrEnum):
    CANCELLED = "cancelled"
    NOTHING = "nothing_to_cancel"
    NOT_FOUND = "not_found"  # no such code for this phone
    CHOOSE = "choose"  # several upcoming bookings: `candidates` lists them
    PAST = "past"
    ALREADY_CANCELLED = "already_cancelled"


@dataclass(frozen=True)
class CancelOutcome:
    status: CancelStatus
    booking: BookingInfo | None = None
    candidates: tuple[BookingInfo, ...] = ()
    notices: list[Message] = field(default_factory=list)


@dataclass(frozen=True)
class SessionChange:
    session: SessionInfo
    changed: bool
    notices: list[Message] = field(default_factory=list)


# -- times ------------------------------------------------------------------------------------


def expected_time(row: ReceptionSession, slot_index: int) -> datetime:
    """start + index × slot; without a slot length, the session is shared evenly (whole minutes)."""
    if row.slot_minutes:
        return row.starts_at + timedelta(minutes=row.slot_minutes * slot_index)
    minutes = (row.ends_at - row.starts_at) // timedelta(minutes=1)
    return row.starts_at + timedelta(minutes=(slot_index * minutes) // row.capacity)


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


def _text(value: str | None, name: str, max_length: int, *, required: bool = True) -> str | None:
    cleaned = clean_input(value or "", multiline=False)
    if required and not cleaned:
        raise ReceptionError(f"{name} is required", field=name)
    if len(cleaned) > max_length:
        raise ReceptionError(f"{name} is longer than {max_length} characters", field=name)
    return cleaned or None


def _phone(settings: Settings, raw: str) -> str:
    try:
        return phones.normalize(raw, allow_international=settings.ALLOW_INTERNATIONAL_SMS)
    except phones.InvalidPhoneNumber as exc:
        raise ReceptionError(str(exc), field="phone") from None


# -- sessions ---------------------------------------------------------------------------------


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
    host_text = _text(host, "host", 200)
    location_text = _text(location, "location", 300)
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
    return [SessionInfo.of(row) for row in session.scalars(query)]


def list_sessions(session: Session, *, limit: int = 50, offset: int = 0) -> list[SessionInfo]:
    """Every session, latest start first."""
    query = (
        select(ReceptionSession)
        .order_by(ReceptionSession.starts_at.desc(), ReceptionSession.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [SessionInfo.of(row) for row in session.scalars(query)]


def get_session(session: Session, session_id: int) -> SessionInfo:
    return SessionInfo.of(_session_row(session, session_id))


def session_bookings(
    session: Session, session_id: int, *, states: Sequence[str] | None = None
) -> list[BookingInfo]:
    """A session's bookings in expected-time order (all states unless `states` is given)."""
    row = _session_row(session, session_id)
    query = select(Booking).where(Booking.session_id == row.id)
    if states is not None:
        query = query.where(Booking.state.in_(states))
    bookings = session.scalars(query.order_by(Booking.expected_at, Booking.id))
    return [BookingInfo.of(booking, row) for booking in bookings]


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
    reason_text = _text(reason, "reason", 500)
    row = _locked_session(session, session_id)
    if row.status == CANCELLED:
        return SessionChange(SessionInfo.of(row), changed=False)
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
        _notice(
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
    return SessionChange(SessionInfo.of(row), changed=True, notices=notices)


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
    location_text = _text(location, "location", 300, required=False)
    row = _locked_session(session, session_id)
    _check_changeable(row, now)
    _check_schedule(starts_at, ends_at, row.capacity, row.slot_minutes, now)
    starts_at, ends_at = starts_at.astimezone(UTC), ends_at.astimezone(UTC)
    changed = (
        starts_at != row.starts_at
        or ends_at != row.ends_at
        or (location_text is not None and location_text != row.location)
    )
    if not changed:
        return SessionChange(SessionInfo.of(row), changed=False)
    row.starts_at, row.ends_at = starts_at, ends_at
    row.location = location_text or row.location
    row.updated_at = now
    holding = _bookings(session, row.id, HOLDING)
    for booking in holding:
        booking.expected_at = expected_time(row, booking.slot_index)
        booking.updated_at = now
    session.flush()
    notices = [
        _notice(session, settings, booking, row, "reception_session_moved", {}, now)
        for booking in holding
        if booking.state == BOOKED
    ]
    for booking in holding:
        planner.sync_booking_reminders(session, settings, booking)
    return SessionChange(SessionInfo.of(row), changed=True, notices=notices)


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
    row = _locked_session(session, session_id)
    _check_changeable(row, now)
    if host is not None:
        row.host = _text(host, "host", 200) or row.host
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
    return SessionChange(SessionInfo.of(row), changed=True)


# -- bookings ---------------------------------------------------------------------------------


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
    name_text = _text(name, "name", 200, required=False)
    topic_text = _text(topic, "topic", 300, required=False)
    if session_id is None:
        if number is None:
            raise ReceptionError("give a session number or id", field="number")
        found, status = resolve_number(session, number, now)
        if found is None or status is not None:
            return BookOutcome(status or BookStatus.UNKNOWN, _info(found))
        session_id = found.id
    row = _lock(session, session_id)
    if row is None:
        return BookOutcome(BookStatus.UNKNOWN)
    if row.status == CANCELLED:
        return BookOutcome(BookStatus.CANCELLED, SessionInfo.of(row))
    if row.starts_at <= now:
        return BookOutcome(BookStatus.PAST, SessionInfo.of(row))
    existing = session.scalar(
        select(Booking).where(
            Booking.session_id == row.id, Booking.phone == phone, Booking.state == BOOKED
        )
    )
    if existing is not None:
        return BookOutcome(
            BookStatus.ALREADY_BOOKED, SessionInfo.of(row), BookingInfo.of(existing, row)
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
        return BookOutcome(BookStatus.FULL, SessionInfo.of(row))
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
    return BookOutcome(BookStatus.BOOKED, SessionInfo.of(row), BookingInfo.of(booking, row))


def resolve_number(
    session: Session, number: int, now: datetime
) -> tuple[ReceptionSession | None, BookStatus | None]:
    """The session a citizen means by `number`, and why it cannot be booked (None: it can)."""
    if not 0 < number <= _MAX_ID:
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
    return [BookingInfo.of(booking, row) for booking, row in rows]


def get_booking(session: Session, code: str) -> BookingInfo:
    booking = _booking_by_code(session, code)
    if booking is None:
        raise ReceptionError(f"no booking with code {normalize_code(code)!r}", kind="not_found")
    return BookingInfo.of(booking, booking.session)


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
    notice = _notice(
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
    row = _locked_session(session, found.session_id)
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
    return BookingInfo.of(booking, row)


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
    return _notice(
        session, settings, booking, booking.session, "reply_booked", {}, now or utcnow(), language
    )


def normalize_code(code: str) -> str:
    return "".join(clean_input(code).split()).upper()[:16]


# -- the service-level entry point ------------------------------------------------------------


class Reception:
    """The schedule as channels use it: each call is one transaction; notices go out after it."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def run(self, action: Callable[[Session, Settings], T]) -> T:
        """Run `action` in a transaction, then enqueue the notices its result carries."""
        with self.services.db.transaction() as session:
            result = action(session, self.services.settings)
        notices = getattr(result, "notices", None)
        if notices:
            delivery.enqueue_committed(self.services, notices)
        return result

    def create_session(self, **fields: Any) -> SessionInfo:
        return self.run(lambda s, cfg: SessionInfo.of(create_session(s, cfg, **fields)))

    def upcoming(self, limit: int | None = None) -> list[SessionInfo]:
        return self.run(lambda s, _: upcoming_sessions(s, limit=limit))

    def sessions(self, *, limit: int = 50, offset: int = 0) -> list[SessionInfo]:
        return self.run(lambda s, _: list_sessions(s, limit=limit, offset=offset))

    def session(self, session_id: int) -> SessionInfo:
        return self.run(lambda s, _: get_session(s, session_id))

    def bookings(self, session_id: int, states: Sequence[str] | None = None) -> list[BookingInfo]:
        return self.run(lambda s, _: session_bookings(s, session_id, states=states))

    def booking(self, code: str) -> BookingInfo:
        return self.run(lambda s, _: get_booking(s, code))

    def book(self, **fields: Any) -> BookOutcome:
        return self.run(lambda s, cfg: book(s, cfg, **fields))

    def upcoming_bookings(self, phone: str) -> list[BookingInfo]:
        return self.run(lambda s, cfg: upcoming_bookings(s, cfg, phone))

    def cancel_for_phone(self, phone: str, **fields: Any) -> CancelOutcome:
        return self.run(lambda s, cfg: cancel_for_phone(s, cfg, phone, **fields))

    def cancel_by_code(self, code: str) -> CancelOutcome:
        return self.run(lambda s, cfg: cancel_by_code(s, cfg, code))

    def cancel_session(self, session_id: int, reason: str) -> SessionChange:
        return self.run(lambda s, cfg: cancel_session(s, cfg, session_id, reason=reason))

    def move_session(self, session_id: int, **fields: Any) -> SessionChange:
        return self.run(lambda s, cfg: move_session(s, cfg, session_id, **fields))

    def update_session(self, session_id: int, **fields: Any) -> SessionChange:
        return self.run(lambda s, cfg: update_session(s, cfg, session_id, **fields))

    def set_booking_state(self, code: str, state: str) -> BookingInfo:
        return self.run(lambda s, cfg: set_booking_state(s, cfg, code, state))


# -- internals --------------------------------------------------------------------------------


def _info(row: ReceptionSession | None) -> SessionInfo | None:
    return SessionInfo.of(row) if row is not None else None


def _lock(session: Session, session_id: int) -> ReceptionSession | None:
    """The session row, locked until commit and re-read (another writer may just have changed it)."""
    if not 0 < session_id <= _MAX_ID:
        return None
    return session.scalar(
        select(ReceptionSession)
        .where(ReceptionSession.id == session_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


def _locked_session(session: Session, session_id: int) -> ReceptionSession:
    row = _lock(session, session_id)
    if row is None:
        raise ReceptionError(f"no reception session {session_id}", kind="not_found")
    return row


def _session_row(session: Session, session_id: int) -> ReceptionSession:
    row = session.get(ReceptionSession, session_id) if 0 < session_id <= _MAX_ID else None
    if row is None:
        raise ReceptionError(f"no reception session {session_id}", kind="not_found")
    return row


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
    row = _locked_session(session, booking.session_id)
    booking = _fresh_booking(session, booking.id)
    if booking.state == CANCELLED:
        return CancelOutcome(CancelStatus.ALREADY_CANCELLED, BookingInfo.of(booking, row))
    if booking.state != BOOKED or row.starts_at <= now:
        return CancelOutcome(CancelStatus.PAST, BookingInfo.of(booking, row))
    booking.state = CANCELLED
    booking.updated_at = now
    row.booked_count = max(row.booked_count - 1, 0)
    row.updated_at = now
    session.flush()
    planner.sync_booking_reminders(session, settings, booking)
    return CancelOutcome(CancelStatus.CANCELLED, BookingInfo.of(booking, row))


def _new_code(session: Session) -> str:
    while True:
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if session.scalar(select(Booking.id).where(Booking.code == code)) is None:
            return code


def _local_day(moment: datetime, settings: Settings) -> date:
    return moment.astimezone(settings.tz).date()


def _notice(
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
    fields = booking_fields(settings, BookingInfo.of(booking, row), row, language)
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
