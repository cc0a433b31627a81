from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from notifier.core.db import Base, utcnow


class ReceptionSession(Base):
    """A citizen-reception session (buổi tiếp công dân)."""

    __tablename__ = "reception_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The short number citizens type ("DAT 2"); unique among sessions still open.
    number: Mapped[int] = mapped_column(index=True)
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    host: Mapped[str] = mapped_column(String(200))
    location: Mapped[str] = mapped_column(String(300))
    capacity: Mapped[int]
    slot_minutes: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | cancelled
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None]
    # Bookings holding a place (booked, attended or no-show); kept by notifier.reception.
    booked_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    bookings: Mapped[list[Booking]] = relationship(
        back_populates="session", order_by="Booking.slot_index"
    )


class Booking(Base):
    """A citizen's place in a reception session."""

    __tablename__ = "bookings"
    __table_args__ = (
        # One active booking per phone per session, enforced by the database itself.
        Index(
            "uq_bookings_active_phone_session",
            "session_id",
            "phone",
            unique=True,
            sqlite_where=text("state = 'booked'"),
            postgresql_where=text("state = 'booked'"),
        ),
        # Two citizens never share an expected time: a slot is held until its booking is cancelled.
        Index(
            "uq_bookings_session_slot",
            "session_id",
            "slot_index",
            unique=True,
            sqlite_where=text("state <> 'cancelled'"),
            postgresql_where=text("state <> 'cancelled'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("reception_sessions.id", ondelete="CASCADE"), index=True
    )
    phone: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(300))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    slot_index: Mapped[int]
    expected_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(
        String(16), default="booked"
    )  # booked|cancelled|attended|no_show
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    session: Mapped[ReceptionSession] = relationship(back_populates="bookings")
