"""Notifications from other systems: composing, idempotent creation, listing, bulk batches.

No Flask here: the public API (`notifier.web.notifications`) and the staff console (CSV upload)
call the same functions. A bulk send is validated row by row up front (`validate_rows`), stored
as one `Batch` row (`submit_batch`), and its messages are created in chunks by a job
(`process_batch`), each chunk enqueued right after its commit.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

import jinja2
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from redis.exceptions import RedisError
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from notifier.api import keys
from notifier.core import ratelimit
from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import BULK_QUEUE, URGENT_QUEUE, Services
from notifier.messaging import delivery, outbox, statuses
from notifier.models import ApiKey, Batch, Message
from notifier.text import phones, sms, templating
from notifier.text.textinput import InputLine, InputText

log = logging.getLogger(__name__)

MAX_BULK_ROWS = 10_000
KIND = "api"
BATCH_JOB = "jobs.notifications.process_batch"
BATCH_PENDING = "pending"
BATCH_DONE = "done"

# --- request schemas ---------------------------------------------------------------------------

TemplateName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
# Text from outside is cleaned first (NFC, no control or invisible characters: textinput).
Reference = Annotated[InputLine, StringConstraints(min_length=1, max_length=200)]
Phone = Annotated[InputLine, StringConstraints(min_length=1, max_length=64)]
Body = Annotated[InputText, StringConstraints(min_length=1, max_length=5000)]
Value = Annotated[InputLine, StringConstraints(max_length=1000)] | int | float | bool | None
Personalisation = Annotated[
    dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")], Value],
    Field(max_length=50, json_schema_extra={"additionalProperties": False}),
]
Language = Literal["vi", "en"]
Priority = Literal["urgent", "bulk"]
Status = Literal["queued", "deferred", "sending", "sent", "delivered", "failed", "rejected"]

# Exactly one of `template` and `body` (absent and null are the same); personalisation only
# with a template. The validators below enforce it; this says it in the JSON Schema.
_STRING = {"type": "string"}
_NULL = {"type": "null"}
_ONE_CONTENT: dict[str, Any] = {
    "oneOf": [
        {"required": ["template"], "properties": {"template": _STRING, "body": _NULL}},
        {
            "required": ["body"],
            "properties": {"body": _STRING, "template": _NULL, "personalisation": _NULL},
        },
    ]
}
_ONE_BULK_CONTENT: dict[str, Any] = {
    "oneOf": [
        {"required": ["template"], "properties": {"template": _STRING, "body": _NULL}},
        {"required": ["body"], "properties": {"body": _STRING, "template": _NULL}},
    ]
}


def _content_rule(template: str | None, body: str | None, personalisation: Any) -> None:
    if template is None and body is None:
        raise ValueError("give either `template` (with `personalisation`) or `body`")
    if template is not None and body is not None:
        raise ValueError("give either `template` or `body`, not both")
    if body is not None and personalisation is not None:
        raise ValueError("`personalisation` goes with `template`, not with `body`")


class NotificationIn(BaseModel):
    """POST /api/v1/notifications: one SMS from a template or from free text."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **_ONE_CONTENT,
            "examples": [
                {
                    "phone": "0912 345 678",
                    "template": "dossier_received",
                    "personalisation": {
                        "code": "000.00.31.H26-250714-0001",
                        "procedure": "Chứng thực bản sao từ bản chính",
                        "due_date": "2025-07-16",
                    },
                    "reference": "onestop-2025-07-14-000123",
                },
                {"phone": "+84 912 345 678", "body": "Kính mời Ông/Bà đến nhận kết quả."},
            ],
        },
    )

    phone: Phone = Field(
        description="The recipient; any common Vietnamese way of writing it.",
        examples=["0912 345 678", "+84 912 345 678"],
    )
    template: TemplateName | None = Field(None, description="A template name (templates_sms/).")
    personalisation: Personalisation | None = Field(None, description="The template's values.")
    body: Body | None = Field(None, description="Free text, instead of a template.")
    reference: Reference | None = Field(
        None, description="Your id for this message; sending it again returns the first message."
    )
    language: Language = "vi"
    priority: Priority = Field(
        "urgent", description="`bulk` messages wait for the end of quiet hours."
    )
    essential: bool = Field(
        True, description="Essential messages still reach numbers that opted out of the rest."
    )

    @model_validator(mode="after")
    def _one_content(self) -> NotificationIn:
        _content_rule(self.template, self.body, self.personalisation)
        return self


class RecipientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Phone
    personalisation: Personalisation | None = None
    reference: Reference | None = None


class BulkIn(BaseModel):
    """POST /api/v1/notifications/bulk: one template or text, up to 10,000 recipients."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **_ONE_BULK_CONTENT,
            "examples": [
                {
                    "body": "UBND xã thông báo: lịch tiếp công dân chuyển sang thứ Năm.",
                    "reference": "broadcast-2025-07",
                    "recipients": [{"phone": "0912 345 678"}, {"phone": "0987 654 321"}],
                }
            ],
        },
    )

    template: TemplateName | None = None
    body: Body | None = None
    language: Language = "vi"
    reference: Reference | None = Field(
        None, description="Your id for this batch; sending it again returns the first batch."
    )
    priority: Priority = "bulk"
    essential: bool = False
    recipients: list[RecipientIn] = Field(min_length=1, max_length=MAX_BULK_ROWS)

    @model_validator(mode="after")
    def _one_content(self) -> BulkIn:
        _content_rule(self.template, self.body, None)
        return self


_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: Any) -> Any:
    # pydantic also reads "1700000000" or "2025-07-14 08:30" as times; a query string must not.
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time such as 2025-07-14T08:30:00+07:00")
    return value


def _digits(value: Any) -> Any:
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("expected a whole number written with digits only")
    return value


class NotificationQuery(BaseModel):
    """GET /api/v1/notifications query string (validate with `model_validate_strings`)."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    reference: Reference | None = None
    since: Annotated[AwareDatetime, BeforeValidator(_rfc3339)] | None = Field(
        None, description="Only messages created at or after this time (ISO 8601 with offset)."
    )
    cursor: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="`next_cursor` of the previous page."
    )
    limit: Annotated[int, BeforeValidator(_digits)] = Field(50, ge=1, le=250)


# --- response schemas --------------------------------------------------------------------------


class StatusChange(BaseModel):
    status: Status
    at: AwareDatetime


class NotificationCreated(BaseModel):
    """201 (or 200 for a repeated `reference`) of POST /api/v1/notifications."""

    id: str
    status: Status
    segments: int
    encoding: str
    body: str | None
    reference: str | None
    phone: str = Field(description="Masked: +84 91x xxx 678.")
    template: str | None
    language: str
    failure_reason: str | None
    created_at: AwareDatetime
    duplicate: bool = Field(description="True when `reference` matched an earlier message.")

    @classmethod
    def of(cls, message: Message, duplicate: bool = False) -> NotificationCreated:
        return cls(
            id=message.id,
            status=message.status,
            segments=message.segments,
            encoding=message.encoding,
            body=message.body,
            reference=message.reference,
            phone=phones.mask(message.phone),
            template=message.template,
            language=message.language,
            failure_reason=message.failure_reason,
            created_at=message.created_at,
            duplicate=duplicate,
        )


class Notification(BaseModel):
    """GET /api/v1/notifications/{id}."""

    id: str
    phone: str = Field(description="Masked: +84 91x xxx 678.")
    status: Status
    status_history: list[StatusChange]
    provider: str | None
    provider_message_id: str | None
    segments: int
    encoding: str
    created_at: AwareDatetime
    sent_at: AwareDatetime | None
    delivered_at: AwareDatetime | None
    failure_reason: str | None
    failure_detail: str | None
    completed_at: AwareDatetime | None
    reference: str | None
    template: str | None
    language: str
    body: str | None
    batch_id: str | None

    @classmethod
    def of(cls, message: Message) -> Notification:
        return cls(
            id=message.id,
            phone=phones.mask(message.phone),
            status=message.status,
            status_history=[
                StatusChange(status=event.status, at=event.at) for event in message.history
            ],
            provider=message.provider,
            provider_message_id=message.provider_message_id,
            segments=message.segments,
            encoding=message.encoding,
            created_at=message.created_at,
            sent_at=message.sent_at,
            delivered_at=message.delivered_at,
            failure_reason=message.failure_reason,
            failure_detail=message.failure_detail,
            completed_at=message.completed_at,
            reference=message.reference,
            template=message.template,
            language=message.language,
            body=message.body,
            batch_id=message.batch_id,
        )


