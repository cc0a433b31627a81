"""Staff look through the outbox: filtered pages of messages, one message, one batch, and the
texts exchanged with one phone (the console provider's simulator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from sqlalchemy import Row, func, select
from sqlalchemy.orm import Session, selectinload

from notifier.core.config import Settings
from notifier.core.paging import Page, fetch_page
from notifier.messaging import statuses
from notifier.models import InboundMessage, Message, StaffUser
from notifier.text import phones

NO_TEMPLATE: Final = "-"  # the `template` filter of messages written by hand


@dataclass(frozen=True)
class MessageFilter:
    """What a staff member narrows the message list to; empty values do not narrow it."""

    status: str = ""
    template: str = ""  # a template's name, or NO_TEMPLATE
    kind: str = ""
    batch: str = ""
    phone: str = ""  # compared as E.164 when it is a valid number, else as typed
    start: date | None = None  # local days, both included
    end: date | None = None


def messages(
    session: Session, settings: Settings, filters: MessageFilter, number: int, size: int
) -> Page[Message]:
    """Page `number` of the messages that pass `filters`, newest first."""
    stmt = select(Message).order_by(Message.created_at.desc(), Message.id)
    if filters.status in statuses.ALL:
        stmt = stmt.where(Message.status == filters.status)
    if filters.template == NO_TEMPLATE:
        stmt = stmt.where(Message.template.is_(None))
    elif filters.template:
        stmt = stmt.where(Message.template == filters.template)
    if filters.kind:
        stmt = stmt.where(Message.kind == filters.kind)
    if filters.batch:
        stmt = stmt.where(Message.batch_id == filters.batch)
    if filters.start:
        stmt = stmt.where(Message.created_at >= _local_midnight(filters.start, settings))
    if filters.end:
        next_day = filters.end + timedelta(days=1)
        stmt = stmt.where(Message.created_at < _local_midnight(next_day, settings))
    if filters.phone:
        try:
            stmt = stmt.where(Message.phone == phones.normalize(filters.phone))
        except phones.InvalidPhoneNumber:
            stmt = stmt.where(Message.phone == filters.phone)
    return fetch_page(session, stmt, number, size)


def message(session: Session, message_id: str) -> tuple[Message, StaffUser | None] | None:
    """A message with its status history, and the staff member who sent it by hand, if one did.
    None: no such message."""
    found = session.scalars(
        select(Message).where(Message.id == message_id).options(selectinload(Message.history))
    ).one_or_none()
    if found is None:
        return None
    sender = session.get(StaffUser, found.staff_user_id) if found.staff_user_id else None
    return found, sender


def batch(session: Session, batch_id: str) -> list[Message]:
    """The messages of one batch (a notice sent to many)."""
    return list(session.scalars(select(Message).where(Message.batch_id == batch_id)).all())


# -- the texts exchanged with one phone -------------------------------------------------------


@dataclass(frozen=True)
class Exchanged:
    at: datetime
    incoming: bool  # from the citizen
    text: str
    status: str | None = None


def phones_texted(session: Session, limit: int = 100) -> list[Row[str, datetime, int]]:
    """The phones messages went to, with the time of the latest and how many; latest first."""
    latest = func.max(Message.created_at).label("latest")
    return list(
        session.execute(
            select(Message.phone, latest, func.count())
            .group_by(Message.phone)
            .order_by(latest.desc())
            .limit(limit)
        ).all()
    )


def conversation(session: Session, phone: str, limit: int = 100) -> list[Exchanged]:
    """The latest `limit` texts each way between the service and `phone` (E.164), in time order."""
    sent = session.scalars(
        select(Message)
        .where(Message.phone == phone)
        .order_by(Message.created_at.desc())
        .limit(limit)
    ).all()
    received = session.scalars(
        select(InboundMessage)
        .where(InboundMessage.phone == phone)
        .order_by(InboundMessage.received_at.desc())
        .limit(limit)
    ).all()
    return sorted(
        [Exchanged(m.created_at, False, m.body or "", m.status) for m in sent]
        + [Exchanged(i.received_at, True, i.text or "") for i in received],
        key=lambda text: text.at,
    )


def _local_midnight(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time(0), tzinfo=settings.tz)
