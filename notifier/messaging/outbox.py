"""Creating messages and moving them through the status machine. No Flask, no queue here."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Concatenate, NamedTuple, ParamSpec, cast

from sqlalchemy import (
    ColumnElement,
    String,
    Table,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningUpdate

from notifier.core.config import Settings
from notifier.core.db import matches_any, new_id, utcnow
from notifier.messaging import callbacks, statuses
from notifier.models import Contact, Message, MessageStatusEvent
from notifier.text import phones, sms, templating
from notifier.text.quiet_hours import quiet_until

P = ParamSpec("P")


def office_personalisation(settings: Settings) -> dict[str, str]:
    """Values every template may use without the caller passing them."""
    return {
        "office_name": settings.OFFICE_NAME,
        "office_address": settings.OFFICE_ADDRESS,
        "office_hours": settings.OFFICE_HOURS,
    }


def render_text(
    settings: Settings, template: str, personalisation: Mapping[str, Any], language: str = "vi"
) -> str:
    """Render a template with the office's details filled in. Raises templating.TemplateError."""
    return templating.render(
        template, {**office_personalisation(settings), **personalisation}, language
    )


def prepare(settings: Settings, text: str) -> sms.PreparedSms:
    """Apply the diacritics policy and the hard length limit. Raises sms.MessageTooLong."""
    return sms.prepare(
        text,
        policy=settings.SMS_DIACRITICS,
        max_segments=settings.SMS_MAX_SEGMENTS,
        max_chars=settings.SMS_MAX_CHARACTERS,
    )


def is_opted_out(session: Session, phone: str) -> bool:
    return bool(session.scalar(select(Contact.opted_out).where(Contact.phone == phone)))


def opted_out_among(session: Session, numbers: Collection[str]) -> set[str]:
    """Which of `numbers` (E.164) opted out, in one query."""
    if not numbers:
        return set()
    return set(
        session.scalars(
            select(Contact.phone).where(Contact.phone.in_(numbers), Contact.opted_out.is_(True))
        )
    )


def new_message(
    session: Session,
    settings: Settings,
    *,
    phone: str,
    prepared: sms.PreparedSms,
    urgent: bool,
    essential: bool,
    kind: str,
    template: str | None = None,
    personalisation: Mapping[str, Any] | None = None,
    language: str = "vi",
    now: datetime | None = None,
    opted_out: bool | None = None,
    **links: Any,
) -> Message:
    """A new message in the status it deserves: queued, deferred (quiet hours) or rejected.

    Not yet written: `create_message` adds it to the session, `insert_new` writes it at once.
    `opted_out` may give the number's consent state when the caller already looked it up (bulk
    creation does, once per chunk); None looks it up.
    """
    now = now or utcnow()
    message = Message(
        id=new_id(),
        phone=phone.strip()[:64],
        template=template,
        language=language,
        personalisation=dict(personalisation) if personalisation is not None else None,
        body=prepared.body,
        encoding=prepared.analysis.encoding,
        segments=prepared.analysis.segments,
        characters=prepared.analysis.characters,
        priority="urgent" if urgent else "bulk",
        essential=essential,
        kind=kind,
        attempts=0,
        created_at=now,
        updated_at=now,
        **links,
    )
    status, reason, detail, not_before = _initial_status(
        session, settings, message, urgent, now, opted_out
    )
    message.status = status
    message.failure_reason = reason
    message.failure_detail = detail
    message.next_attempt_at = not_before
    if status == statuses.REJECTED:
        message.completed_at = now
    message.history.append(
        MessageStatusEvent(status=status, at=now, source="created", detail=reason)
    )
    return message


def new_rejected(
    *,
    phone: str,
    reason: str,
    detail: str,
    kind: str,
    template: str | None = None,
    language: str = "vi",
    now: datetime | None = None,
    **links: Any,
) -> Message:
    """A message that could not even be composed (template error, too long), not yet written."""
    now = now or utcnow()
    message = Message(
        id=new_id(),
        phone=phone.strip()[:64],
        template=template,
        language=language,
        body=None,
        encoding="GSM-7",
        segments=0,
        characters=0,
        status=statuses.REJECTED,
        failure_reason=reason,
        failure_detail=detail[:500],
        kind=kind,
        priority="urgent",
        essential=True,
        attempts=0,
        created_at=now,
        updated_at=now,
        completed_at=now,
        **links,
    )
    message.history.append(
        MessageStatusEvent(status=statuses.REJECTED, at=now, source="created", detail=reason)
    )
    return message


