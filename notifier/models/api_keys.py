from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from notifier.db import Base, utcnow


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
    callback_secret: Mapped[str | None] = mapped_column(String(200))
    rate_limit_per_minute: Mapped[int | None]
    daily_cap: Mapped[int | None]


class CallbackAttempt(Base):
    """One POST of a message's final status to an API key's callback URL."""

    __tablename__ = "callback_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    response_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(500))