class NotificationPage(BaseModel):
    notifications: list[Notification]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class RowError(BaseModel):
    """What is wrong with one recipient; too-long texts also carry `segments` and `limit`."""

    model_config = ConfigDict(extra="allow")

    row: int = Field(description="1 for the first recipient.")
    field: str
    message: str
    reason: str | None = None


class BatchOut(BaseModel):
    """A bulk send: 202 of POST /api/v1/notifications/bulk, and GET of its progress."""

    id: str
    reference: str | None
    state: Literal["pending", "done"] = Field(description="`done` once every message exists.")
    total_rows: int
    valid_rows: int
    invalid_rows: int
    created: int = Field(description="Messages created so far.")
    statuses: dict[str, int] = Field(description="Messages created so far, by status.")
    errors: list[RowError]
    created_at: AwareDatetime
    completed_at: AwareDatetime | None
    duplicate: bool = False


# --- composing ---------------------------------------------------------------------------------


class InvalidNotification(ValueError):
    """The request cannot become an SMS; `errors` name each field and why."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


class ReferenceConflict(ValueError):
    """A `reference` already used by this key for a different message or batch."""

    def __init__(self, reference: str, existing_id: str) -> None:
        super().__init__(
            f"reference {reference!r} was already used for {existing_id} with different content"
        )
        self.reference = reference
        self.existing_id = existing_id


class DailyCapReached(Exception):
    def __init__(self, decision: ratelimit.Decision, wanted: int) -> None:
        super().__init__(
            f"the daily cap of {decision.limit} messages is reached "
            f"({decision.remaining} left today, {wanted} asked)"
        )
        self.decision = decision


def check_phone(settings: Settings, raw: str) -> str:
    """E.164 of a number that can receive SMS; InvalidNotification naming the reason otherwise."""
    try:
        return phones.normalize(raw, allow_international=settings.ALLOW_INTERNATIONAL_SMS)
    except phones.InvalidPhoneNumber as exc:
        raise InvalidNotification(
            [{"field": "phone", "message": str(exc), "reason": exc.reason}]
        ) from None


def check_template(template: str, language: str = "vi") -> None:
    try:
        templating.required_variables(template, language)
    except templating.UnknownTemplate:
        known = ", ".join(templating.template_names())
        raise InvalidNotification(
            [{"field": "template", "message": f"Unknown template {template!r}. Known: {known}."}]
        ) from None


def compose(
    settings: Settings,
    *,
    template: str | None,
    personalisation: Mapping[str, Any] | None,
    body: str | None,
    language: str = "vi",
) -> sms.PreparedSms:
    """The SMS as it will be sent, or InvalidNotification naming what to fix."""
    if template is not None:
        try:
            text = outbox.render_text(settings, template, personalisation or {}, language)
        except templating.UnknownTemplate:
            check_template(template, language)
            raise
        except templating.MissingPersonalisation as exc:
            raise InvalidNotification(
                [
                    {
                        "field": f"personalisation.{name}",
                        "message": f"Template {template!r} needs {name!r}.",
                    }
                    for name in exc.missing
                ]
            ) from None
        except (ValueError, TypeError, jinja2.TemplateError) as exc:
            # A value the template cannot use, e.g. a date filter given "next week".
            raise InvalidNotification(
                [{"field": "personalisation", "message": f"Cannot render {template!r}: {exc}"}]
            ) from None
        source = "template"
    else:
        text, source = body or "", "body"
    try:
        prepared = outbox.prepare(settings, text)
    except sms.MessageTooLong as exc:
        raise InvalidNotification(
            [
                {
                    "field": source,
                    "message": str(exc),
                    "reason": "message_too_long",
                    "segments": exc.segments,
                    "limit": exc.limit,
                    "characters": exc.characters,
                    "max_characters": exc.max_chars,
                }
            ]
        ) from None
    if not prepared.body:
        raise InvalidNotification([{"field": source, "message": "The message is empty."}])
    return prepared


# --- one notification --------------------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    message: Message
    duplicate: bool


def find_by_reference(session: Session, api_key_id: int, reference: str) -> Message | None:
    return session.scalar(
        select(Message).where(Message.api_key_id == api_key_id, Message.reference == reference)
    )


def _same_request(
    message: Message, phone: str, request: NotificationIn, prepared: sms.PreparedSms
) -> bool:
    return (
        message.phone == phone
        and message.template == request.template
        and (message.personalisation or None) == (request.personalisation or None)
        # The body is gone after the retention purge; the other fields still tell.
        and (message.body is None or message.body == prepared.body)
    )


def _replay(
    message: Message, phone: str, request: NotificationIn, prepared: sms.PreparedSms
) -> Created:
    if not _same_request(message, phone, request, prepared):
        raise ReferenceConflict(request.reference or "", message.id)
    return Created(message, duplicate=True)


Referenced = TypeVar("Referenced", Message, Batch)


def _race_winner(
    services: Services,
    reservation: ratelimit.Reservation,
    error: IntegrityError,
    reference: str | None,
    api_key: ApiKey,
    model: type[Referenced],
) -> Referenced:
    """The row a concurrent request with the same reference committed first (it won the unique
    constraint); re-raises `error` when the conflict was about something else."""
    ratelimit.release_daily(services.redis, reservation)
    found = None
    if reference is not None:
        with services.db.session() as session:
            found = session.scalar(
                select(model).where(model.api_key_id == api_key.id, model.reference == reference)
            )
    if found is None:
        raise error
    return found


def reserve(services: Services, api_key: ApiKey, count: int) -> ratelimit.Reservation:
    """Count `count` new messages against the key's daily cap, or raise DailyCapReached."""
    cap = keys.limits(services.settings, api_key).daily_cap
    if cap is None:
        return ratelimit.Reservation(None, 0)
    decision, reservation = ratelimit.reserve_daily(
        services.redis, api_key.id, count, cap, tz=services.settings.tz
    )
    if not decision.allowed:
        raise DailyCapReached(decision, count)
    return reservation


