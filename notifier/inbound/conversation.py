"""Texts citizens send us: stored, understood (`keywords`), acted on, answered.

Every inbound SMS is kept with what we understood and what we answered, so staff can see the
conversation. The text, the action (a booking, an opt-out) and the reply row are written in one
transaction; the reply is enqueued after the commit, bound to the provider of the channel the
text came in on. Twilio carries its reply in the webhook's TwiML answer instead (`inline`).

Loops with auto-responders are cut twice: unknown text gets the help text at most once an hour
per number, and no number gets more than `INBOUND_REPLY_LIMIT_PER_HOUR` replies an hour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from notifier import reception
from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.dossiers import lookup
from notifier.messaging import consent, delivery, outbox, statuses
from notifier.models import Contact, InboundMessage, Message
from notifier.text import keywords, phones
from notifier.text.keywords import Intent, IntentKind
from notifier.text.textinput import clean_input, clip

log = logging.getLogger(__name__)

# Inbound channel → the provider that answers on it.
CHANNELS: Final = {"twilio": "twilio", "android": "android_gateway", "console": "console"}
HELP_INTERVAL: Final = timedelta(hours=1)
SESSIONS_LISTED: Final = 3
BOOKINGS_LISTED: Final = 5  # the soonest, when a citizen must say which booking to cancel
MAX_TEXT: Final = 2000  # what is stored of one inbound text


@dataclass(frozen=True)
class InboundSms:
    channel: str  # a key of CHANNELS
    phone: str  # as the channel gives it (local or international format)
    text: str
    external_id: str | None = None  # the channel's id, for deduplication


@dataclass(frozen=True)
class Reply:
    template: str
    personalisation: dict[str, Any]
    language: str = "vi"
    booking_id: int | None = None


@dataclass
class InboundResult:
    inbound_id: int
    duplicate: bool
    intent: str
    outcome: str | None
    reply: Message | None = None

    @property
    def reply_text(self) -> str | None:
        """The reply as the citizen reads it, unless it was refused (number unusable)."""
        if self.reply is None or self.reply.status == statuses.REJECTED:
            return None
        return self.reply.body


def handle(
    services: Services, sms: InboundSms, *, inline: bool = False, now: datetime | None = None
) -> InboundResult:
    """Store, act and answer. With `inline` the caller delivers the reply itself (TwiML)."""
    try:
        with services.db.transaction() as session:
            result = process(session, services.settings, sms, inline=inline, now=now)
    except IntegrityError:
        # The same text delivered twice at once: the other request stored and answered it.
        with services.db.session() as session:
            found = find_duplicate(session, sms)
        if found is None:
            raise
        return found
    if not (result.duplicate or inline) and result.reply is not None:
        delivery.enqueue_committed(services, [result.reply])
    return result


def process(
    session: Session,
    settings: Settings,
    sms: InboundSms,
    *,
    inline: bool = False,
    now: datetime | None = None,
) -> InboundResult:
    """`handle` inside the caller's transaction: nothing is enqueued here."""
    if sms.channel not in CHANNELS:
        raise ValueError(f"unknown inbound channel {sms.channel!r}")
    duplicate = find_duplicate(session, sms)
    if duplicate is not None:
        return duplicate
    now = now or utcnow()
    text = clip(clean_input(sms.text), MAX_TEXT)
    intent = keywords.parse(text)
    phone = _sender(sms.phone)
    row = InboundMessage(
        channel=sms.channel,
        external_id=_external_id(sms),
        phone=phone or clean_input(sms.phone, multiline=False)[:64],
        text=text,
        intent=intent.kind.value,
        received_at=now,
    )
    session.add(row)
    # Flushed first, so a concurrent duplicate fails here, before anything is booked twice.
    session.flush()
    result = InboundResult(row.id, duplicate=False, intent=intent.kind.value, outcome=None)
    if phone is None:
        # A short code or a sender name (operators' own messages): nobody to answer.
        row.outcome = result.outcome = "unknown_sender"
        log.info("inbound %s from an unusable sender, not answered", sms.channel)
        return result
    reply, result.outcome = _act(_Turn(session, settings, intent, phone, sms.channel, now))
    if reply is not None and _replies_this_hour(session, phone, now) >= (
        settings.INBOUND_REPLY_LIMIT_PER_HOUR
    ):
        log.warning("reply limit reached for %s, not answered", phones.mask(phone))
        reply, result.outcome = None, "reply_limit"
    if reply is not None:
        result.reply = _send(session, settings, reply, phone, sms.channel, inline, now)
        row.reply_text = result.reply.body
        row.reply_message_id = result.reply.id
    row.outcome = result.outcome
    return result


