from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from notifier.core.db import Base, utcnow

if TYPE_CHECKING:
    from notifier.models.dossiers import Dossier
    from notifier.models.messages import Message
    from notifier.models.reception import Booking

_SCHEDULED = text("state = 'scheduled'")


class Reminder(Base):
    """A message due at a future time. Rows survive restarts; a sweep claims the due ones."""

    __tablename__ = "reminders"
    __table_args__ = (
        Index("ix_reminders_state_due_at", "state", "due_at"),
        # At most one pending reminder of each kind per booking / per dossier and sequence,
        # whatever two concurrent syncs decide.
        Index(
            "uq_reminders_scheduled_booking",
            "booking_id",
            "kind",
            unique=True,
            sqlite_where=_SCHEDULED,
            postgresql_where=_SCHEDULED,
        ),
        Index(
            "uq_reminders_scheduled_dossier",
            "dossier_id",
            "kind",
            "sequence",
            unique=True,
            sqlite_where=_SCHEDULED,
            postgresql_where=_SCHEDULED,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(
        String(16), default="scheduled"
    )  # scheduled|sent|cancelled|skipped
    sequence: Mapped[int] = mapped_column(default=1)
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    dossier_id: Mapped[int | None] = mapped_column(
        ForeignKey("dossiers.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    # Why it was skipped or cancelled (see notifier.reminders for the codes).
    skip_reason: Mapped[str | None] = mapped_column(String(64))
    # When the sweep took it (sent or skipped) or a sync cancelled it.
    handled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    booking: Mapped[Booking | None] = relationship()
    dossier: Mapped[Dossier | None] = relationship()
    message: Mapped[Message | None] = relationship()
