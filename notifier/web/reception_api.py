"""The reception schedule API (`/api/v1/reception/…`), bearer API keys, over `notifier.reception`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from notifier.reception import (
    BookStatus,
    CancelStatus,
    Reception,
    ReceptionError,
)
from notifier.schemas.reception import (
    BookingCreate,
    BookingOut,
    BookingStateChange,
    BookResult,
    SessionBookings,
    SessionCancel,
    SessionChangeOut,
    SessionCreate,
    SessionList,
    SessionMove,
    SessionOut,
    SessionsQuery,
    SessionUpdate,
)
from notifier.web import jsonbody, services
from notifier.web.auth import require_api_key
from notifier.web.inputs import query_args
from notifier.web.problems import ApiProblem, problem

bp = Blueprint("reception_api", __name__, url_prefix="/api/v1/reception")
bp.before_request(require_api_key)

_HTTP = {"invalid": 400, "not_found": 404, "conflict": 409}
_TITLES = {"invalid": "Invalid request", "not_found": "Not Found", "conflict": "Conflict"}
_BOOK_REFUSALS = {
    BookStatus.FULL: (409, "Session full", "Every place of this session is booked."),
    BookStatus.PAST: (409, "Session started", "The session has started or taken place."),
    BookStatus.CANCELLED: (409, "Session cancelled", "The session is cancelled."),
    BookStatus.UNKNOWN: (404, "Not Found", "No such reception session."),
}


def reception() -> Reception:
    return Reception(services())


@bp.errorhandler(ReceptionError)
def _refused(exc: ReceptionError) -> Response:
    errors = [{"field": exc.field, "message": str(exc)}] if exc.field else []
    return problem(_HTTP[exc.kind], _TITLES[exc.kind], str(exc), errors)


@bp.post("/sessions")
def create_session() -> ResponseReturnValue:
    body = jsonbody.read(SessionCreate)
    created = reception().create_session(**body.model_dump())
    response = _json(SessionOut.of(created, _tz()), 201)
    response.headers["Location"] = f"{request.script_root}{bp.url_prefix}/sessions/{created.id}"
    return response


@bp.get("/sessions")
def list_sessions() -> ResponseReturnValue:
    query = query_args(SessionsQuery)
    desk = reception()
    found = (
        desk.upcoming(limit=query.limit)
        if query.upcoming
        else desk.sessions(limit=query.limit, offset=query.offset)
    )
    return _json(SessionList(sessions=[SessionOut.of(info, _tz()) for info in found]))


@bp.get("/sessions/<int:session_id>")
def get_session(session_id: int) -> ResponseReturnValue:
    return _json(SessionOut.of(reception().session(session_id), _tz()))


@bp.patch("/sessions/<int:session_id>")
def update_session(session_id: int) -> ResponseReturnValue:
    body = jsonbody.read(SessionUpdate)
    change = reception().update_session(session_id, **body.model_dump(exclude_none=True))
    return _json(SessionOut.of(change.session, _tz()))


@bp.get("/sessions/<int:session_id>/bookings")
def session_bookings(session_id: int) -> ResponseReturnValue:
    desk = reception()
    session = desk.session(session_id)
    bookings = desk.bookings(session_id)
    return _json(
        SessionBookings(
            session=SessionOut.of(session, _tz()),
            bookings=[BookingOut.of(booking, _tz()) for booking in bookings],
        )
    )


@bp.post("/sessions/<int:session_id>/bookings")
def book(session_id: int) -> ResponseReturnValue:
    body = jsonbody.read(BookingCreate)
    outcome = reception().book(session_id=session_id, channel="api", **body.model_dump())
    if not outcome.ok:
        status, title, detail = _BOOK_REFUSALS[outcome.status]
        raise ApiProblem(status, title, detail)
    booked = outcome.status is BookStatus.BOOKED
    return _json(BookResult.of(outcome, _tz()), 201 if booked else 200)


@bp.post("/sessions/<int:session_id>/cancel")
def cancel_session(session_id: int) -> ResponseReturnValue:
    body = jsonbody.read(SessionCancel)
    change = reception().cancel_session(session_id, body.reason)
    return _json(SessionChangeOut.of(change, _tz()))


@bp.post("/sessions/<int:session_id>/move")
def move_session(session_id: int) -> ResponseReturnValue:
    body = jsonbody.read(SessionMove)
    change = reception().move_session(session_id, **body.model_dump())
    return _json(SessionChangeOut.of(change, _tz()))


@bp.get("/bookings/<code>")
def get_booking(code: str) -> ResponseReturnValue:
    return _json(BookingOut.of(reception().booking(code), _tz()))


@bp.post("/bookings/<code>/state")
def change_booking_state(code: str) -> ResponseReturnValue:
    body = jsonbody.read(BookingStateChange)
    desk = reception()
    if body.state != "cancelled":
        return _json(BookingOut.of(desk.set_booking_state(code, body.state), _tz()))
    outcome = desk.cancel_by_code(code)
    if outcome.status is CancelStatus.PAST:
        raise ApiProblem(409, "Conflict", "The session has started or taken place.")
    assert outcome.booking is not None
    return _json(BookingOut.of(outcome.booking, _tz()))


def _json(model: BaseModel, status: int = 200) -> Response:
    return Response(model.model_dump_json(), status=status, mimetype="application/json")


def _tz() -> ZoneInfo:
    return services().settings.tz
