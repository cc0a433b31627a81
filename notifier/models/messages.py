from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from notifier.core.db import Base, new_id, utcnow


class Message(Base):
    """One outbound SMS. The row is the source of truth; queue jobs only carry its id."""

    __tablename__ = "messages"
    __table_args__ = (
        # The sweeper and the deferred-message release scan by (status, next_attempt_at).
        Index("ix_messages_status_next_attempt_at", "status", "next_attempt_at"),
        UniqueConstraint("api_key_id", "reference"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    phone: Mapped[str] = mapped_column(String(64), index=True)
    template: Mapped[str | None] = mapped_column(String(64), index=True)
    language: Mapped[str] = mapped_column(String(8), default="vi")
    personalisation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Emptied by the retention purge; the metadata below stays for statistics.
    body: Mapped[str | None] = mapped_column(Text)
    encoding: Mapped[str] = mapped_column(String(8))
    segments: Mapped[int]
    characters: Mapped[int]
    status: Mapped[str] = mapped_column(String(16), index=True)
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    failure_detail: Mapped[str | None] = mapped_column(String(500))
    # urgent: dossier notices and replies; bulk: broadcasts and reminders.
    priority: Mapped[str] = mapped_column(String(8), default="urgent")
    # Essential messages (dossier results) still reach numbers that opted out of the rest.
    essential: Mapped[bool] = mapped_column(default=True)
    kind: Mapped[str] = mapped_column(String(16), default="dossier")
    # Set at creation to bind the message to one provider; else set when a provider takes it.
    provider: Mapped[str | None] = mapped_column(String(32))
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    body_purged_at: Mapped[datetime | None]

    dossier_id: Mapped[int | None] = mapped_column(
        ForeignKey("dossiers.id", ondelete="SET NULL"), index=True
    )
    dossier_event_id: Mapped[int | None] = mapped_column(
        ForeignKey("dossier_events.id", ondelete="SET NULL"), index=True
    )
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("bookings.id", ondelete="SET NULL"), index=True
    )
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), index=True
    )
    staff_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    batch_id: Mapped[str | None] = mapped_column(String(36), index=True)

    history: Mapped[list[MessageStatusEvent]] = relationship(
        back_populates="message", order_by="MessageStatusEvent.id", cascade="all, delete-orphan"
    )


class MessageStatusEvent(Base):
    """Every status a message went through, with where the change came from."""

    __tablename__ = "message_status_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(500))

    message: Mapped[Message] = relationship(back_populates="history")
