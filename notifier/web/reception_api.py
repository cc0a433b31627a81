"""The reception schedule API (`/api/v1/reception/…`), bearer API keys, over `notifier.reception`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
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
from notifier.schemas.openapi import Param, Reply
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
from notifier.web.apidoc import PROBLEM, View, documented, reply
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


# How the operations are documented (`web.apidoc`): every one needs a key.
document = partial(documented, tag="reception", bearer=True)
SESSION_ID = Param("session_id", "path", {"type": "integer", "minimum": 1})
BOOKING_CODE = Param("code", "path", {"type": "string", "minLength": 1, "maxLength": 16})
STATE_CONFLICT = Reply(
    "Not possible in the session's or booking's state (full, started, cancelled…).", PROBLEM
)


def _reads(operation_id: str, found: Reply, key: Param) -> Callable[[View], View]:
    """Reading one session or booking: 404 when there is no such thing."""
    return document(operation_id, params=(key,), responses={200: found}, problems=(401, 404, 429))


def _changes(
    operation_id: str,
    body: type[BaseModel],
    done: Mapping[int, Reply],
    key: Param = SESSION_ID,
) -> Callable[[View], View]:
    """Changing a session or booking: 409 when its state does not allow it."""
    return document(
        operation_id,
        params=(key,),
        body=body,
        responses={**done, 409: STATE_CONFLICT},
        problems=(400, 401, 404, 413, 415, 429),
    )


def reception() -> Reception:
    return Reception(services())


@bp.errorhandler(ReceptionError)
def _refused(exc: ReceptionError) -> Response:
    errors = [{"field": exc.field, "message": str(exc)}] if exc.field else []
    return problem(_HTTP[exc.kind], _TITLES[exc.kind], str(exc), errors)


@bp.post("/sessions")
@document(
    "createReceptionSession",
    body=SessionCreate,
    responses={201: reply("Created.", SessionOut, location="The session's URL.")},
    problems=(400, 401, 413, 415, 429),
)
def create_session() -> ResponseReturnValue:
    """Publish a citizen-reception session.

    It gets the smallest public `number` no other open, unfinished session uses.
    """
    body = jsonbody.read(SessionCreate)
    created = reception().create_session(**body.model_dump())
    response = _json(SessionOut.of(created, _tz()), 201)
    response.headers["Location"] = f"{request.script_root}{bp.url_prefix}/sessions/{created.id}"
    return response


@bp.get("/sessions")
@document(
    "listReceptionSessions",
    query=SessionsQuery,
    responses={200: reply("Sessions.", SessionList)},
    problems=(400, 401, 429),
)
def list_sessions() -> ResponseReturnValue:
    """Sessions: the upcoming open ones (`upcoming=true`), or all, latest first."""
    query = query_args(SessionsQuery)
    desk = reception()
    found = (
        desk.upcoming(limit=query.limit)
        if query.upcoming
        else desk.sessions(limit=query.limit, offset=query.offset)
    )
    return _json(SessionList(sessions=[SessionOut.of(info, _tz()) for info in found]))


@bp.get("/sessions/<int:session_id>")
@_reads("getReceptionSession", reply("The session.", SessionOut), SESSION_ID)
def get_session(session_id: int) -> ResponseReturnValue:
    """One session."""
    return _json(SessionOut.of(reception().session(session_id), _tz()))


@bp.patch("/sessions/<int:session_id>")
@_changes("updateReceptionSession", SessionUpdate, {200: reply("The session.", SessionOut)})
def update_session(session_id: int) -> ResponseReturnValue:
    """Change a session's host or number of places."""
    body = jsonbody.read(SessionUpdate)
    change = reception().update_session(session_id, **body.model_dump(exclude_none=True))
    return _json(SessionOut.of(change.session, _tz()))


@bp.get("/sessions/<int:session_id>/bookings")
@_reads("listSessionBookings", reply("The session and its bookings.", SessionBookings), SESSION_ID)
def session_bookings(session_id: int) -> ResponseReturnValue:
    """A session's bookings, in expected-time order (phones masked)."""
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
@_changes(
    "bookReceptionSession",
    BookingCreate,
    {
        201: reply("Booked.", BookResult),
        200: reply("This phone was booked already: its booking.", BookResult),
    },
)
def book(session_id: int) -> ResponseReturnValue:
    """Book a place for a citizen.

    One booking per phone per session: booking again returns the first (200).
    """
    body = jsonbody.read(BookingCreate)
    outcome = reception().book(session_id=session_id, channel="api", **body.model_dump())
    if not outcome.ok:
        status, title, detail = _BOOK_REFUSALS[outcome.status]
        raise ApiProblem(status, title, detail)
    booked = outcome.status is BookStatus.BOOKED
    return _json(BookResult.of(outcome, _tz()), 201 if booked else 200)


@bp.post("/sessions/<int:session_id>/cancel")
@_changes(
    "cancelReceptionSession",
    SessionCancel,
    {200: reply("Cancelled (`changed` false: it already was).", SessionChangeOut)},
)
def cancel_session(session_id: int) -> ResponseReturnValue:
    """Cancel a session; every booked citizen gets an SMS with the reason."""
    body = jsonbody.read(SessionCancel)
    change = reception().cancel_session(session_id, body.reason)
    return _json(SessionChangeOut.of(change, _tz()))


@bp.post("/sessions/<int:session_id>/move")
@_changes(
    "moveReceptionSession",
    SessionMove,
    {200: reply("Moved (`changed` false: nothing to change).", SessionChangeOut)},
)
def move_session(session_id: int) -> ResponseReturnValue:
    """Move a session (and its place); every booked citizen gets an SMS with the new time."""
    body = jsonbody.read(SessionMove)
    change = reception().move_session(session_id, **body.model_dump())
    return _json(SessionChangeOut.of(change, _tz()))


@bp.get("/bookings/<code>")
@_reads("getBooking", reply("The booking.", BookingOut), BOOKING_CODE)
def get_booking(code: str) -> ResponseReturnValue:
    """One booking by its code (phone masked)."""
    return _json(BookingOut.of(reception().booking(code), _tz()))


@bp.post("/bookings/<code>/state")
@_changes(
    "changeBookingState",
    BookingStateChange,
    {200: reply("The booking.", BookingOut)},
    BOOKING_CODE,
)
def change_booking_state(code: str) -> ResponseReturnValue:
    """Mark a booking attended or no-show, or cancel it (the citizen gets an SMS)."""
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
