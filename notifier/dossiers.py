"""Dossier status events from the one-stop-shop system: validation, idempotent ingest, notices."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import Row, Table, bindparam, select
from sqlalchemy.orm import Session

from notifier import messages as msgs
from notifier import reminders
from notifier.config import Settings
from notifier.db import utcnow
from notifier.models import Dossier, DossierEvent, Message
from notifier.textinput import InputLine, InputText

StatusKey = Literal[
    "registered",
    "received",
    "not_accepted",
    "processing",
    "supplement_requested",
    "fee_required",
    "withdrawn",
    "stopped",
    "ready",
    "returned",
    "rescheduled",
]

# DOMAIN.md status table: code → key, and whether the citizen hears about it by default.
STATUS_CODES: dict[int, StatusKey] = {
    1: "registered",
    2: "received",
    3: "not_accepted",
    4: "processing",
    5: "supplement_requested",
    6: "fee_required",
    7: "withdrawn",
    8: "stopped",
    9: "ready",
    10: "returned",
}
RESCHEDULED = "rescheduled"
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

Text = Annotated[InputLine, StringConstraints(min_length=1)]


class DossierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, to_upper=True, pattern=r"^[0-9A-Za-z][0-9A-Za-z.\-_/]{2,63}$"
        ),
    ]
    procedure: Annotated[Text, StringConstraints(max_length=300)]
    status: StatusKey | None = None
    status_code: Annotated[int, Field(ge=1, le=10)] | None = None
    due_date: date | None = None
    new_due_date: date | None = None
    note: Annotated[InputText, StringConstraints(max_length=300)] | None = None

    @model_validator(mode="after")
    def _status_rules(self) -> DossierIn:
        if self.status is None and self.status_code is None:
            raise ValueError("either status or status_code is required")
        if self.status_code is not None:
            by_code = STATUS_CODES[self.status_code]
            if self.status is not None and self.status != by_code:
                raise ValueError(
                    f"status {self.status!r} contradicts status_code {self.status_code} ({by_code})"
                )
            self.status = by_code
        if self.status == RESCHEDULED and self.new_due_date is None:
            raise ValueError("new_due_date is required when status is 'rescheduled'")
        if self.status == "received" and self.due_date is None:
            raise ValueError("due_date is required when status is 'received'")
        return self

    @property
    def status_key(self) -> str:
        assert self.status is not None
        return self.status


class CitizenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[InputLine, StringConstraints(max_length=200)] | None = None
    # Checked for SMS later: an unusable number is recorded, not refused (CONTRACTS.md).
    phone: Annotated[Text, StringConstraints(max_length=64)]
    language: Literal["vi", "en"] = "vi"


class DossierEventIn(BaseModel):
    """The body of POST /api/v1/dossier-events."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "event_id": "onestop-2025-07-14-000123",
                    "occurred_at": "2025-07-14T08:30:00+07:00",
                    "dossier": {
                        "code": "000.00.31.H26-250714-0001",
                        "procedure": "Chứng thực bản sao từ bản chính",
                        "status": "received",
                        "due_date": "2025-07-16",
                    },
                    "citizen": {"name": "Nguyễn Văn An", "phone": "0912 345 678", "language": "vi"},
                }
            ]
        },
    )

    event_id: Annotated[Text, StringConstraints(max_length=200)]
    occurred_at: AwareDatetime
    dossier: DossierIn
    citizen: CitizenIn


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


def ingest(
    session: Session,
    settings: Settings,
    event: DossierEventIn,
    digest: str,
    now: datetime | None = None,
) -> IngestResult:
    """Record the event, update the dossier and add the citizen's notice. The caller commits.

    The webhook's hot path, so it is written with statements built once (the ORM's unit of work
    cost several times the statements themselves). An event id seen before is refused by the
    unique index (IntegrityError: the caller then answers with `find_existing`); looking it up
    first would cost every new event a round trip for the rare replay.
    """
    now = now or utcnow()
    status = event.dossier.status_key
    # Straight on the connection: Session.execute adds ORM work these statements do not need.
    connection = session.connection()
    found = connection.execute(_FIND_DOSSIER, {"code": event.dossier.code}).first()
    # An event older than what we already know is kept but not announced: a late "received"
    # after "ready" would only confuse the citizen.
    is_latest = found is None or found.status_changed_at <= event.occurred_at
    changes = _dossier_changes(event, found, now) if is_latest else {}
    if found is None:
        dossier_id = connection.execute(_INSERT_DOSSIER, changes).scalar_one()
    else:
        dossier_id = found.id
        if changes:
            connection.execute(_UPDATE_DOSSIER, {"dossier_pk": dossier_id, **changes})
    event_pk = connection.execute(
        _INSERT_EVENT,
        {
            "event_id": event.event_id,
            "payload_hash": digest,
            "dossier_id": dossier_id,
            "status": status,
            "occurred_at": event.occurred_at,
            "received_at": now,
            "new_due_date": event.dossier.new_due_date,
            "note": event.dossier.note,
        },
    ).scalar_one()
    result = IngestResult(event.event_id, duplicate=False)
    if is_latest and should_notify(settings, status):
        due_date = changes.get("due_date", found.due_date if found else None)
        notice = _notice(session, settings, event, due_date, dossier_id, event_pk, now)
        msgs.insert_new(session, [notice])
        result.messages.append(notice)
    previous_status = found.status if found else None
    if is_latest and reminders.dossier_change_matters(previous_status, changes.get("status")):
        dossier = session.get_one(Dossier, dossier_id)
        reminders.sync_dossier_reminders(session, settings, dossier)
    return result


def should_notify(settings: Settings, status: str) -> bool:
    return status in NOTIFYING or (status == "returned" and settings.NOTIFY_RETURNED)


_dossiers = cast(Table, Dossier.__table__)
_events = cast(Table, DossierEvent.__table__)
# Built once: SQLAlchemy caches a statement's compiled form, but building the statement per call
# would cost about as much as running it.
_FIND_DOSSIER = select(_dossiers).where(_dossiers.c.code == bindparam("code"))
_INSERT_DOSSIER = _dossiers.insert().returning(_dossiers.c.id)
_UPDATE_DOSSIER = _dossiers.update().where(_dossiers.c.id == bindparam("dossier_pk"))
_INSERT_EVENT = _events.insert().returning(_events.c.id)


def _dossier_changes(
    event: DossierEventIn, found: Row[Any] | None, now: datetime
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
        changes["due_date"] = data.due_date or (found.due_date if found else None)
        if data.status_key == "received":
            changes["received_at"] = (found.received_at if found else None) or event.occurred_at
        if data.status_key in RESOLVED:
            changes["resolved_at"] = (found.resolved_at if found else None) or event.occurred_at
    if found is None:
        # A dossier first heard of through a rescheduling keeps that as its status.
        changes.setdefault("status", data.status_key)
        changes.setdefault("status_changed_at", event.occurred_at)
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
    return msgs.compose_new(
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
