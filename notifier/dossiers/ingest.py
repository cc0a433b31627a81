"""Dossier status events from the one-stop-shop system: idempotent ingest, notices.

The event's contract (`DossierEventIn`) is `schemas.dossiers`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import matches_any, utcnow
from notifier.core.runtime import Services
from notifier.messaging import delivery, outbox
from notifier.models import Dossier, DossierEvent, Message
from notifier.reminders import planner
from notifier.schemas.dossiers import RESCHEDULED, DossierEventIn

# The statuses the citizen hears about by default (DOMAIN.md status table).
NOTIFYING = frozenset(
    {
        "received",
        "not_accepted",
        "supplement_requested",
        "fee_required",
        "withdrawn",
        "stopped",
        "ready",
        RESCHEDULED,
    }
)
RESOLVED = frozenset({"ready", "returned"})


def payload_hash(payload: Any) -> str:
    """Hash of the parsed JSON, so a re-serialised but identical body counts as the same."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class IngestResult:
    event_id: str
    duplicate: bool
    conflict: bool = False
    messages: list[Message] = field(default_factory=list)


def find_existing(session: Session, event_id: str, digest: str) -> IngestResult | None:
    """The outcome for an event id seen before: a duplicate (same body) or a conflict."""
    event = session.scalar(select(DossierEvent).where(DossierEvent.event_id == event_id))
    if event is None:
        return None
    if event.payload_hash != digest:
        return IngestResult(event_id, duplicate=True, conflict=True)
    found = session.scalars(
        select(Message).where(Message.dossier_event_id == event.id).order_by(Message.created_at)
    ).all()
    return IngestResult(event_id, duplicate=True, messages=list(found))


Received = tuple[DossierEventIn, str]  # an event and the hash of its body


def record(services: Services, batch: Sequence[Received]) -> list[IngestResult]:
    """Write events received together (one transaction), then queue their new messages.

    The webhook's requests pass through a `combining.Combiner`, so the events of concurrent
    requests share a transaction and a job: under load that costs much less than one of each
    per event.
    """
    try:
        results = _write(services, batch)
    except IntegrityError:
        # A replay, or a race on a new dossier: each event goes on its own, so that one of
        # them does not fail the others.
        results = [_record_one(services, received) for received in batch]
    fresh = [m for result in results if not result.duplicate for m in result.messages]
    delivery.enqueue_committed(services, fresh)
    return results


def _record_one(services: Services, received: Received) -> IngestResult:
    event, digest = received
    for attempt in (1, 2):
        try:
            return _write(services, [received])[0]
        except IntegrityError:
            # Another request won a race on a unique index. The same event delivered twice at
            # once: answer as a replay. Another event of the same new dossier created it
            # meanwhile: a second try finds and updates it.
            with services.db.session() as session:
                found = find_existing(session, event.event_id, digest)
            if found is not None:
                return found
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _write(services: Services, batch: Sequence[Received]) -> list[IngestResult]:
    with services.db.transaction() as session:
        return ingest_many(session, services.settings, batch)


def ingest_many(
    session: Session,
    settings: Settings,
    received: Sequence[Received],
    now: datetime | None = None,
) -> list[IngestResult]:
    """Record events, update their dossiers and add the citizens' notices. The caller commits.

    Events are taken in order, so a later event of the same dossier sees what an earlier one
    changed. This is the webhook's hot path: a few statements for the whole list, built once
    (the ORM's unit of work cost several times the statements themselves). An event id seen
    before is refused by the unique index (IntegrityError: the caller then answers each event
    on its own, and `find_existing` finds the replay); looking ids up first would cost every
    new event a round trip for the rare replay.
    """
    now = now or utcnow()
    # Straight on the connection: Session.execute adds ORM work these statements do not need.
    connection = session.connection()
    codes = list({event.dossier.code for event, _ in received})
    known = {
        row.code: dict(row._mapping)
        for row in connection.execute(_FIND_DOSSIERS.on(connection), {"codes": codes})
    }
    stored = set(known)
    changed: set[str] = set()
    reminders_to_sync: set[str] = set()
    plans: list[_Plan] = []
    for event, digest in received:
        code = event.dossier.code
        found = known.get(code)
        # An event older than what we already know is kept but not announced: a late
        # "received" after "ready" would only confuse the citizen.
        is_latest = found is None or found["status_changed_at"] <= event.occurred_at
        if is_latest:
            changes = _dossier_changes(event, found, now)
            if planner.dossier_change_matters(
                found["status"] if found else None, changes.get("status")
            ):
                reminders_to_sync.add(code)
            known[code] = {**(found or {}), **changes}
            changed.add(code)
        plans.append(_Plan(event, digest, is_latest, known[code]["due_date"]))

    created = [known[code] for code in changed - stored]
    if created:
        ids: dict[str, int] = dict(connection.execute(_INSERT_DOSSIER, created).all())
        for row in created:
            row["id"] = ids[row["code"]]
    updated = [
        {"dossier_pk": known[code]["id"], **{key: known[code][key] for key in _UPDATABLE}}
        for code in changed & stored
    ]
    if updated:
        connection.execute(_UPDATE_DOSSIER, updated)

    event_rows = connection.execute(
        _INSERT_EVENT,
        [
            {
                "event_id": plan.event.event_id,
                "payload_hash": plan.digest,
                "dossier_id": known[plan.event.dossier.code]["id"],
                "status": plan.event.dossier.status_key,
                "occurred_at": plan.event.occurred_at,
                "received_at": now,
                "new_due_date": plan.event.dossier.new_due_date,
                "note": plan.event.dossier.note,
            }
            for plan in plans
        ],
    )
    event_pks: dict[str, int] = dict(event_rows.all())
    results = []
    notices = []
    for plan in plans:
        event_pk = event_pks[plan.event.event_id]
        result = IngestResult(plan.event.event_id, duplicate=False)
        if plan.is_latest and should_notify(settings, plan.event.dossier.status_key):
            dossier_id = known[plan.event.dossier.code]["id"]
            notice = _notice(
                session, settings, plan.event, plan.due_date, dossier_id, event_pk, now
            )
            notices.append(notice)
            result.messages.append(notice)
        results.append(result)
    outbox.insert_new(session, notices)
    for code in reminders_to_sync:
        dossier = session.get_one(Dossier, known[code]["id"])
        planner.sync_dossier_reminders(session, settings, dossier)
    return results


