"""`Reception(services)`: the schedule as channels use it, one transaction per call.

The functions of `sessions` and `bookings` take an open `Session` so that a larger transaction
can hold them (an inbound SMS is stored, acted on and answered in one). Here each operation runs
in its own transaction, and the notices to booked citizens its result carries are enqueued after
the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.runtime import Services
from notifier.messaging import delivery
from notifier.reception import bookings, sessions
from notifier.reception.data import (
    BookingInfo,
    BookOutcome,
    CancelOutcome,
    SessionChange,
    SessionInfo,
)

T = TypeVar("T")


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
        return self.run(
            lambda s, cfg: SessionInfo.from_row(sessions.create_session(s, cfg, **fields))
        )

    def upcoming(self, limit: int | None = None) -> list[SessionInfo]:
        return self.run(lambda s, _: sessions.upcoming_sessions(s, limit=limit))

    def sessions(self, *, limit: int = 50, offset: int = 0) -> list[SessionInfo]:
        return self.run(lambda s, _: sessions.list_sessions(s, limit=limit, offset=offset))

    def session(self, session_id: int) -> SessionInfo:
        return self.run(lambda s, _: sessions.get_session(s, session_id))

    def bookings(self, session_id: int, states: Sequence[str] | None = None) -> list[BookingInfo]:
        return self.run(lambda s, _: sessions.session_bookings(s, session_id, states=states))

    def booking(self, code: str) -> BookingInfo:
        return self.run(lambda s, _: bookings.get_booking(s, code))

    def book(self, **fields: Any) -> BookOutcome:
        return self.run(lambda s, cfg: bookings.book(s, cfg, **fields))

    def upcoming_bookings(self, phone: str) -> list[BookingInfo]:
        return self.run(lambda s, cfg: bookings.upcoming_bookings(s, cfg, phone))

    def cancel_for_phone(self, phone: str, **fields: Any) -> CancelOutcome:
        return self.run(lambda s, cfg: bookings.cancel_for_phone(s, cfg, phone, **fields))

    def cancel_by_code(self, code: str) -> CancelOutcome:
        return self.run(lambda s, cfg: bookings.cancel_by_code(s, cfg, code))

    def cancel_session(self, session_id: int, reason: str) -> SessionChange:
        return self.run(lambda s, cfg: sessions.cancel_session(s, cfg, session_id, reason=reason))

    def move_session(self, session_id: int, **fields: Any) -> SessionChange:
        return self.run(lambda s, cfg: sessions.move_session(s, cfg, session_id, **fields))

    def update_session(self, session_id: int, **fields: Any) -> SessionChange:
        return self.run(lambda s, cfg: sessions.update_session(s, cfg, session_id, **fields))

    def set_booking_state(self, code: str, state: str) -> BookingInfo:
        return self.run(lambda s, cfg: bookings.set_booking_state(s, cfg, code, state))
