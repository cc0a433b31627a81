from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from notifier.core.db import Base, utcnow


class Contact(Base):
    """What the service knows about one phone number beyond its messages: consent to non-essential SMS."""

    __tablename__ = "contacts"

    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(default=False)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(16))
    last_help_sent_at: Mapped[datetime | None]


class ConsentEvent(Base):
    """Every opt-out and opt-in, kept as the legal record of consent."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    action: Mapped[str] = mapped_column(String(8))  # opt_out | opt_in
    channel: Mapped[str] = mapped_column(String(16))  # sms | ussd | twilio | console | api
    at: Mapped[datetime] = mapped_column(default=utcnow)