def _add(session: Session, message: Message) -> Message:
    session.add(message)
    callbacks.on_final_status(session, message, message.created_at)
    return message


def _adding(
    build: Callable[Concatenate[Session, P], Message],
) -> Callable[Concatenate[Session, P], Message]:
    """`build` a message, then add it to the session: same parameters, checked as such."""

    def add(session: Session, /, *args: P.args, **kwargs: P.kwargs) -> Message:
        return _add(session, build(session, *args, **kwargs))

    return add


def _without_session(build: Callable[P, Message]) -> Callable[Concatenate[Session, P], Message]:
    def build_in(_session: Session, /, *args: P.args, **kwargs: P.kwargs) -> Message:
        return build(*args, **kwargs)

    return build_in


create_message = _adding(new_message)
create_message.__doc__ = """Add a message row (see `new_message` for the fields). The caller
commits, then enqueues queued messages (see `delivery.enqueue`)."""
create_rejected = _adding(_without_session(new_rejected))
create_rejected.__doc__ = """Record a message that could not even be composed (see
`new_rejected` for the fields)."""


def insert_new(session: Session, messages: Sequence[Message]) -> None:
    """Write new messages (from `new_message`, `compose_new`) and their first history rows.

    The same rows `create_message` adds, written with two INSERTs built once: for the webhook,
    which creates a message per request hundreds of times a second, the ORM's unit of work
    costs several times the statements themselves. The messages stay detached from the session.
    """
    if not messages:
        return
    connection = session.connection()
    connection.execute(_INSERT_MESSAGE, [_columns(m, _MESSAGES) for m in messages])
    connection.execute(
        _INSERT_HISTORY,
        [{**_columns(m.history[0], _HISTORY, skip="id"), "message_id": m.id} for m in messages],
    )
    for message in messages:
        callbacks.on_final_status(session, message, message.created_at)


def _columns(row: Any, table: Table, skip: str = "") -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in table.columns if c.key != skip}


_MESSAGES = cast(Table, Message.__table__)
_HISTORY = cast(Table, MessageStatusEvent.__table__)
_INSERT_MESSAGE = _MESSAGES.insert()
_INSERT_HISTORY = _HISTORY.insert()


def _initial_status(
    session: Session,
    settings: Settings,
    message: Message,
    urgent: bool,
    now: datetime,
    opted_out: bool | None,
) -> tuple[str, str | None, str | None, datetime | None]:
    try:
        message.phone = phones.normalize(
            message.phone, allow_international=settings.ALLOW_INTERNATIONAL_SMS
        )
    except phones.InvalidPhoneNumber as exc:
        return statuses.REJECTED, exc.reason, str(exc), None
    if not message.essential and (
        is_opted_out(session, message.phone) if opted_out is None else opted_out
    ):
        return statuses.REJECTED, "opted_out", None, None
    if not urgent:
        resume_at = quiet_until(now, settings.quiet_hours, settings.tz)
        if resume_at is not None:
            return statuses.DEFERRED, None, None, resume_at
    return statuses.QUEUED, None, None, now


