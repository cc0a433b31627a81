"""Final statuses told to API clients: one pending callback per message, and every attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from notifier.core.db import Base, utcnow


class Callback(Base):
    """A message's final status waiting to be POSTed (or already POSTed) to its key's callback URL.

    Created in the same transaction as the final status, so no status is ever lost; a job
    delivers it after commit and the scheduler re-enqueues the ones whose job went missing.
    """

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # A message reaches one final status only, so it has at most one callback.
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), unique=True
    )
    api_key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|delivered|failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class CallbackAttempt(Base):
    """One POST of a message's final status to an API key's callback URL."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    callback_id: Mapped[int | None] = mapped_column(
        ForeignKey("callbacks.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    response_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
    # delivered | retry | failed: what the attempt meant for the callback.
    outcome: Mapped[str | None] = mapped_column(String(16))
