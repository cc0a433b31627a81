"""Reception schedule pages: sessions, their bookings, the day's printable list; the simulator."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from notifier.console import bp, render
from notifier.console.pages import day_start, parse_day, today
from notifier.db import utcnow
from notifier.models import Booking, ReceptionSession
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