def find_duplicate(session: Session, sms: InboundSms) -> InboundResult | None:
    """The result of an earlier delivery of the same text (same channel and external id)."""
    external_id = _external_id(sms)
    if not external_id:
        return None
    row = session.scalar(
        select(InboundMessage).where(
            InboundMessage.channel == sms.channel, InboundMessage.external_id == external_id
        )
    )
    if row is None:
        return None
    reply = session.get(Message, row.reply_message_id) if row.reply_message_id else None
    return InboundResult(
        row.id, duplicate=True, intent=row.intent or "", outcome=row.outcome, reply=reply
    )


@dataclass(frozen=True)
class InboundView:
    """An inbound text as staff see it (phone masked)."""

    id: int
    channel: str
    phone: str
    text: str | None
    intent: str | None
    outcome: str | None
    reply_text: str | None
    reply_message_id: str | None
    received_at: datetime


def recent(
    session: Session, *, limit: int = 50, before_id: int | None = None, phone: str | None = None
) -> list[InboundView]:
    """The latest inbound texts, newest first (page with `before_id`)."""
    query = select(InboundMessage).order_by(InboundMessage.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(InboundMessage.id < before_id)
    if phone is not None:
        query = query.where(
            InboundMessage.phone == (_sender(phone) or clean_input(phone, multiline=False))
        )
    return [
        InboundView(
            id=row.id,
            channel=row.channel,
            phone=phones.mask(row.phone),
            text=row.text,
            intent=row.intent,
            outcome=row.outcome,
            reply_text=row.reply_text,
            reply_message_id=row.reply_message_id,
            received_at=row.received_at,
        )
        for row in session.scalars(query)
    ]


# -- acting on an intent ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Turn:
    """One inbound text being acted on."""

    session: Session
    settings: Settings
    intent: Intent
    phone: str
    channel: str
    now: datetime

    def reply(self, template: str, fields: dict[str, Any] | None = None, **extra: Any) -> Reply:
        return Reply(template, fields or {}, self.intent.language, **extra)

    def when(self, moment: datetime) -> dict[str, str]:
        return reception.local_fields(moment, self.settings, self.intent.language)


Acted = tuple[Reply | None, str]  # the reply to send (None: none), and the outcome for staff


def _act(turn: _Turn) -> Acted:
    """Run the intent against the domain."""
    return _HANDLERS[turn.intent.kind](turn)


def _list(turn: _Turn) -> Acted:
    upcoming = reception.upcoming_sessions(turn.session, turn.now, limit=SESSIONS_LISTED)
    if not upcoming:
        return turn.reply("reply_no_sessions"), "no_sessions"
    listed = [
        {
            **reception.notice_fields(turn.settings, info, turn.intent.language),
            "remaining": info.remaining,
        }
        for info in upcoming
    ]
    return turn.reply("reply_sessions", {"sessions": listed}), "listed"


_BOOK_REFUSALS = {
    reception.BookStatus.FULL: "reply_session_full",
    reception.BookStatus.PAST: "reply_session_past",
    reception.BookStatus.CANCELLED: "reply_session_cancelled",
    reception.BookStatus.UNKNOWN: "reply_session_unknown",
}


def _book(turn: _Turn) -> Acted:
    intent = turn.intent
    if intent.number is None:
        return turn.reply("reply_book_how"), "no_number"
    outcome = reception.book(
        turn.session,
        turn.settings,
        phone=turn.phone,
        channel=turn.channel,
        number=intent.number,
        topic=intent.topic,
        now=turn.now,
    )
    booking, held = outcome.booking, outcome.session
    if booking is not None and held is not None:
        fields = reception.booking_fields(turn.settings, booking, held, intent.language)
        booked = outcome.status is reception.BookStatus.BOOKED
        template = "reply_booked" if booked else "reply_already_booked"
        return turn.reply(template, fields, booking_id=booking.id), outcome.status.value
    fields = (
        reception.notice_fields(turn.settings, held, intent.language)
        if held is not None
        else {"number": intent.number}
    )
    return turn.reply(_BOOK_REFUSALS[outcome.status], fields), outcome.status.value


def _cancel(turn: _Turn) -> Acted:
    outcome = reception.cancel_for_phone(
        turn.session,
        turn.settings,
        turn.phone,
        code=turn.intent.code,
        number=turn.intent.number,
        now=turn.now,
    )
    Status = reception.CancelStatus
    status, booking = outcome.status, outcome.booking
    if status is Status.CHOOSE:
        listed = [
            {"code": c.code, **turn.when(c.expected_at)}
            for c in outcome.candidates[:BOOKINGS_LISTED]
        ]
        fields = {"count": len(outcome.candidates), "bookings": listed}
        return turn.reply("reply_cancel_choose", fields), status.value
    if booking is not None and status in (Status.CANCELLED, Status.ALREADY_CANCELLED):
        fields = {"booking_code": booking.code, **turn.when(booking.expected_at)}
        return turn.reply("reply_booking_cancelled", fields, booking_id=booking.id), status.value
    if booking is not None and status is Status.PAST:
        return turn.reply("reply_cancel_past", {"booking_code": booking.code}), status.value
    if status is Status.NOT_FOUND:
        return turn.reply("reply_cancel_not_found"), status.value
    return turn.reply("reply_nothing_to_cancel"), status.value


def _dossier(turn: _Turn) -> Acted:
    if not turn.intent.code:
        return turn.reply("reply_dossier_how"), "no_code"
    today = turn.now.astimezone(turn.settings.tz).date()
    found = lookup.lookup_for_phone(turn.session, turn.intent.code, turn.phone, today)
    if found is None:
        return turn.reply("reply_dossier_refused"), "refused"
    fields = {
        "code": found.code,
        "status_text": found.words(turn.intent.language),
        "due_date": found.due_date.isoformat() if found.due_date else None,
        "overdue": found.overdue,
    }
    return turn.reply("reply_dossier_status", fields), "found"


def _opt_out(turn: _Turn) -> Acted:
    consent.opt_out(turn.session, turn.phone, channel=turn.channel, now=turn.now)
    return turn.reply("reply_opted_out"), "opted_out"


def _opt_in(turn: _Turn) -> Acted:
    consent.opt_in(turn.session, turn.phone, channel=turn.channel, now=turn.now)
    return turn.reply("reply_opted_in"), "opted_in"


def _help(turn: _Turn) -> Acted:
    return turn.reply("reply_help"), "help"


def _unknown(turn: _Turn) -> Acted:
    if _claim_help(turn.session, turn.phone, turn.channel, turn.now):
        return _help(turn)
    return None, "help_suppressed"


_HANDLERS: dict[IntentKind, Callable[[_Turn], Acted]] = {
    IntentKind.LIST: _list,
    IntentKind.BOOK: _book,
    IntentKind.CANCEL: _cancel,
    IntentKind.DOSSIER: _dossier,
    IntentKind.OPT_OUT: _opt_out,
    IntentKind.OPT_IN: _opt_in,
    IntentKind.HELP: _help,
    IntentKind.UNKNOWN: _unknown,
}


# -- replying ---------------------------------------------------------------------------------


def _send(
    session: Session,
    settings: Settings,
    reply: Reply,
    phone: str,
    channel: str,
    inline: bool,
    now: datetime,
) -> Message:
    provider = CHANNELS[channel]
    message = outbox.compose(
        session,
        settings,
        phone=phone,
        template=reply.template,
        personalisation=reply.personalisation,
        urgent=True,
        essential=True,
        kind="reply",
        language=reply.language,
        now=now,
        provider=provider,
        booking_id=reply.booking_id,
    )
    session.flush()
    if inline and message.status == statuses.QUEUED:
        # The webhook's own answer carries it: recorded as handed to the provider, never queued.
        outbox.transition(
            session,
            message,
            statuses.SENT,
            source=provider,
            detail="carried by the webhook response",
            now=now,
        )
    return message


def _replies_this_hour(session: Session, phone: str, now: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                InboundMessage.phone == phone,
                InboundMessage.received_at > now - timedelta(hours=1),
                InboundMessage.reply_message_id.is_not(None),
            )
        )
        or 0
    )


def _claim_help(session: Session, phone: str, channel: str, now: datetime) -> bool:
    """True (and noted) when this number has not been sent the help text within the hour."""
    values = {"phone": phone, "opted_out": False, "channel": channel, "changed_at": now}
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(Contact).values(**values).on_conflict_do_nothing(index_elements=["phone"])
    )
    # One conditional UPDATE: of two texts arriving together, only one wins the claim.
    claimed = session.execute(
        update(Contact)
        .where(
            Contact.phone == phone,
            or_(
                Contact.last_help_sent_at.is_(None),
                Contact.last_help_sent_at <= now - HELP_INTERVAL,
            ),
        )
        .values(last_help_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def _external_id(sms: InboundSms) -> str | None:
    if not sms.external_id:
        return None
    return clean_input(sms.external_id, multiline=False)[:128] or None


def _sender(raw: str) -> str | None:
    """The sender as E.164, or None for short codes and sender names that cannot be answered."""
    try:
        return phones.normalize(raw, allow_international=True)
    except phones.InvalidPhoneNumber:
        return None
