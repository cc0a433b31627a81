"""Personal data held for one phone number: export it all, or forget it everywhere.

`HOLDINGS` names every column that holds a phone number and the other personal columns of the
same rows; `tests/test_privacy.py` fails when a model gains a phone column not listed here.
Rows may hold a number in any written form (a dossier keeps the number as the one-stop-shop
system sent it), so a row belongs to a number when both normalise to the same E.164.

Forgetting keeps the statistics: each row stays, its number replaced by one anonymous token
(the same for every row of that person, so "messages per recipient" still counts right) and its
other personal fields emptied. Messages still waiting to go out are rejected first.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from notifier.core.db import Base, utcnow
from notifier.messaging import statuses
from notifier.messaging.outbox import transition
from notifier.models import (
    AuditLog,
    Booking,
    CallbackAttempt,
    ConsentEvent,
    Contact,
    Dossier,
    DossierEvent,
    InboundMessage,
    Message,
    MessageStatusEvent,
    Reminder,
)
from notifier.text import phones

log = logging.getLogger(__name__)

ANONYMOUS_PREFIX = "anon-"
FORGOTTEN = "forgotten"  # failure reason and reminder skip reason


@dataclass(frozen=True)
class Holding:
    """A table whose rows belong to the person whose number is in `phone`."""

    name: str  # the key in the export
    model: type[Base]
    phone: str
    erase: tuple[str, ...] = ()  # further personal columns, emptied on forget
    stamp: str | None = None  # a column recording when the content was purged


HOLDINGS: tuple[Holding, ...] = (
    Holding("dossiers", Dossier, "phone", erase=("citizen_name",)),
    Holding(
        "messages", Message, "phone", erase=("body", "personalisation"), stamp="body_purged_at"
    ),
    Holding(
        "inbound_messages",
        InboundMessage,
        "phone",
        erase=("text", "reply_text"),
        stamp="text_purged_at",
    ),
    Holding("bookings", Booking, "phone", erase=("name", "topic")),
    Holding("contacts", Contact, "phone"),
    Holding("consent_events", ConsentEvent, "phone"),
)


class UnknownPhone(ValueError):
    """The given text holds no digits to look a number up by."""


@lru_cache(maxsize=65536)
def phone_key(raw: str) -> str:
    """What two written forms of one number have in common: E.164 if valid, else the digits."""
    try:
        return phones.normalize(raw, allow_international=True)
    except phones.InvalidPhoneNumber:
        text = unicodedata.normalize("NFKC", raw)
        return "".join(ch for ch in text if ch.isdecimal())


def _column(holding: Holding) -> InstrumentedAttribute[Any]:
    attribute: InstrumentedAttribute[Any] = getattr(holding.model, holding.phone)
    return attribute


def stored_forms(session: Session, raw: str) -> dict[str, list[str]]:
    """For each holding, the values stored in its phone column that are this number."""
    key = phone_key(raw)
    if not key:
        raise UnknownPhone("Give a phone number, such as 0912 345 678 or +84912345678.")
    found: dict[str, list[str]] = {}
    for holding in HOLDINGS:
        column = _column(holding)
        values = session.scalars(select(column).distinct().where(column.is_not(None))).all()
        found[holding.name] = [value for value in values if _same(value, key)]
    return found


def _same(value: str, key: str) -> bool:
    return value == key or phone_key(value) == key


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def row_dict(row: Base) -> dict[str, Any]:
    """Every column of a row, JSON-ready."""
    mapper = inspect(type(row))
    return {attr.key: _jsonable(getattr(row, attr.key)) for attr in mapper.column_attrs}


def _rows(session: Session, model: type[Base], column: Any, values: Iterable[Any]) -> list[Any]:
    values = list(values)
    if not values:
        return []
    return list(session.scalars(select(model).where(column.in_(values))).all())


def export_phone(session: Session, raw: str, now: datetime | None = None) -> dict[str, Any]:
    """Everything held for the number `raw`, as one JSON-ready document."""
    forms = stored_forms(session, raw)
    document: dict[str, Any] = {
        "phone": phone_key(raw),
        "generated_at": (now or utcnow()).isoformat(),
    }
    rows: dict[str, list[Any]] = {}
    for holding in HOLDINGS:
        rows[holding.name] = _rows(session, holding.model, _column(holding), forms[holding.name])
        document[holding.name] = [row_dict(row) for row in rows[holding.name]]
    dossier_ids = [row.id for row in rows["dossiers"]]
    message_ids = [row.id for row in rows["messages"]]
    booking_ids = [row.id for row in rows["bookings"]]
    document["dossier_events"] = [
        row_dict(row) for row in _rows(session, DossierEvent, DossierEvent.dossier_id, dossier_ids)
    ]
    document["message_status_events"] = [
        row_dict(row)
        for row in _rows(session, MessageStatusEvent, MessageStatusEvent.message_id, message_ids)
    ]
    document["callback_attempts"] = [
        row_dict(row)
        for row in _rows(session, CallbackAttempt, CallbackAttempt.message_id, message_ids)
    ]
    document["reminders"] = [row_dict(row) for row in _reminders(session, dossier_ids, booking_ids)]
    every_form = sorted({form for values in forms.values() for form in values})
    document["audit_log"] = [
        row_dict(row) for row in _rows(session, AuditLog, AuditLog.target, every_form)
    ]
    return document


def _reminders(session: Session, dossier_ids: list[int], booking_ids: list[int]) -> list[Reminder]:
    if not dossier_ids and not booking_ids:
        return []
    return list(
        session.scalars(
            select(Reminder).where(
                Reminder.dossier_id.in_(dossier_ids) | Reminder.booking_id.in_(booking_ids)
            )
        ).all()
    )


@dataclass
class ForgetResult:
    token: str  # what the number was replaced with
    rows: dict[str, int] = field(default_factory=dict)  # rows anonymised, per table
    messages_stopped: int = 0  # messages that were still waiting to go out
    reminders_cancelled: int = 0

    @property
    def found(self) -> bool:
        return any(self.rows.values())


def forget_phone(
    session: Session,
    raw: str,
    *,
    actor: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> ForgetResult:
    """Anonymise every row held for the number `raw` and record it in the audit log.

    The caller commits. Anonymous statistics (statuses, segments, dates, counts) are kept.
    """
    now = now or utcnow()
    forms = stored_forms(session, raw)
    result = ForgetResult(token=ANONYMOUS_PREFIX + secrets.token_hex(5))
    messages = _rows(session, Message, Message.phone, forms["messages"])
    for message in messages:
        if message.status in {statuses.QUEUED, statuses.DEFERRED} and transition(
            session, message, statuses.REJECTED, source="privacy", reason=FORGOTTEN, now=now
        ):
            result.messages_stopped += 1
    dossier_ids = [d.id for d in _rows(session, Dossier, Dossier.phone, forms["dossiers"])]
    booking_ids = [b.id for b in _rows(session, Booking, Booking.phone, forms["bookings"])]
    for reminder in _reminders(session, dossier_ids, booking_ids):
        if reminder.state == "scheduled":
            reminder.state = "cancelled"
            reminder.skip_reason = FORGOTTEN
            result.reminders_cancelled += 1
    if dossier_ids:
        session.execute(
            update(DossierEvent).where(DossierEvent.dossier_id.in_(dossier_ids)).values(note=None)
        )
    session.flush()
    for holding in HOLDINGS:
        values = forms[holding.name]
        if not values:
            result.rows[holding.name] = 0
            continue
        changes: dict[str, Any] = {holding.phone: result.token}
        changes.update(dict.fromkeys(holding.erase))
        if holding.stamp:
            changes[holding.stamp] = now
        outcome = session.execute(
            update(holding.model)
            .where(_column(holding).in_(values))
            .values(**changes)
            .execution_options(synchronize_session=False)
        )
        result.rows[holding.name] = int(outcome.rowcount)  # type: ignore[attr-defined]
    every_form = sorted({form for values in forms.values() for form in values})
    if every_form:
        session.execute(
            update(AuditLog).where(AuditLog.target.in_(every_form)).values(target=result.token)
        )
    session.add(
        AuditLog(
            at=now,
            actor=actor,
            action="privacy.forget",
            target=result.token,
            detail={
                "rows": result.rows,
                "messages_stopped": result.messages_stopped,
                "reminders_cancelled": result.reminders_cancelled,
            },
            ip=ip,
        )
    )
    log.info("forgot %s: %s", phones.mask(phone_key(raw)), result.rows)
    return result


def record_export(
    session: Session, raw: str, *, actor: str, ip: str | None = None, now: datetime | None = None
) -> None:
    """Audit that someone took a copy of a person's data (the number itself stays masked)."""
    session.add(
        AuditLog(
            at=now or utcnow(),
            actor=actor,
            action="privacy.export",
            target=phones.mask(phone_key(raw)),
            ip=ip,
        )
    )
