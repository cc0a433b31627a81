"""Bulk sends: from the API or from a staff notice to a list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from notifier.core.db import Base, new_id, utcnow


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
