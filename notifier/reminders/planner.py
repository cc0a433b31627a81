"""Reminders: messages due later (before a reception session, for uncollected results).

Callers keep reminders in step with the state they depend on by calling the `sync_*` functions
after every change, inside the same transaction. Each sync is idempotent: it works out which
reminders the current state calls for, schedules the missing ones, moves the ones whose time
changed and cancels the rest.

`fire_due` (run by the scheduler) claims due rows in batches (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite's `BEGIN IMMEDIATE` serialises writers), checks each against the current state
once more, adds its message, commits and only then enqueues. Two schedulers never send the same
reminder twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.orm import Session, selectinload

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import delivery, outbox
from notifier.models import Booking, Dossier, Message, Reminder
from notifier.text import phones
from notifier.text.quiet_hours import first_instant_at, outside
from notifier.text.workdays import calendar_for

log = logging.getLogger(__name__)

# States
SCHEDULED = "scheduled"
SENT = "sent"  # its message was created (the message's own status says whether it arrived)
CANCELLED = "cancelled"  # a sync found it no longer called for
SKIPPED = "skipped"  # the sweep found it no longer applied when it came due

# Kinds; each has the template "reminder_<kind>".
BOOKING_DAY_BEFORE = "booking_day_before"
BOOKING_SAME_DAY = "booking_same_day"
DOSSIER_UNCOLLECTED = "dossier_uncollected"
BOOKING_KINDS = (BOOKING_DAY_BEFORE, BOOKING_SAME_DAY)

# Why a reminder was cancelled or skipped (`Reminder.skip_reason`); bookings not `booked` give
# "booking_<state>" (booking_cancelled, booking_attended, booking_no_show).
SESSION_CANCELLED = "session_cancelled"
PAST = "past"  # the appointment has begun, or the new time is already past
COLLECTED = "collected"  # the dossier's result was handed over (status `returned`)
STATUS_CHANGED = "status_changed"  # the dossier is no longer `ready`
NO_PHONE = "no_phone"
NOT_DUE = "not_due"  # the rules no longer call for it (settings changed, times moved)
SUPERSEDED = "superseded"  # a later reminder of the same thing is due by the time it could go
ERROR = "error"

Key = tuple[str, int]  # (kind, sequence)


# -- the rules ---------------------------------------------------------------------------------


def appointment_of(booking: Booking) -> datetime:
    """When the citizen is expected: the booking's estimated time, else the session's start."""
    return booking.expected_at or booking.session.starts_at


def booking_blocker(booking: Booking) -> str | None:
    """Why a booking gets no reminders at all, or None."""
    if booking.state != "booked":
        return f"booking_{booking.state}"
    if booking.session.status == "cancelled":
        return SESSION_CANCELLED
    return None


def booking_schedule(settings: Settings, booking: Booking) -> dict[Key, datetime]:
    """When each reminder of a booking falls due under the rules, past times included.

    The day before the session at REMINDER_DAY_BEFORE_AT; on the day at REMINDER_SAME_DAY_AT or
    REMINDER_SAME_DAY_MINUTES_BEFORE the session starts, whichever is later. A time inside quiet
    hours moves to their end; a reminder that would then come at or after the citizen's
    appointment (or, the evening one, at or after the morning one) is dropped.
    """
    tz, window = settings.tz, settings.quiet_hours
    starts_at = booking.session.starts_at
    day = starts_at.astimezone(tz).date()
    due: dict[Key, datetime] = {}
    if (same_day_at := settings.clock("REMINDER_SAME_DAY_AT")) is not None:
        before = timedelta(minutes=settings.REMINDER_SAME_DAY_MINUTES_BEFORE)
        morning = max(first_instant_at(day, same_day_at, tz), starts_at - before)
        due[(BOOKING_SAME_DAY, 1)] = outside(morning, window, tz)
    appointment = appointment_of(booking)
    if (day_before_at := settings.clock("REMINDER_DAY_BEFORE_AT")) is not None:
        evening = outside(first_instant_at(day - timedelta(days=1), day_before_at, tz), window, tz)
        if evening < due.get((BOOKING_SAME_DAY, 1), appointment):
            due[(BOOKING_DAY_BEFORE, 1)] = evening
    return {key: at for key, at in due.items() if at < appointment}


def dossier_blocker(dossier: Dossier) -> str | None:
    """Why a dossier gets no reminders at all, or None."""
    if dossier.status == "returned":
        return COLLECTED
    if dossier.status != "ready":
        return STATUS_CHANGED
    if not (dossier.phone or "").strip():
        return NO_PHONE
    return None


def dossier_change_matters(previous_status: str | None, new_status: str | None) -> bool:
    """Whether a dossier's change can add or cancel reminders (else there is nothing to look up).

    Only a dossier waiting to be collected has reminders, and leaving that state cancels them,
    so one that neither is nor was `ready` has none scheduled.
    """
    return "ready" in (previous_status, new_status)


def ready_since(dossier: Dossier) -> datetime:
    """When the result first became ready (a repeated `ready` event does not restart the count)."""
    return dossier.resolved_at or dossier.status_changed_at


def dossier_schedule(settings: Settings, dossier: Dossier) -> dict[Key, datetime]:
    """A `ready` dossier: at DOSSIER_REMINDER_AT on the DOSSIER_REMINDER_WORKING_DAYS-th working
    day after the day it became ready, then again every as many working days, at most
    DOSSIER_REMINDER_REPEATS more times."""
    every = settings.DOSSIER_REMINDER_WORKING_DAYS
    at = settings.clock("DOSSIER_REMINDER_AT")
    if every < 1 or at is None:
        return {}
    tz, window = settings.tz, settings.quiet_hours
    calendar = calendar_for(settings)
    day = ready_since(dossier).astimezone(tz).date()
    due: dict[Key, datetime] = {}
    for sequence in range(1, settings.DOSSIER_REMINDER_REPEATS + 2):
        day = calendar.add_working_days(day, every)
        due[(DOSSIER_UNCOLLECTED, sequence)] = outside(first_instant_at(day, at, tz), window, tz)
    return due


# -- keeping reminders in step -----------------------------------------------------------------


def sync_booking_reminders(session: Session, settings: Settings, booking: Booking) -> None:
    """After a booking is made or cancelled, or its session moved or cancelled."""
    sync_bookings(session, settings, [booking])


def sync_bookings(
    session: Session,
    settings: Settings,
    bookings: Sequence[Booking],
    now: datetime | None = None,
) -> None:
    """`sync_booking_reminders` for many bookings at once (a whole session moved, say)."""
    now = now or utcnow()
    if any(b.id is None for b in bookings):
        session.flush()
    existing = _existing(session, Reminder.booking_id, [b.id for b in bookings])
    new: list[dict[str, Any]] = []
    for booking in bookings:
        blocker = booking_blocker(booking)
        new += _reconcile(
            existing.get(booking.id, []),
            {} if blocker else booking_schedule(settings, booking),
            now,
            cancel_reason=blocker or NOT_DUE,
            once_per_sequence=False,
            booking_id=booking.id,
        )
    _insert(session, new)


def sync_dossier_reminders(
    session: Session, settings: Settings, dossier: Dossier, now: datetime | None = None
) -> None:
    """After a dossier's status changed (a `ready` dossier waits to be collected)."""
    now = now or utcnow()
    if dossier.id is None:
        session.flush()
    existing = _existing(session, Reminder.dossier_id, [dossier.id])
    blocker = dossier_blocker(dossier)
    new = _reconcile(
        existing.get(dossier.id, []),
        {} if blocker else dossier_schedule(settings, dossier),
        now,
        cancel_reason=blocker or NOT_DUE,
        once_per_sequence=True,
        dossier_id=dossier.id,
    )
    _insert(session, new)