def transition(
    session: Session,
    message: Message,
    new_status: str,
    *,
    source: str,
    detail: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Move `message` forward to `new_status` and record it; False (and no change) otherwise."""
    if not statuses.can_move(message.status, new_status):
        return False
    now = now or utcnow()
    message.status = new_status
    message.updated_at = now
    if new_status == statuses.SENT:
        message.sent_at = message.sent_at or now
    elif new_status == statuses.DELIVERED:
        message.sent_at = message.sent_at or now
        message.delivered_at = now
    if new_status in statuses.FINAL:
        message.completed_at = now
        if reason:
            message.failure_reason = reason
            message.failure_detail = (detail or "")[:500] or None
    session.add(
        MessageStatusEvent(
            message_id=message.id, status=new_status, at=now, source=source, detail=detail or reason
        )
    )
    if new_status in statuses.FINAL:
        callbacks.on_final_status(session, message, now)
    return True


def claim_for_sending(
    session: Session, message_id: str, now: datetime | None = None
) -> Message | None:
    """Atomically move a queued message to `sending`; None when someone else already has it."""
    now = now or utcnow()
    result = session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == statuses.QUEUED)
        .values(status=statuses.SENDING, attempts=Message.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    session.add(
        MessageStatusEvent(message_id=message_id, status=statuses.SENDING, at=now, source="worker")
    )
    return session.get(Message, message_id, populate_existing=True)


def compose_new(
    session: Session,
    settings: Settings,
    *,
    phone: str,
    template: str,
    personalisation: Mapping[str, Any],
    urgent: bool,
    essential: bool,
    kind: str,
    language: str = "vi",
    now: datetime | None = None,
    opted_out: bool | None = None,
    **links: Any,
) -> Message:
    """Render `template` into a new message, not yet written; one that cannot be composed is
    rejected with the reason."""
    try:
        prepared = prepare(settings, render_text(settings, template, personalisation, language))
    except (templating.TemplateError, sms.MessageTooLong) as exc:
        return new_rejected(
            phone=phone,
            reason="message_too_long" if isinstance(exc, sms.MessageTooLong) else "template_error",
            detail=str(exc),
            kind=kind,
            template=template,
            language=language,
            now=now,
            **links,
        )
    return new_message(
        session,
        settings,
        phone=phone,
        prepared=prepared,
        urgent=urgent,
        essential=essential,
        kind=kind,
        template=template,
        personalisation=personalisation,
        language=language,
        now=now,
        opted_out=opted_out,
        **links,
    )


compose = _adding(compose_new)
compose.__doc__ = """Render a template and add its message (see `compose_new` for the fields); a
text that cannot be composed is recorded rejected. The caller commits, then enqueues (see
`delivery.enqueue_committed`)."""


def defer_if_quiet(
    session: Session, settings: Settings, message_id: str, now: datetime | None = None
) -> bool:
    """Put a queued non-urgent message back to `deferred` when it is about to go out in quiet hours.

    A backlog drained late, or a worker that was down overnight, must not wake citizens.
    """
    now = now or utcnow()
    resume_at = quiet_until(now, settings.quiet_hours, settings.tz)
    if resume_at is None:
        return False
    result = session.execute(
        update(Message)
        .where(
            Message.id == message_id,
            Message.status == statuses.QUEUED,
            Message.priority == "bulk",
        )
        .values(status=statuses.DEFERRED, next_attempt_at=resume_at, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(
        MessageStatusEvent(
            message_id=message_id,
            status=statuses.DEFERRED,
            at=now,
            source="worker",
            detail="quiet_hours",
        )
    )
    return True


def claim_batch(
    session: Session, message_ids: Sequence[str], now: datetime | None = None
) -> list[ClaimedRow]:
    """Atomically move the still-queued ones among `message_ids` to `sending` (one UPDATE).

    Returns what sending needs of each claimed message, as plain rows.
    """
    if not message_ids:
        return []
    now = now or utcnow()
    # Core statements built once, on the connection: the ORM's bulk paths, and building the
    # statement per call, cost a worker more CPU than the sending itself.
    connection = session.connection()
    rows = connection.execute(_CLAIM.on(connection), {"ids": list(message_ids), "now": now}).all()
    claimed = [ClaimedRow(*row) for row in rows]
    if claimed:
        connection.execute(
            _INSERT_HISTORY,
            [
                {"message_id": c.id, "status": statuses.SENDING, "at": now, "source": "worker"}
                for c in claimed
            ],
        )
    return claimed


def _status_is(status: str) -> ColumnElement[bool]:
    """`messages.status = status`, written so that no index on status can serve it.

    Claims and sent-marks name their rows by primary key. PostgreSQL, with statistics taken
    before a broadcast was queued, believes few messages are `queued` and reads all of them
    through the status index, for every claim of a few dozen: 29 ms instead of 3 per claim of 25
    at 20,000 queued, and growing with the queue.
    """
    return _MESSAGES.c.status.concat("") == status


def _claim_statement(matches_ids: ColumnElement[bool]) -> ReturningUpdate[Any]:
    table = _MESSAGES
    return (
        table.update()
        .where(matches_ids, _status_is(statuses.QUEUED))
        .values(status=statuses.SENDING, attempts=table.c.attempts + 1, updated_at=bindparam("now"))
        .returning(
            table.c.id,
            table.c.phone,
            table.c.body,
            table.c.segments,
            table.c.attempts,
            table.c.priority,
            table.c.provider,
        )
    )


_CLAIM = matches_any(_MESSAGES.c.id, "ids").map(_claim_statement)


class ClaimedRow(NamedTuple):
    id: str
    phone: str
    body: str | None
    segments: int
    attempts: int
    priority: str
    provider: str | None


def record_sent_batch(
    session: Session, accepted: Sequence[tuple[str, str, str]], now: datetime | None = None
) -> set[str]:
    """`sending` → `sent` for messages a provider accepted: (id, provider, provider_message_id).

    The set-based form of `transition` for the one move a worker makes thousands of times a
    second. Returns the ids that moved from `sending`.
    """
    if not accepted:
        return set()
    now = now or utcnow()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # One statement for the whole batch, its rows passed as three arrays: the text stays the
        # same whatever the batch size, so it is compiled and prepared once.
        ids, providers, sent_ids = (list(column) for column in zip(*accepted, strict=True))
        moved = set(
            connection.execute(
                _MARK_SENT_FROM_ARRAYS,
                {"ids": ids, "providers": providers, "sent_ids": sent_ids, "now": now},
            ).scalars()
        )
    else:
        moved = {
            mid
            for mid, provider, pid in accepted
            if connection.execute(
                _MARK_SENT_ONE,
                {"message_id": mid, "sent_provider": provider, "sent_id": pid, "now": now},
            ).rowcount
        }
    table = _MESSAGES
    for mid, provider, pid in accepted:
        if mid not in moved:
            # A receipt got here first (the status moved on without us): keep its status and
            # fill in who sent it. A message the sweep settled meanwhile is left as it is.
            session.execute(
                table.update()
                .where(
                    table.c.id == mid,
                    table.c.provider_message_id.is_(None),
                    table.c.status.in_([statuses.SENT, statuses.DELIVERED, statuses.FAILED]),
                )
                .values(provider=provider, provider_message_id=pid)
            )
    # Only what really moved gets its history row.
    if moved:
        session.execute(
            _INSERT_HISTORY,
            [
                {"message_id": mid, "status": statuses.SENT, "at": now, "source": provider}
                for mid, provider, _ in accepted
                if mid in moved
            ],
        )
    return moved


_NOW = bindparam("now", type_=_MESSAGES.c.updated_at.type)
_SENT_CHANGES = {
    "status": statuses.SENT,
    "sent_at": func.coalesce(_MESSAGES.c.sent_at, _NOW),
    "updated_at": _NOW,
}
_ACCEPTED = (
    func.unnest(
        bindparam("ids", type_=ARRAY(String)),
        bindparam("providers", type_=ARRAY(String)),
        bindparam("sent_ids", type_=ARRAY(String)),
    )
    .table_valued("message_id", "sent_provider", "sent_id")
    .render_derived(name="accepted")
)
_MARK_SENT_FROM_ARRAYS = (
    _MESSAGES.update()
    .where(_MESSAGES.c.id == _ACCEPTED.c.message_id, _status_is(statuses.SENDING))
    .values(
        provider=_ACCEPTED.c.sent_provider,
        provider_message_id=_ACCEPTED.c.sent_id,
        **_SENT_CHANGES,
    )
    .returning(_MESSAGES.c.id)
)
_MARK_SENT_ONE = (
    _MESSAGES.update()
    .where(_MESSAGES.c.id == bindparam("message_id"), _status_is(statuses.SENDING))
    .values(
        provider=bindparam("sent_provider"),
        provider_message_id=bindparam("sent_id"),
        **_SENT_CHANGES,
    )
)
