from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from notifier.core.db import Base, utcnow


class ProviderSwitch(Base):
    """Every time sending moved to the fallback provider or back, for staff to see."""

    __tablename__ = "provider_switches"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    from_provider: Mapped[str] = mapped_column(String(32))
    to_provider: Mapped[str] = mapped_column(String(32))
    # failing (error rate over the threshold) or recovered (a probe through the primary worked)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(500))