_IN_CHUNK = 500  # SQLite limits the number of bound parameters


def _existing(session: Session, column: Any, ids: Sequence[int]) -> dict[int, list[Reminder]]:
    found: dict[int, list[Reminder]] = defaultdict(list)
    for start in range(0, len(ids), _IN_CHUNK):
        rows = session.scalars(
            select(Reminder).where(
                column.in_(ids[start : start + _IN_CHUNK]), Reminder.state != CANCELLED
            )
        )
        for row in rows:
            found[getattr(row, column.key)].append(row)
    return found


def _reconcile(
    rows: Iterable[Reminder],
    wanted: dict[Key, datetime],
    now: datetime,
    *,
    cancel_reason: str,
    once_per_sequence: bool,
    **links: int,
) -> list[dict[str, Any]]:
    """Make the rows match `wanted`; returns the reminders to add. A reminder already sent or
    skipped is not scheduled again: for a dossier never (`once_per_sequence`), for a booking not
    for the same time (a session moved to another day deserves its own reminders)."""
    pending: dict[Key, Reminder] = {}
    handled: dict[Key, set[datetime]] = defaultdict(set)
    new: list[dict[str, Any]] = []
    for row in rows:
        if row.state == SCHEDULED:
            pending[(row.kind, row.sequence)] = row
        else:
            handled[(row.kind, row.sequence)].add(row.due_at)
    for key, due in wanted.items():
        if key in pending:
            current = pending.pop(key)
            if current.due_at != due:
                if due > now:
                    current.due_at = due
                else:
                    _close(current, CANCELLED, PAST, now)
            continue
        if key in handled and (once_per_sequence or due in handled[key]):
            continue
        if due > now:  # nothing is scheduled for a time already past
            kind, sequence = key
            new.append({"kind": kind, "sequence": sequence, "due_at": due, **links})
    for left in pending.values():
        _close(left, CANCELLED, cancel_reason, now)
    return new


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    # A plain multi-row INSERT: objects added to the session would make SQLite insert them one
    # statement at a time to learn each new id, which nothing here needs.
    if rows:
        session.execute(insert(Reminder), rows)