@dataclass
class _Plan:
    """What `ingest_many` decided for one event before writing it."""

    event: DossierEventIn
    digest: str
    is_latest: bool
    due_date: date | None


def should_notify(settings: Settings, status: str) -> bool:
    return status in NOTIFYING or (status == "returned" and settings.NOTIFY_RETURNED)


_dossiers = cast(Table, Dossier.__table__)
_events = cast(Table, DossierEvent.__table__)
# Built once: SQLAlchemy caches a statement's compiled form, but building the statement per call
# would cost about as much as running it.
_FIND_DOSSIERS = matches_any(_dossiers.c.code, "codes").map(select(_dossiers).where)
# Several rows in one statement; each id comes back with its unique key rather than in order
# (asking for the order costs the database a sort of the rows).
_INSERT_DOSSIER = _dossiers.insert().returning(_dossiers.c.code, _dossiers.c.id)
_UPDATABLE = [c.key for c in _dossiers.columns if c.key not in {"id", "code", "created_at"}]
_UPDATE_DOSSIER = _dossiers.update().where(_dossiers.c.id == bindparam("dossier_pk"))
_INSERT_EVENT = _events.insert().returning(_events.c.event_id, _events.c.id)


def _dossier_changes(
    event: DossierEventIn, found: Mapping[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """The dossier columns the (latest) event sets: all of them for a new dossier."""
    data = event.dossier
    changes: dict[str, Any] = {
        "procedure": data.procedure,
        "citizen_name": event.citizen.name,
        "phone": event.citizen.phone,
        "language": event.citizen.language,
        "updated_at": now,
    }
    if data.status_key == RESCHEDULED:
        changes["due_date"] = data.new_due_date
    else:
        changes["status"] = data.status_key
        changes["status_changed_at"] = event.occurred_at
        changes["due_date"] = data.due_date or (found["due_date"] if found else None)
        if data.status_key == "received":
            changes["received_at"] = (found["received_at"] if found else None) or event.occurred_at
        if data.status_key in RESOLVED:
            changes["resolved_at"] = (found["resolved_at"] if found else None) or event.occurred_at
    if found is None:
        # A dossier first heard of through a rescheduling keeps that as its status.
        changes.setdefault("status", data.status_key)
        changes.setdefault("status_changed_at", event.occurred_at)
        # Every column named, so that new dossiers can be inserted together.
        changes.setdefault("received_at", None)
        changes.setdefault("resolved_at", None)
        changes.update(code=data.code, created_at=now)
    return changes


def _notice(
    session: Session,
    settings: Settings,
    event: DossierEventIn,
    due_date: date | None,
    dossier_id: int,
    event_pk: int,
    now: datetime,
) -> Message:
    personalisation = {
        "code": event.dossier.code,
        "procedure": event.dossier.procedure,
        "due_date": _iso(event.dossier.due_date or due_date),
        "new_due_date": _iso(event.dossier.new_due_date),
        "note": event.dossier.note,
        "citizen_name": event.citizen.name,
    }
    return outbox.compose_new(
        session,
        settings,
        phone=event.citizen.phone,
        template=f"dossier_{event.dossier.status_key}",
        personalisation=personalisation,
        urgent=settings.DOSSIER_NOTICES_URGENT,
        essential=True,
        kind="dossier",
        language=event.citizen.language,
        now=now,
        dossier_id=dossier_id,
        dossier_event_id=event_pk,
    )


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value else None