def send(services: Services, api_key: ApiKey, request: NotificationIn) -> Created:
    """Create (or, for a repeated reference, find) one message, then enqueue it after commit.

    Raises InvalidNotification, ReferenceConflict or DailyCapReached.
    """
    settings = services.settings
    phone = check_phone(settings, request.phone)
    prepared = compose(
        settings,
        template=request.template,
        personalisation=request.personalisation,
        body=request.body,
        language=request.language,
    )
    reservation = ratelimit.Reservation(None, 0)
    try:
        with services.db.transaction() as session:
            if request.reference is not None:
                existing = find_by_reference(session, api_key.id, request.reference)
                if existing is not None:
                    return _replay(existing, phone, request, prepared)
            # Counted only once we know a message will be created (a replay is free).
            reservation = reserve(services, api_key, 1)
            message = outbox.create_message(
                session,
                settings,
                phone=phone,
                prepared=prepared,
                urgent=request.priority == URGENT_QUEUE,
                essential=request.essential,
                kind=KIND,
                template=request.template,
                personalisation=request.personalisation,
                language=request.language,
                api_key_id=api_key.id,
                reference=request.reference,
                provider=keys.provider_for(api_key),
            )
    except IntegrityError as exc:
        found = _race_winner(services, reservation, exc, request.reference, api_key, Message)
        return _replay(found, phone, request, prepared)
    except Exception:
        ratelimit.release_daily(services.redis, reservation)
        raise
    delivery.enqueue_committed(services, [message])
    return Created(message, duplicate=False)


def get(session: Session, api_key_id: int, message_id: str) -> Message | None:
    """The key's own message with its history; None for another key's or an unknown id."""
    return session.scalar(
        select(Message)
        .where(Message.id == message_id, Message.api_key_id == api_key_id)
        .options(selectinload(Message.history))
    )


class InvalidCursor(ValueError):
    pass


