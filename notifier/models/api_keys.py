"""API keys of the public API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from notifier.core.db import Base, utcnow


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
