"""Reception schedule pages: sessions, their bookings, the day's printable list; the simulator.

Changes go through `notifier.reception` (its rules, its notices to booked citizens), inside one
transaction with the audit entry; the notices are enqueued after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import abort, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.inbound import conversation
from notifier.messaging import delivery
from notifier.models import Booking, InboundMessage, Message, ReceptionSession
from notifier.reception import schedule as reception_domain
from notifier.text import phones
from notifier.web import services
from notifier.web.console import audit_action, back, bp, render, requires
from notifier.web.console.pages import day_start, parse_day, today


@bp.get("/reception")
def reception() -> ResponseReturnValue:
    return _reception_page()


def _reception_page(status: int = 200, error: str | None = None) -> ResponseReturnValue:
    show_past = request.args.get("past") == "1"
    now = utcnow()
    stmt = select(ReceptionSession)
    if show_past:
        stmt = stmt.where(ReceptionSession.ends_at < now).order_by(
            ReceptionSession.starts_at.desc()
        )
    else:
        stmt = stmt.where(ReceptionSession.ends_at >= now).order_by(ReceptionSession.starts_at)
    with services().db.session() as db:
        sessions = db.scalars(stmt.limit(200)).all()
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
    with services().db.session() as db:
        found = db.get(ReceptionSession, session_id)
        if found is None:
            abort(404)
        bookings = db.scalars(
            select(Booking).where(Booking.session_id == session_id).order_by(Booking.slot_index)
        ).all()
    return render(
        "reception_session.html",
        status,
        session=found,
        bookings=bookings,
        error=error,
        changeable=found.status == reception_domain.OPEN and found.ends_at > utcnow(),
        local_day=found.starts_at.astimezone(services().settings.tz),
    )


@bp.get("/reception/day")
def reception_day() -> ResponseReturnValue:
    """Every booking of one local day, in order, for printing."""
    day = parse_day(request.args.get("date")) or today()
    start = day_start(day)
    with services().db.session() as db:
        rows = db.execute(
            select(Booking, ReceptionSession)
            .join(ReceptionSession, Booking.session_id == ReceptionSession.id)
            .where(
                ReceptionSession.starts_at >= start,
                ReceptionSession.starts_at < start + timedelta(days=1),
                Booking.state != "cancelled",
            )
            .order_by(ReceptionSession.starts_at, Booking.slot_index)
        ).all()
    return render("reception_day.html", day=day, rows=rows)


# --- the phone simulator (console provider only) ----------------------------------------------


def simulator_enabled() -> None:
    if services().settings.SMS_PROVIDER != "console":
        abort(404)


@dataclass(frozen=True)
class Bubble:
    at: datetime
    incoming: bool  # from the citizen
    text: str
    status: str | None = None


@bp.get("/simulator")
def simulator() -> ResponseReturnValue:
    """Every phone messages went to (the console provider sends nothing), and one conversation."""
    simulator_enabled()
    selected = _as_e164(request.args.get("phone", "").strip()[:64])
    with services().db.session() as db:
        latest = func.max(Message.created_at).label("latest")
        numbers = db.execute(
            select(Message.phone, latest, func.count())
            .group_by(Message.phone)
            .order_by(latest.desc())
            .limit(100)
        ).all()
        bubbles: list[Bubble] = []
        if selected:
            sent = db.scalars(
                select(Message)
                .where(Message.phone == selected)
                .order_by(Message.created_at.desc())
                .limit(100)
            ).all()
            received = db.scalars(
                select(InboundMessage)
                .where(InboundMessage.phone == selected)
                .order_by(InboundMessage.received_at.desc())
                .limit(100)
            ).all()
            bubbles = sorted(
                [Bubble(m.created_at, False, m.body or "", m.status) for m in sent]
                + [Bubble(i.received_at, True, i.text or "") for i in received],
                key=lambda bubble: bubble.at,
            )
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
    if isinstance(exc, reception_domain.ReceptionError):
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
            row = reception_domain.create_session(
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
    except (ValueError, reception_domain.ReceptionError) as exc:
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
    except reception_domain.ReceptionError as exc:
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
        lambda db, cfg: reception_domain.cancel_session(db, cfg, session_id, reason=reason),
    )


@bp.post("/reception/sessions/<int:session_id>/move")
@requires("schedule")
def session_move(session_id: int) -> ResponseReturnValue:
    form = request.form

    def move(db: Session, cfg: Settings) -> Any:
        return reception_domain.move_session(
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
        return reception_domain.update_session(
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
        lambda db, cfg: reception_domain.set_booking_state(db, cfg, code[:16], state),
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