def _encode_cursor(message: Message) -> str:
    raw = json.dumps([message.created_at.isoformat(), message.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, message_id = json.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursor("`cursor` is not one this API gave out") from None
    if moment.tzinfo is None or not isinstance(message_id, str):
        raise InvalidCursor("`cursor` is not one this API gave out")
    return moment, message_id


def list_page(
    session: Session, api_key_id: int, query: NotificationQuery
) -> tuple[list[Message], str | None]:
    """The key's messages, newest first, one page at a time (keyset pagination)."""
    conditions = [Message.api_key_id == api_key_id]
    if query.status is not None:
        conditions.append(Message.status == query.status)
    if query.reference is not None:
        conditions.append(Message.reference == query.reference)
    if query.since is not None:
        conditions.append(Message.created_at >= query.since)
    if query.cursor is not None:
        at, message_id = _decode_cursor(query.cursor)
        conditions.append(
            or_(Message.created_at < at, and_(Message.created_at == at, Message.id < message_id))
        )
    found = session.scalars(
        select(Message)
        .where(*conditions)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(query.limit + 1)
        .options(selectinload(Message.history))
    ).all()
    page = list(found[: query.limit])
    next_cursor = _encode_cursor(page[-1]) if len(found) > query.limit else None
    return page, next_cursor


# --- bulk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidRow:
    row: int
    phone: str
    personalisation: dict[str, Any] | None
    reference: str | None
    segments: int

    def to_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "phone": self.phone,
            "personalisation": self.personalisation,
            "reference": self.reference,
        }


@dataclass
class RowValidation:
    """Every row checked: the ones to send and, for the others, what is wrong, by row number."""

    total: int = 0
    valid: list[ValidRow] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def segments(self) -> int:
        return sum(row.segments for row in self.valid)


def validate_rows(
    settings: Settings,
    rows: Iterable[Mapping[str, Any]],
    *,
    template: str | None = None,
    body: str | None = None,
    language: str = "vi",
    first_row: int = 1,
) -> RowValidation:
    """Check every row (plain dicts: `phone`, optional `personalisation` and `reference`).

    A template that does not exist, or a free text that cannot be sent, is wrong for every
    row: that raises InvalidNotification at once instead of repeating the error per row.
    Row numbers start at `first_row` (a CSV with a header line would pass 2).
    """
    if (template is None) == (body is None):
        raise InvalidNotification(
            [{"field": "template", "message": "Give either a template or a body."}]
        )
    shared: sms.PreparedSms | None = None
    if template is not None:
        check_template(template, language)
    else:
        shared = compose(settings, template=None, personalisation=None, body=body)
    result = RowValidation()
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=first_row):
        result.total += 1
        errors: list[dict[str, Any]] = []
        phone = ""
        prepared = shared
        personalisation = dict(row["personalisation"]) if row.get("personalisation") else None
        try:
            phone = check_phone(settings, str(row.get("phone") or ""))
        except InvalidNotification as exc:
            errors.extend(exc.errors)
        if prepared is None:
            try:
                prepared = compose(
                    settings,
                    template=template,
                    personalisation=personalisation,
                    body=None,
                    language=language,
                )
            except InvalidNotification as exc:
                errors.extend(exc.errors)
        reference = row.get("reference") or None
        if reference is not None and reference in seen:
            errors.append(
                {"field": "reference", "message": f"Same reference as row {seen[reference]}."}
            )
        if errors or prepared is None:
            result.errors.extend({"row": number, **error} for error in errors)
            continue
        if reference is not None:
            seen[reference] = number
        result.valid.append(
            ValidRow(number, phone, personalisation, reference, prepared.analysis.segments)
        )
    return result


def drop_used_references(session: Session, api_key_id: int, validation: RowValidation) -> None:
    """Move rows whose reference this key already used to the errors."""
    wanted = [row.reference for row in validation.valid if row.reference]
    if not wanted:
        return
    used = used_references(session, api_key_id, wanted)
    if not used:
        return
    kept = []
    for row in validation.valid:
        if row.reference in used:
            validation.errors.append(_used_reference_error(row.row, used[row.reference]))
        else:
            kept.append(row)
    validation.valid = kept
    validation.errors.sort(key=lambda error: error["row"])


def used_references(session: Session, api_key_id: int, references: Sequence[str]) -> dict[str, str]:
    """Which of `references` this key already used: reference → message id."""
    used: dict[str, str] = {}
    for start in range(0, len(references), 500):
        for reference, message_id in session.execute(
            select(Message.reference, Message.id).where(
                Message.api_key_id == api_key_id,
                Message.reference.in_(references[start : start + 500]),
            )
        ):
            if reference is not None:
                used[reference] = message_id
    return used


def _used_reference_error(row: int, message_id: str) -> dict[str, Any]:
    return {
        "row": row,
        "field": "reference",
        "message": f"Reference already used for notification {message_id}.",
        "reason": "duplicate_reference",
    }


@dataclass(frozen=True)
class BatchSubmitted:
    batch: Batch
    duplicate: bool