def _close(row: Reminder, state: str, reason: str | None, now: datetime) -> None:
    row.state = state
    row.skip_reason = reason
    row.handled_at = now
    row.updated_at = now


# -- firing ------------------------------------------------------------------------------------


@dataclass
class FireResult:
    sent: int = 0
    skipped: int = 0
    rescheduled: int = 0

    def add(self, other: FireResult) -> None:
        self.sent += other.sent
        self.skipped += other.skipped
        self.rescheduled += other.rescheduled


def fire_due(
    services: Services,
    now: datetime | None = None,
    batch_size: int = 500,
    max_batches: int | None = None,
) -> FireResult:
    """Send every reminder due by `now` (default: the clock, read again for each batch).

    Each batch is one short transaction, committed before its messages are enqueued;
    `max_batches` bounds the work of one call.
    """
    total = FireResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        batch_now = now or utcnow()
        with services.db.transaction() as session:
            claimed = _claim(session, batch_now, batch_size)
            result, created = _fire_batch(session, services.settings, claimed, batch_now)
        delivery.enqueue_committed(services, created)
        total.add(result)
        batches += 1
        if len(claimed) < batch_size:
            break
    if total.sent or total.skipped or total.rescheduled:
        log.info(
            "reminders: %d sent, %d skipped, %d rescheduled",
            total.sent,
            total.skipped,
            total.rescheduled,
        )
    return total


def _claim(session: Session, now: datetime, limit: int) -> Sequence[Reminder]:
    return session.scalars(
        select(Reminder)
        .where(Reminder.state == SCHEDULED, Reminder.due_at <= now)
        .order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Reminder)
        .options(
            selectinload(Reminder.booking).selectinload(Booking.session),
            selectinload(Reminder.dossier),
        )
    ).all()


def _fire_batch(
    session: Session, settings: Settings, claimed: Sequence[Reminder], now: datetime
) -> tuple[FireResult, list[Message]]:
    result = FireResult()
    created: list[Message] = []
    # Consent looked up once for the batch; an unusable number is refused before it matters.
    numbers = {row.id: _number_of(settings, row) for row in claimed}
    opted_out = outbox.opted_out_among(session, {n for n in numbers.values() if n})
    for row in claimed:
        number = numbers[row.id]
        try:
            with session.no_autoflush:  # one batched INSERT at commit, not one per row
                outcome = _fire_one(session, settings, row, now, number in opted_out)
        except Exception:
            # One broken row must not block every reminder behind it.
            log.exception("reminder %s could not be sent", row.id)
            _close(row, SKIPPED, ERROR, now)
            outcome = SKIPPED
        if isinstance(outcome, Message):
            created.append(outcome)
            result.sent += 1
        elif outcome == SKIPPED:
            result.skipped += 1
        else:
            result.rescheduled += 1
    return result, created


