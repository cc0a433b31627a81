"""Staff look dossiers up: a search by code or phone, and one dossier's timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, selectinload

from notifier.core.paging import Page, fetch_page
from notifier.models import Dossier, DossierEvent, Message
from notifier.text import phones

TIMELINE_LIMIT: Final = 500  # events, and messages, shown of one dossier


def search(session: Session, q: str, number: int, size: int) -> Page[Dossier]:
    """Dossiers whose code is or contains `q` (a prefix when shorter than 4 characters), or whose
    phone is `q`; newest first."""
    return fetch_page(session, _matching(q), number, size)


def _matching(q: str) -> Select[Dossier]:
    stmt = select(Dossier).order_by(Dossier.created_at.desc(), Dossier.id.desc())
    q = q.strip()
    if not q:
        return stmt
    try:
        phone = phones.normalize(q)
    except phones.InvalidPhoneNumber:
        phone = None
    code = q.upper()
    conditions = [Dossier.code == code, Dossier.code.like(_like_prefix(code), escape="\\")]
    if phone:
        conditions.append(Dossier.phone == phone)
    return stmt.where(or_(*conditions))


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%" if len(text) >= 4 else f"{escaped}%"


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: Literal["event", "message"]
    item: DossierEvent | Message


@dataclass(frozen=True)
class Timeline:
    dossier: Dossier
    entries: list[TimelineEntry]


def timeline(session: Session, dossier_id: int) -> Timeline | None:
    """A dossier with its events and the messages sent about it (each with its status history),
    in time order, an event before a message of the same moment. None: no such dossier."""
    found = session.get(Dossier, dossier_id)
    if found is None:
        return None
    events = session.scalars(
        select(DossierEvent).where(DossierEvent.dossier_id == dossier_id).limit(TIMELINE_LIMIT)
    ).all()
    sent = session.scalars(
        select(Message)
        .where(Message.dossier_id == dossier_id)
        .options(selectinload(Message.history))
        .limit(TIMELINE_LIMIT)
    ).all()
    entries = sorted(
        [TimelineEntry(e.occurred_at, "event", e) for e in events]
        + [TimelineEntry(m.created_at, "message", m) for m in sent],
        key=lambda entry: (entry.at, entry.kind == "message"),
    )
    return Timeline(found, entries)