def create_batch(
    session: Session,
    validation: RowValidation,
    *,
    template: str | None,
    body: str | None,
    language: str = "vi",
    priority: str = BULK_QUEUE,
    essential: bool = False,
    kind: str = KIND,
    api_key_id: int | None = None,
    staff_user_id: int | None = None,
    reference: str | None = None,
    provider: str | None = None,
) -> Batch:
    """Add the batch row holding the valid rows. The caller commits, then `enqueue_batch`."""
    batch = Batch(
        api_key_id=api_key_id,
        staff_user_id=staff_user_id,
        reference=reference,
        template=template,
        body=body,
        language=language,
        priority=priority,
        essential=essential,
        kind=kind,
        provider=provider,
        total_rows=validation.total,
        valid_rows=len(validation.valid),
        rows=[row.to_json() for row in validation.valid],
        errors=list(validation.errors),
        created_count=0,
        state=BATCH_PENDING if validation.valid else BATCH_DONE,
        created_at=utcnow(),
        completed_at=None if validation.valid else utcnow(),
    )
    session.add(batch)
    session.flush()
    return batch


def batch_job_id(batch_id: str) -> str:
    return f"batch-{batch_id}"


def enqueue_batch(services: Services, batch_id: str) -> bool:
    """Ask a worker to create the batch's messages. False if Redis is down (the sweep will)."""
    try:
        services.queue(BULK_QUEUE).enqueue(
            BATCH_JOB,
            batch_id,
            job_id=batch_job_id(batch_id),
            result_ttl=600,
            failure_ttl=7 * 86400,
            description=f"create messages of batch {batch_id}",
        )
    except RedisError as exc:
        log.warning("queue unavailable, batch %s waits for the sweeper: %s", batch_id, exc)
        return False
    return True


def find_batch_by_reference(session: Session, api_key_id: int, reference: str) -> Batch | None:
    return session.scalar(
        select(Batch).where(Batch.api_key_id == api_key_id, Batch.reference == reference)
    )


def submit_bulk(services: Services, api_key: ApiKey, request: BulkIn) -> BatchSubmitted:
    """The API's bulk send: validate every row, reserve the daily cap, store, enqueue.

    Raises InvalidNotification (nothing valid, or wrong for every row), ReferenceConflict,
    DailyCapReached.
    """
    if request.reference is not None:
        with services.db.session() as session:
            existing = find_batch_by_reference(session, api_key.id, request.reference)
        if existing is not None:
            return _batch_replay(existing, request)
    validation = validate_rows(
        services.settings,
        (recipient.model_dump() for recipient in request.recipients),
        template=request.template,
        body=request.body,
        language=request.language,
    )
    with services.db.session() as session:
        drop_used_references(session, api_key.id, validation)
    if not validation.valid:
        raise InvalidNotification(
            [{**e, "field": f"recipients.{e['row'] - 1}.{e['field']}"} for e in validation.errors]
        )
    reservation = reserve(services, api_key, len(validation.valid))
    try:
        with services.db.transaction() as session:
            batch = create_batch(
                session,
                validation,
                template=request.template,
                body=request.body,
                language=request.language,
                priority=request.priority,
                essential=request.essential,
                api_key_id=api_key.id,
                reference=request.reference,
                provider=keys.provider_for(api_key),
            )
    except IntegrityError as exc:
        found = _race_winner(services, reservation, exc, request.reference, api_key, Batch)
        return _batch_replay(found, request)
    except Exception:
        ratelimit.release_daily(services.redis, reservation)
        raise
    enqueue_batch(services, batch.id)
    return BatchSubmitted(batch, duplicate=False)


def _batch_replay(batch: Batch, request: BulkIn) -> BatchSubmitted:
    if (
        batch.template != request.template
        or batch.body != request.body
        or batch.total_rows != len(request.recipients)
    ):
        raise ReferenceConflict(request.reference or "", batch.id)
    return BatchSubmitted(batch, duplicate=True)