def _phone_of(row: Reminder) -> str:
    if row.booking is not None:
        return row.booking.phone
    return (row.dossier.phone if row.dossier is not None else None) or ""


def _number_of(settings: Settings, row: Reminder) -> str | None:
    """The E.164 number a reminder goes to, or None (its message will say why it cannot go)."""
    try:
        return phones.normalize(
            _phone_of(row), allow_international=settings.ALLOW_INTERNATIONAL_SMS
        )
    except phones.InvalidPhoneNumber:
        return None


def _fire_one(
    session: Session, settings: Settings, row: Reminder, now: datetime, opted_out: bool
) -> Message | str:
    """The reminder's message, or SKIPPED / SCHEDULED (moved to a later time) after re-checking."""
    blocker, wanted = _current_rules(settings, row, now)
    due = wanted.get((row.kind, row.sequence))
    if blocker is not None or due is None:
        _close(row, SKIPPED, blocker or NOT_DUE, now)
        return SKIPPED
    if due > now and due != row.due_at:  # its time moved and no sync told us
        row.due_at = due
        return SCHEDULED
    goes_at = outside(now, settings.quiet_hours, settings.tz)
    if any(due < other <= goes_at for other in wanted.values()):
        _close(row, SKIPPED, SUPERSEDED, now)
        return SKIPPED
    message = _compose(session, settings, row, now, opted_out)
    row.message = message
    _close(row, SENT, None, now)
    return message


def _current_rules(
    settings: Settings, row: Reminder, now: datetime
) -> tuple[str | None, dict[Key, datetime]]:
    """What the reminder's booking or dossier calls for now: (why none, or None; due times)."""
    if row.booking is not None:
        blocker = booking_blocker(row.booking)
        if blocker is None and appointment_of(row.booking) <= now:
            blocker = PAST
        return blocker, {} if blocker else booking_schedule(settings, row.booking)
    if row.dossier is not None:
        blocker = dossier_blocker(row.dossier)
        return blocker, {} if blocker else dossier_schedule(settings, row.dossier)
    return NOT_DUE, {}


def _compose(
    session: Session, settings: Settings, row: Reminder, now: datetime, opted_out: bool
) -> Message:
    common: dict[str, Any] = {
        "template": f"reminder_{row.kind}",
        "urgent": False,
        "essential": False,
        "kind": "reminder",
        "now": now,
        "opted_out": opted_out,
    }
    if row.booking is not None:
        booking = row.booking
        local = appointment_of(booking).astimezone(settings.tz)
        return outbox.compose(
            session,
            settings,
            phone=booking.phone,
            personalisation={
                "date": f"{local:%d/%m}",
                "time": f"{local:%H:%M}",
                "location": booking.session.location,
                "booking_code": booking.code,
            },
            booking_id=booking.id,
            **common,
        )
    dossier = row.dossier
    assert dossier is not None
    return outbox.compose(
        session,
        settings,
        phone=dossier.phone or "",
        personalisation={
            "code": dossier.code,
            "procedure": dossier.procedure,
            "ready_date": _local_day(settings, ready_since(dossier)).isoformat(),
        },
        language=dossier.language,
        dossier_id=dossier.id,
        **common,
    )


def _local_day(settings: Settings, moment: datetime) -> date:
    return moment.astimezone(settings.tz).date()


# -- listing -----------------------------------------------------------------------------------


def upcoming(
    session: Session, *, limit: int = 100, where: ColumnElement[bool] | None = None
) -> Sequence[Reminder]:
    """Scheduled reminders, soonest first (with their booking or dossier loaded)."""
    query = select(Reminder).where(Reminder.state == SCHEDULED)
    if where is not None:
        query = query.where(where)
    return session.scalars(
        query.order_by(Reminder.due_at, Reminder.id)
        .limit(limit)
        .options(selectinload(Reminder.booking), selectinload(Reminder.dossier))
    ).all()
