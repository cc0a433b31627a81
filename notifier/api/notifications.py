"""Single sends of the notifications API: composing, idempotent creation, reading, listing.

No Flask here: the public API (`notifier.web.notifications`) calls these functions with the
contracts of `schemas.notifications`. A text is checked by the row pipeline the bulk sends and
the console share (`notices.rows`), whose problems are worded as the API's JSON errors. Bulk
sends are `api.batches`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from notifier.api import keys
from notifier.core import ratelimit
from notifier.core.config import Settings
from notifier.core.runtime import URGENT_QUEUE, Services
from notifier.messaging import delivery, outbox
from notifier.models import ApiKey, Batch, Message
from notifier.notices import rows
from notifier.schemas.notifications import NotificationIn, NotificationQuery
from notifier.text import sms

KIND = "api"

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
        return rows.check_phone(settings, raw)
    except rows.Unsendable as exc:
        raise InvalidNotification(exc.problem.api()) from None


def compose(
    settings: Settings,
    *,
    template: str | None,
    personalisation: Mapping[str, Any] | None,
    body: str | None,
    language: str = "vi",
) -> sms.PreparedSms:
    """The SMS as it will be sent, or InvalidNotification naming what to fix."""
    content = rows.Content(template, body, language, fill_body=False)
    try:
        return rows.make_sms(settings, content, personalisation or {})
    except rows.Unsendable as exc:
        raise InvalidNotification(exc.problem.api()) from None


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


def race_winner(
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


def made_with(api_key: ApiKey, reference: str | None) -> dict[str, Any]:
    """What a message or a batch made through the API keeps of its key and reference."""
    return {
        "api_key_id": api_key.id,
        "reference": reference,
        "provider": keys.provider_for(api_key),
    }


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
                **made_with(api_key, request.reference),
            )
    except IntegrityError as exc:
        found = race_winner(services, reservation, exc, request.reference, api_key, Message)
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
