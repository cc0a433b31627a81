from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notifier.core.db import Base, utcnow


class InboundMessage(Base):
    """A text a citizen sent us, what we understood and what we answered."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(
        String(16)
    )  # twilio | android | console (notifier.inbound.CHANNELS)
    external_id: Mapped[str | None] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(64), index=True)
    # Emptied by the retention purge.
    text: Mapped[str | None] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(32))
    # What acting on the intent gave (booked, full, refused, help_suppressed…), for staff.
    outcome: Mapped[str | None] = mapped_column(String(32))
    reply_text: Mapped[str | None] = mapped_column(Text)
    reply_message_id: Mapped[str | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL")
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    text_purged_at: Mapped[datetime | None]
