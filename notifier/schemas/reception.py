"""The reception schedule API (`/api/v1/reception/…`): request bodies and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from notifier.reception.data import (
    MAX_CAPACITY,
    BookingInfo,
    BookOutcome,
    SessionChange,
    SessionInfo,
)
from notifier.text import phones
from notifier.text.textinput import InputLine

# Text is cleaned like every inbound text (notifier.textinput) before the length checks.
Host = Annotated[InputLine, StringConstraints(min_length=1, max_length=200)]
Location = Annotated[InputLine, StringConstraints(min_length=1, max_length=300)]
Capacity = Annotated[int, Field(ge=1, le=MAX_CAPACITY)]
SlotMinutes = Annotated[int, Field(ge=1, le=24 * 60)]


def _local_times(info: SessionInfo | BookingInfo, tz: ZoneInfo) -> dict[str, datetime]:
    """The datetimes of `info` in the office's time zone (stored in UTC)."""
    return {name: value.astimezone(tz) for name, value in info if isinstance(value, datetime)}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionCreate(_Body):
    """POST /api/v1/reception/sessions"""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    host: Host
    location: Location
    capacity: Capacity
    slot_minutes: SlotMinutes | None = None


class SessionUpdate(_Body):
    """PATCH /api/v1/reception/sessions/<id>: the host or the number of places."""

    host: Host | None = None
    capacity: Capacity | None = None


class SessionCancel(_Body):
    """POST /api/v1/reception/sessions/<id>/cancel"""

    reason: Annotated[InputLine, StringConstraints(min_length=1, max_length=500)]


class SessionMove(_Body):
    """POST /api/v1/reception/sessions/<id>/move"""

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    location: Location | None = None


class BookingCreate(_Body):
    """POST /api/v1/reception/sessions/<id>/bookings: staff book for a citizen."""

    phone: Annotated[InputLine, StringConstraints(min_length=1, max_length=64)]
    name: Annotated[InputLine, StringConstraints(max_length=200)] | None = None
    topic: Annotated[InputLine, StringConstraints(max_length=300)] | None = None


class BookingStateChange(_Body):
    """POST /api/v1/reception/bookings/<code>/state"""

    state: Literal["booked", "attended", "no_show", "cancelled"]


class SessionsQuery(BaseModel):
    """GET /api/v1/reception/sessions query string."""

    model_config = ConfigDict(extra="forbid")

    upcoming: bool = False
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class SessionOut(SessionInfo):
    # The domain's fields, times in the office's time zone.

    @classmethod
    def of(cls, info: SessionInfo, tz: ZoneInfo) -> SessionOut:
        return cls.model_validate({**dict(info), **_local_times(info, tz)})


class SessionList(BaseModel):
    sessions: list[SessionOut]


class BookingOut(BookingInfo):
    # The domain's fields, times in the office's time zone and the phone masked.

    phone: str = Field(description="masked, e.g. +84 91x xxx 678")

    @classmethod
    def of(cls, info: BookingInfo, tz: ZoneInfo) -> BookingOut:
        local = _local_times(info, tz)
        return cls.model_validate({**dict(info), **local, "phone": phones.mask(info.phone)})


class SessionBookings(BaseModel):
    session: SessionOut
    bookings: list[BookingOut]


class SessionChangeOut(BaseModel):
    session: SessionOut
    changed: bool
    notified: int = Field(description="booked citizens sent a notice")

    @classmethod
    def of(cls, change: SessionChange, tz: ZoneInfo) -> SessionChangeOut:
        return cls(
            session=SessionOut.of(change.session, tz),
            changed=change.changed,
            notified=len(change.notices),
        )


class BookResult(BaseModel):
    status: Literal["booked", "already_booked"]
    booking: BookingOut
    session: SessionOut

    @classmethod
    def of(cls, outcome: BookOutcome, tz: ZoneInfo) -> BookResult:
        assert outcome.booking is not None
        assert outcome.session is not None
        return cls.model_validate(
            {
                "status": outcome.status.value,
                "booking": BookingOut.of(outcome.booking, tz),
                "session": SessionOut.of(outcome.session, tz),
            }
        )
