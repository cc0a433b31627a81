"""Opt-out and opt-in per phone number, with the history kept as the record of consent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from notifier.core.db import utcnow
from notifier.models import ConsentEvent, Contact


def _set(
    session: Session, phone: str, *, opted_out: bool, channel: str, now: datetime | None
) -> bool:
    """Record the choice and its history; True when it changed the number's state."""
    now = now or utcnow()
    contact = session.get(Contact, phone)
    if contact is None:
        contact = Contact(phone=phone, opted_out=False, channel=channel, changed_at=now)
        session.add(contact)
    changed = contact.opted_out != opted_out
    contact.opted_out = opted_out
    contact.channel = channel
    contact.changed_at = now
    session.add(
        ConsentEvent(
            phone=phone, action="opt_out" if opted_out else "opt_in", channel=channel, at=now
        )
    )
    return changed


def opt_out(session: Session, phone: str, *, channel: str, now: datetime | None = None) -> bool:
    return _set(session, phone, opted_out=True, channel=channel, now=now)


def opt_in(session: Session, phone: str, *, channel: str, now: datetime | None = None) -> bool:
    return _set(session, phone, opted_out=False, channel=channel, now=now)
