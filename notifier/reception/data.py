"""The schedule's plain data: states and limits, the error it refuses with, and what it returns.

`SessionInfo` and `BookingInfo` are what every channel gets back; their fields are the ones the
API publishes (`notifier.schemas.reception` derives its responses from them). Nothing here
touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from notifier.models import Booking, Message, ReceptionSession

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
MAX_ID: Final = 2**31 - 1


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


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class SessionInfo(_Data):
    """A reception session; times in UTC."""

    id: int
    number: int
    starts_at: datetime
    ends_at: datetime
    host: str
    location: str
    capacity: int
    slot_minutes: int | None
    status: Literal["open", "cancelled"]
    cancel_reason: str | None
    booked: int
    remaining: int
    created_at: datetime

    @classmethod
    def from_row(cls, row: ReceptionSession) -> SessionInfo:
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


class BookingInfo(_Data):
    """A citizen's place in a session; times in UTC. `phone` is E.164: mask it before showing it
    to anyone but its owner."""

    id: int
    code: str
    session_id: int
    session_number: int
    phone: str
    name: str | None
    topic: str | None
    slot_index: int
    expected_at: datetime
    state: Literal["booked", "attended", "no_show", "cancelled"]
    channel: str
    created_at: datetime

    @classmethod
    def from_rows(cls, booking: Booking, row: ReceptionSession) -> BookingInfo:
        return cls(
            id=booking.id,
            code=booking.code,
            session_id=row.id,
            session_number=row.number,
            phone=booking.phone,
            name=booking.name,
            topic=booking.topic,
            slot_index=booking.slot_index,
            expected_at=booking.expected_at,
            state=booking.state,
            channel=booking.channel,
            created_at=booking.created_at,
        )


# -- outcomes ---------------------------------------------------------------------------------


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
