"""Reception schedule pages: sessions, their bookings, the day's printable list; the simulator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import abort, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from notifier.console import bp, render
from notifier.console.pages import day_start, parse_day, today
from notifier.db import utcnow
from notifier.models import Booking, InboundMessage, Message, ReceptionSession
from notifier.web import services


@bp.get("/reception")
def reception() -> ResponseReturnValue:
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
    return render("reception.html", sessions=sessions, show_past=show_past)


@bp.get("/reception/sessions/<int:session_id>")
def reception_session(session_id: int) -> ResponseReturnValue:
    with services().db.session() as db:
        found = db.get(ReceptionSession, session_id)
        if found is None:
            abort(404)
        bookings = db.scalars(
            select(Booking).where(Booking.session_id == session_id).order_by(Booking.slot_index)
        ).all()
    return render("reception_session.html", session=found, bookings=bookings)


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
    selected = request.args.get("phone", "").strip()[:64]
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
