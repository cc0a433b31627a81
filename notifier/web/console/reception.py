"""Reception schedule pages: sessions, their bookings, the day's printable list; the simulator.

Changes go through `notifier.reception` (its rules, its notices to booked citizens), inside one
transaction with the audit entry; the notices are enqueued after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from flask import abort, request
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from notifier import reception as schedule
from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.inbound import conversation
from notifier.messaging import delivery
from notifier.messaging import search as outbox_search
from notifier.text import phones
from notifier.web import services
from notifier.web.console.base import audit_action, back, bp, render, requires
from notifier.web.console.pages import parse_day, today

SESSIONS_LISTED = 200


@bp.get("/reception")
def reception() -> ResponseReturnValue:
    return _reception_page()


def _reception_page(status: int = 200, error: str | None = None) -> ResponseReturnValue:
    show_past = request.args.get("past") == "1"
    with services().db.session() as db:
        if show_past:
            sessions = schedule.finished_sessions(db, limit=SESSIONS_LISTED)
        else:
            sessions = schedule.unfinished_sessions(db, limit=SESSIONS_LISTED)
    return render(
        "reception.html",
        status,
        sessions=sessions,
        show_past=show_past,
        error=error,
        form=request.form if request.method == "POST" else {},
    )


@bp.get("/reception/sessions/<int:session_id>")
def reception_session(session_id: int) -> ResponseReturnValue:
    return _session_page(session_id)


def _session_page(
    session_id: int, status: int = 200, error: str | None = None
) -> ResponseReturnValue:
    try:
        with services().db.session() as db:
            found, bookings = schedule.session_with_bookings(db, session_id, by_place=True)
    except schedule.ReceptionError:
        abort(404)
    return render(
        "reception_session.html",
        status,
        session=found,
        bookings=bookings,
        error=error,
        changeable=found.status == schedule.OPEN and found.ends_at > utcnow(),
        local_day=found.starts_at.astimezone(services().settings.tz),
    )


@bp.get("/reception/day")
def reception_day() -> ResponseReturnValue:
    """Every booking of one local day, in order, for printing."""
    day = parse_day(request.args.get("date")) or today()
    svc = services()
    with svc.db.session() as db:
        rows = schedule.day_bookings(db, svc.settings, day)
    return render("reception_day.html", day=day, rows=rows)


# --- the phone simulator (console provider only) ----------------------------------------------


def simulator_enabled() -> None:
    if services().settings.SMS_PROVIDER != "console":
        abort(404)


@bp.get("/simulator")
def simulator() -> ResponseReturnValue:
    """Every phone messages went to (the console provider sends nothing), and one conversation."""
    simulator_enabled()
    selected = _as_e164(request.args.get("phone", "").strip()[:64])
    with services().db.session() as db:
        numbers = outbox_search.phones_texted(db)
        bubbles = outbox_search.conversation(db, selected) if selected else []
    return render("simulator.html", numbers=numbers, selected=selected, bubbles=bubbles)


# --- running the schedule (officers) ----------------------------------------------------------


def _local_moment(day: str, clock: str) -> datetime:
    """A local date and time from a form, as an aware datetime. Raises ValueError."""
    return datetime.combine(
        date.fromisoformat(day.strip()), time.fromisoformat(clock.strip()), services().settings.tz
    )


def _int_field(name: str, required: bool = True) -> int | None:
    raw = request.form.get(name, "").strip()[:9]
    if not raw and not required:
        return None
    return int(raw)


def _schedule_error(exc: Exception) -> str:
    if isinstance(exc, schedule.ReceptionError):
        return f"{exc.field}: {exc}" if exc.field else str(exc)
    return "Ngày giờ hoặc số không hợp lệ / Invalid date, time or number"


@bp.post("/reception/sessions")
@requires("schedule")
def session_create() -> ResponseReturnValue:
    form = request.form
    svc = services()
    try:
        starts_at = _local_moment(form.get("date", ""), form.get("starts", ""))
        ends_at = _local_moment(form.get("date", ""), form.get("ends", ""))
        capacity = _int_field("capacity")
        slot_minutes = _int_field("slot_minutes", required=False)
        with svc.db.transaction() as db:
            row = schedule.create_session(
                db,
                svc.settings,
                starts_at=starts_at,
                ends_at=ends_at,
                host=form.get("host", ""),
                location=form.get("location", ""),
                capacity=capacity or 0,
                slot_minutes=slot_minutes,
            )
            audit_action(db, "session_created", f"session:{row.id}", {"number": row.number})
            session_id = row.id
    except (ValueError, schedule.ReceptionError) as exc:
        return _reception_page(400, error=_schedule_error(exc))
    return back("console.reception_session", session_id=session_id)


def _session_change(
    session_id: int,
    action: str,
    change: Callable[[Session, Settings], Any],
    target: str | None = None,
) -> ResponseReturnValue:
    """Apply a schedule change and audit it in one transaction; then send its notices."""
    svc = services()
    try:
        with svc.db.transaction() as db:
            result = change(db, svc.settings)
            notices = list(getattr(result, "notices", None) or [])
            audit_action(db, action, target or f"session:{session_id}", {"notified": len(notices)})
    except schedule.ReceptionError as exc:
        if exc.kind == "not_found":
            abort(404)
        return _session_page(
            session_id, 409 if exc.kind == "conflict" else 400, error=_schedule_error(exc)
        )
    except ValueError as exc:
        return _session_page(session_id, 400, error=_schedule_error(exc))
    delivery.enqueue_committed(svc, notices)
    return back("console.reception_session", session_id=session_id)


@bp.post("/reception/sessions/<int:session_id>/cancel")
@requires("schedule")
def session_cancel(session_id: int) -> ResponseReturnValue:
    reason = request.form.get("reason", "")
    return _session_change(
        session_id,
        "session_cancelled",
        lambda db, cfg: schedule.cancel_session(db, cfg, session_id, reason=reason),
    )


@bp.post("/reception/sessions/<int:session_id>/move")
@requires("schedule")
def session_move(session_id: int) -> ResponseReturnValue:
    form = request.form

    def move(db: Session, cfg: Settings) -> Any:
        return schedule.move_session(
            db,
            cfg,
            session_id,
            starts_at=_local_moment(form.get("date", ""), form.get("starts", "")),
            ends_at=_local_moment(form.get("date", ""), form.get("ends", "")),
            location=form.get("location") or None,
        )

    return _session_change(session_id, "session_moved", move)


@bp.post("/reception/sessions/<int:session_id>/edit")
@requires("schedule")
def session_edit(session_id: int) -> ResponseReturnValue:
    form = request.form

    def edit(db: Session, cfg: Settings) -> Any:
        return schedule.update_session(
            db,
            cfg,
            session_id,
            host=form.get("host") or None,
            capacity=_int_field("capacity", required=False),
        )

    return _session_change(session_id, "session_edited", edit)


@bp.post("/reception/sessions/<int:session_id>/bookings/<code>")
@requires("schedule")
def booking_state(session_id: int, code: str) -> ResponseReturnValue:
    state = request.form.get("state", "")[:16]
    return _session_change(
        session_id,
        "booking_state",
        lambda db, cfg: schedule.set_booking_state(db, cfg, code[:16], state),
        target=f"booking:{code[:16]}:{state}",
    )


@bp.post("/simulator/reply")
@requires("send")
def simulator_reply() -> ResponseReturnValue:
    """Text the service as a citizen would, through the console channel."""
    simulator_enabled()
    phone = request.form.get("phone", "").strip()[:64]
    text = request.form.get("text", "")[: conversation.MAX_TEXT]
    if phone and text.strip():
        svc = services()
        conversation.handle(svc, conversation.InboundSms(channel="console", phone=phone, text=text))
        with svc.db.transaction() as db:
            audit_action(db, "simulator_reply", phones.mask(phone))
    return back("console.simulator", phone=_as_e164(phone))


def _as_e164(raw: str) -> str:
    try:
        return phones.normalize(raw) if raw else raw
    except phones.InvalidPhoneNumber:
        return raw
