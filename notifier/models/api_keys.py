from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notifier.db import Base, new_id, utcnow


class ApiKey(Base):
    """A bearer key for the JSON API. Only a SHA-256 of the (high-entropy) key is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(8), default="live")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    callback_url: Mapped[str | None] = mapped_column(String(500))
    # Kept in clear: it is the HMAC key our callbacks are signed with, not a credential of ours.
    callback_secret: Mapped[str | None] = mapped_column(String(200))
    # None: the default from settings; 0 or less: no limit.
    rate_limit_per_minute: Mapped[int | None]
    daily_cap: Mapped[int | None]


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


class Batch(Base):
    """One bulk send: rows validated up front, messages created later in chunks by a job.

    `rows` holds the valid rows still to create (phone numbers: personal data), and is emptied
    once every message exists; `errors` keeps the per-row report.
    """

    __tablename__ = "batches"
    __table_args__ = (UniqueConstraint("api_key_id", "reference"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    api_key_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), index=True
    )
    staff_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id", ondelete="SET NULL")
    )
    reference: Mapped[str | None] = mapped_column(String(200))
    template: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="vi")
    priority: Mapped[str] = mapped_column(String(8), default="bulk")
    essential: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(String(16), default="api")
    provider: Mapped[str | None] = mapped_column(String(32))
    total_rows: Mapped[int]
    valid_rows: Mapped[int]
    rows: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_count: Mapped[int] = mapped_column(default=0)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None]