def process_batch(services: Services, batch_id: str, chunk_size: int | None = None) -> int:
    """Create a batch's messages chunk by chunk, enqueueing each chunk after its commit.

    Safe to run twice or to resume after a crash: each chunk moves `created_count` forward in
    the same transaction that creates its messages. Returns how many messages this run created.
    """
    size = chunk_size or services.settings.API_BULK_CHUNK_SIZE
    created = 0
    conflicts = 0
    while True:
        try:
            with services.db.transaction() as session:
                batch = session.get(Batch, batch_id, with_for_update=True)
                if batch is None or batch.state == BATCH_DONE:
                    return created
                chunk = (batch.rows or [])[batch.created_count : batch.created_count + size]
                made = _create_chunk(session, services.settings, batch, chunk)
                batch.created_count += len(chunk)
                if batch.created_count >= len(batch.rows or []):
                    batch.state = BATCH_DONE
                    batch.rows = None  # phone numbers are not kept longer than needed
                    batch.completed_at = utcnow()
        except IntegrityError:
            # A reference taken meanwhile by a single send: the retry finds and skips it.
            conflicts += 1
            if conflicts > 3:
                raise
            continue
        delivery.enqueue_committed(services, made)
        created += len(made)


def _create_chunk(
    session: Session, settings: Settings, batch: Batch, chunk: Sequence[Mapping[str, Any]]
) -> list[Message]:
    used: dict[str, str] = {}
    if batch.api_key_id is not None:
        references = [row["reference"] for row in chunk if row.get("reference")]
        used = used_references(session, batch.api_key_id, references)
    opted_out = (
        set()
        if batch.essential
        else outbox.opted_out_among(session, [row["phone"] for row in chunk])
    )
    made: list[Message] = []
    late_errors: list[dict[str, Any]] = []
    now = utcnow()
    links = {
        "api_key_id": batch.api_key_id,
        "staff_user_id": batch.staff_user_id,
        "batch_id": batch.id,
        "provider": batch.provider,
    }
    for row in chunk:
        reference = row.get("reference")
        if reference in used:
            late_errors.append(_used_reference_error(row["row"], used[reference]))
            continue
        try:
            prepared = compose(
                settings,
                template=batch.template,
                personalisation=row.get("personalisation"),
                body=batch.body,
                language=batch.language,
            )
        except InvalidNotification as exc:
            # Only if templates changed between validation and now.
            made.append(
                outbox.new_rejected(
                    phone=row["phone"],
                    reason="template_error",
                    detail=str(exc),
                    kind=batch.kind,
                    template=batch.template,
                    language=batch.language,
                    now=now,
                    reference=reference,
                    **links,
                )
            )
            continue
        made.append(
            outbox.new_message(
                session,
                settings,
                phone=row["phone"],
                prepared=prepared,
                urgent=batch.priority == URGENT_QUEUE,
                essential=batch.essential,
                kind=batch.kind,
                template=batch.template,
                personalisation=row.get("personalisation"),
                language=batch.language,
                now=now,
                opted_out=row["phone"] in opted_out,
                reference=reference,
                **links,
            )
        )
    if late_errors:
        batch.errors = sorted([*batch.errors, *late_errors], key=lambda error: error["row"])
    outbox.insert_new(session, made)  # two multi-row INSERTs for the chunk
    return made


def batch_out(session: Session, batch: Batch, duplicate: bool = False) -> BatchOut:
    counts: Counter[str] = Counter()
    for status, count in session.execute(
        select(Message.status, func.count())
        .where(Message.batch_id == batch.id)
        .group_by(Message.status)
    ):
        counts[status] = count
    return BatchOut(
        id=batch.id,
        reference=batch.reference,
        state=batch.state,
        total_rows=batch.total_rows,
        valid_rows=batch.valid_rows,
        invalid_rows=batch.total_rows - batch.valid_rows,
        created=sum(counts.values()),
        statuses={status: counts[status] for status in statuses.ALL if counts[status]},
        errors=[RowError.model_validate(error) for error in batch.errors],
        created_at=batch.created_at,
        completed_at=batch.completed_at,
        duplicate=duplicate,
    )


def get_batch(session: Session, api_key_id: int, batch_id: str) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.id == batch_id, Batch.api_key_id == api_key_id))


def sweep_batches(services: Services, now: datetime | None = None) -> int:
    """Re-enqueue pending batches whose job is gone (worker crash, Redis restarted)."""
    now = now or utcnow()
    grace = timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS)
    with services.db.session() as session:
        ids = session.scalars(
            select(Batch.id).where(Batch.state == BATCH_PENDING, Batch.updated_at <= now - grace)
        ).all()
    live = services.live_jobs([batch_job_id(batch_id) for batch_id in ids])
    if live is None:
        return 0
    lost = [batch_id for batch_id in ids if batch_job_id(batch_id) not in live]
    return sum(enqueue_batch(services, batch_id) for batch_id in lost)
