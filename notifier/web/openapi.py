"""GET /api/v1/openapi.json, and the registry of every public operation it describes.

To document an endpoint, add one `Operation` to `OPERATIONS` (one section per concern). Only
operations the running app really serves are published, and `tests/test_openapi.py` fails when
a public route is missing from the registry.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from notifier.api import notifications as notes
from notifier.dossiers import ingest
from notifier.messaging import callbacks, failover
from notifier.schemas import android_gateway as gateway
from notifier.schemas import inbound as inbound_schemas
from notifier.schemas import openapi
from notifier.schemas import reception as desk
from notifier.schemas.openapi import Content, Operation, Param, Reply, Webhook
from notifier.schemas.ussd import UssdForm
from notifier.web import preview
from notifier.web.problems import PROBLEM_MIMETYPE, Problem

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

TITLE = "notifier: SMS notices of the commune's public administrative service centre"
VERSION = "1.0.0"
DESCRIPTION = (
    "Send SMS to citizens and follow them; receive dossier status events from the one-stop-shop "
    "system; run the citizen-reception schedule; provider webhooks, including citizens' SMS "
    "(docs/two-way-sms.md). Every error is `application/problem+json` with `type`, `title`, "
    "`status`, `detail` and `errors[]`. Guide with examples: docs/api.md."
)
BEARER = "bearerAuth"
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key made by `flask --app wsgi notifier create-api-key NAME`.",
    }
}

# Prefixes of the public (machine-facing) routes; the console's HTML pages are not in the API.
PUBLIC_PREFIXES = ("/api/", "/twilio/", "/gateways/", "/ussd", "/healthz", "/readyz")

# --- shared pieces -----------------------------------------------------------------------------

PROBLEM = Content(Problem, media_type=PROBLEM_MIMETYPE)
_INTEGER_SECONDS = {"type": "string", "pattern": "^[0-9]+$"}
_UUID = {"type": "string", "format": "uuid"}

_PROBLEMS: dict[int, Reply] = {
    400: Reply("The request is malformed or invalid; `errors` lists each bad field.", PROBLEM),
    401: Reply(
        "No valid credentials (missing, unknown or revoked key; bad signature).",
        PROBLEM,
        headers={"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    403: Reply("The request's signature does not match.", PROBLEM),
    404: Reply("Nothing with this id for this API key.", PROBLEM),
    409: Reply("The id or reference was already used with different content.", PROBLEM),
    413: Reply("The body is too large.", PROBLEM),
    415: Reply("The body is not of the expected media type.", PROBLEM),
    429: Reply(
        "Over a limit (the key's rate limit or daily cap, or too many failed authentications "
        "from this address); wait `Retry-After` seconds.",
        PROBLEM,
        headers={"Retry-After": {"required": True, "schema": _INTEGER_SECONDS}},
    ),
}


def problems(*codes: int) -> dict[int, Reply]:
    return {code: _PROBLEMS[code] for code in codes}


def _location(description: str) -> dict[str, dict[str, Any]]:
    return {"Location": {"description": description, "schema": {"type": "string"}}}


_SIGNATURE_HEADERS = (
    Param(
        "X-Notifier-Timestamp",
        "header",
        _INTEGER_SECONDS,
        description="Unix time in seconds; refused if more than 300 s from the server clock.",
    ),
    Param(
        "X-Notifier-Signature",
        "header",
        {"type": "string"},
        description='"v1=" + hex HMAC-SHA256(secret, "<timestamp>.<raw body>").',
    ),
)


# --- response shapes of endpoints that write their JSON by hand --------------------------------


class DossierMessageSummary(BaseModel):
    id: str
    status: notes.Status
    template: str | None
    segments: int
    encoding: str
    failure_reason: str | None


class DossierEventAccepted(BaseModel):
    event_id: str
    duplicate: bool
    messages: list[DossierMessageSummary]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


_TWILIO_STATUS_FORM = {
    "type": "object",
    "properties": {
        "MessageSid": {"type": "string"},
        "MessageStatus": {"type": "string"},
        "ErrorCode": {"type": "string"},
        "AccountSid": {"type": "string"},
    },
    "required": ["MessageSid", "MessageStatus"],
}

_TWILIO_INBOUND_FORM = {
    "type": "object",
    "properties": {
        "MessageSid": {"type": "string"},
        "From": {"type": "string"},
        "To": {"type": "string"},
        "Body": {"type": "string"},
        "AccountSid": {"type": "string"},
    },
    "required": ["MessageSid", "From"],
}
_TWIML = {"type": "string", "description": "<Response><Message>…</Message></Response>"}
_GATEWAY_SIGNATURE_HEADERS = (
    Param(
        "X-Timestamp",
        "header",
        _INTEGER_SECONDS,
        description="Unix time in seconds; refused if more than 300 s from the server clock.",
    ),
    Param(
        "X-Signature",
        "header",
        {"type": "string"},
        description="hex HMAC-SHA256(key, raw body followed by the X-Timestamp string).",
    ),
)
_RECEPTION = "reception"
_SESSION_ID = Param("session_id", "path", {"type": "integer", "minimum": 1})
_BOOKING_CODE = Param("code", "path", {"type": "string", "minLength": 1, "maxLength": 16})
_RECEPTION_REFUSALS: dict[int, Reply] = {
    **problems(400, 401, 404, 413, 415, 429),
    409: Reply(
        "Not possible in the session's or booking's state (full, started, cancelled…).", PROBLEM
    ),
}

# --- the registry ------------------------------------------------------------------------------

_NOTIFICATIONS = "notifications"

OPERATIONS: list[Operation] = [
    # Notifications API (notifier.web.notifications)
    Operation(
        "POST",
        "/api/v1/notifications",
        "createNotification",
        "Send one SMS",
        _NOTIFICATIONS,
        description=(
            "From a template and its personalisation, or from free text. A repeated `reference` "
            "returns the first message (200) instead of sending again."
        ),
        body=Content(notes.NotificationIn),
        responses={
            201: Reply(
                "Created and queued (or `rejected`, e.g. the number opted out).",
                Content(notes.NotificationCreated),
                headers=_location("The notification's URL."),
            ),
            200: Reply(
                "The `reference` was used before: the first message.",
                Content(notes.NotificationCreated),
                headers=_location("The notification's URL."),
            ),
            **problems(400, 401, 409, 413, 415, 429),
        },
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/notifications/{message_id}",
        "getNotification",
        "A notification's status and history",
        _NOTIFICATIONS,
        params=(Param("message_id", "path", _UUID),),
        responses={
            200: Reply("The notification (phone masked).", Content(notes.Notification)),
            **problems(401, 404, 429),
        },
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/notifications",
        "listNotifications",
        "The key's notifications, newest first",
        _NOTIFICATIONS,
        description="Keyset pagination: pass `next_cursor` back as `cursor` for the next page.",
        query=notes.NotificationQuery,
        responses={
            200: Reply("One page.", Content(notes.NotificationPage)),
            **problems(400, 401, 429),
        },
        security=(BEARER,),
    ),
    Operation(
        "POST",
        "/api/v1/notifications/bulk",
        "createBulk",
        "Send to up to 10,000 recipients",
        _NOTIFICATIONS,
        description=(
            "Every recipient is checked first; the valid ones are queued in chunks by a worker "
            "and the others listed in `errors` with their row number (1 = first recipient). "
            "Body up to 8 MiB. When no recipient is valid: 400."
        ),
        body=Content(notes.BulkIn),
        responses={
            202: Reply(
                "Accepted: messages are being created.",
                Content(notes.BatchOut),
                headers=_location("The bulk send's progress URL."),
            ),
            200: Reply(
                "The `reference` was used before: the first bulk send.",
                Content(notes.BatchOut),
                headers=_location("The bulk send's progress URL."),
            ),
            **problems(400, 401, 409, 413, 415, 429),
        },
        security=(BEARER,),
    ),
    Operation(
        "POST",
        "/api/v1/preview",
        "previewText",
        "A text as it would be sent: folded, encoding, segments, cost",
        _NOTIFICATIONS,
        description=(
            "A template and its personalisation, or a body (whose `{{ name }}` placeholders are "
            "filled from the personalisation). Nothing is sent. A text over the length limit is "
            "still previewed, with `within_limit: false`. The staff console calls it with its "
            "session cookie and an `X-CSRFToken` header instead of a key."
        ),
        body=Content(preview.PreviewIn),
        responses={
            200: Reply("The preview.", Content(preview.PreviewOut)),
            **problems(400, 401, 413, 415, 429),
        },
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/notifications/bulk/{batch_id}",
        "getBulk",
        "A bulk send's progress",
        _NOTIFICATIONS,
        params=(Param("batch_id", "path", _UUID),),
        responses={200: Reply("Progress.", Content(notes.BatchOut)), **problems(401, 404, 429)},
        security=(BEARER,),
    ),
    # Dossier webhook of the one-stop-shop system (notifier.web.dossier_events)
    Operation(
        "POST",
        "/api/v1/dossier-events",
        "receiveDossierEvent",
        "A dossier status change from the one-stop-shop system",
        "dossiers",
        description="Signed with DOSSIER_WEBHOOK_SECRET. Idempotent on `event_id`.",
        body=Content(ingest.DossierEventIn),
        params=_SIGNATURE_HEADERS,
        responses={
            202: Reply("Recorded; notices queued.", Content(DossierEventAccepted)),
            200: Reply("Already received: the same messages.", Content(DossierEventAccepted)),
            **problems(400, 401, 409, 413, 415, 429),
        },
    ),
    # Provider webhooks (notifier.web.twilio)
    Operation(
        "POST",
        "/twilio/status",
        "twilioStatusCallback",
        "Twilio delivery status callback",
        "providers",
        description="Checked with X-Twilio-Signature against PUBLIC_BASE_URL + path.",
        body=Content(schema=_TWILIO_STATUS_FORM, media_type="application/x-www-form-urlencoded"),
        params=(Param("X-Twilio-Signature", "header", {"type": "string"}),),
        responses={204: Reply("Recorded."), **problems(400, 403, 413, 415, 429)},
    ),
    Operation(
        "POST",
        "/twilio/inbound",
        "twilioInboundSms",
        "A citizen's SMS to a Twilio number",
        "providers",
        description=(
            "Checked with X-Twilio-Signature against PUBLIC_BASE_URL + path. The text is stored and "
            "acted on (SMS keywords, docs/two-way-sms.md); the reply is the TwiML answer itself."
        ),
        body=Content(schema=_TWILIO_INBOUND_FORM, media_type="application/x-www-form-urlencoded"),
        params=(Param("X-Twilio-Signature", "header", {"type": "string"}),),
        responses={
            200: Reply(
                "TwiML: the reply, or an empty <Response/>.",
                Content(schema=_TWIML, media_type="text/xml"),
            ),
            **problems(400, 403, 413, 415, 429),
        },
    ),
    # SMS Gateway for Android (notifier.web.android_gateway)
    Operation(
        "POST",
        "/gateways/android/events",
        "androidGatewayEvent",
        "An event of the commune's SMS Gateway for Android phone",
        "providers",
        description=(
            "`sms:received` (a citizen's text: stored, acted on, answered through the phone), "
            "`sms:sent`, `sms:delivered`, `sms:failed` (delivery of our messages); others are "
            "acknowledged and ignored. Signed with ANDROID_GATEWAY_WEBHOOK_KEY; the same event "
            "`id` is handled once."
        ),
        body=Content(gateway.GatewayEvent),
        params=_GATEWAY_SIGNATURE_HEADERS,
        responses={
            200: Reply(
                "Handled (or a repeat of a handled event).", Content(gateway.GatewayEventResult)
            ),
            **problems(400, 401, 413, 415, 429),
        },
    ),
    # Reception schedule (notifier.web.reception_api, over notifier.reception)
    Operation(
        "POST",
        "/api/v1/reception/sessions",
        "createReceptionSession",
        "Publish a citizen-reception session",
        _RECEPTION,
        description="It gets the smallest public `number` no other open, unfinished session uses.",
        body=Content(desk.SessionCreate),
        responses={
            201: Reply(
                "Created.", Content(desk.SessionOut), headers=_location("The session's URL.")
            ),
            **problems(400, 401, 413, 415, 429),
        },
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/reception/sessions",
        "listReceptionSessions",
        "Sessions: the upcoming open ones (`upcoming=true`), or all, latest first",
        _RECEPTION,
        query=desk.SessionsQuery,
        responses={200: Reply("Sessions.", Content(desk.SessionList)), **problems(400, 401, 429)},
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/reception/sessions/{session_id}",
        "getReceptionSession",
        "One session",
        _RECEPTION,
        params=(_SESSION_ID,),
        responses={200: Reply("The session.", Content(desk.SessionOut)), **problems(401, 404, 429)},
        security=(BEARER,),
    ),
    Operation(
        "PATCH",
        "/api/v1/reception/sessions/{session_id}",
        "updateReceptionSession",
        "Change a session's host or number of places",
        _RECEPTION,
        params=(_SESSION_ID,),
        body=Content(desk.SessionUpdate),
        responses={
            200: Reply("The session.", Content(desk.SessionOut)),
            **_RECEPTION_REFUSALS,
        },
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/reception/sessions/{session_id}/bookings",
        "listSessionBookings",
        "A session's bookings, in expected-time order (phones masked)",
        _RECEPTION,
        params=(_SESSION_ID,),
        responses={
            200: Reply("The session and its bookings.", Content(desk.SessionBookings)),
            **problems(401, 404, 429),
        },
        security=(BEARER,),
    ),
    Operation(
        "POST",
        "/api/v1/reception/sessions/{session_id}/bookings",
        "bookReceptionSession",
        "Book a place for a citizen",
        _RECEPTION,
        description="One booking per phone per session: booking again returns the first (200).",
        params=(_SESSION_ID,),
        body=Content(desk.BookingCreate),
        responses={
            201: Reply("Booked.", Content(desk.BookResult)),
            200: Reply("This phone was booked already: its booking.", Content(desk.BookResult)),
            **_RECEPTION_REFUSALS,
        },
        security=(BEARER,),
    ),
    Operation(
        "POST",
        "/api/v1/reception/sessions/{session_id}/cancel",
        "cancelReceptionSession",
        "Cancel a session; every booked citizen gets an SMS with the reason",
        _RECEPTION,
        params=(_SESSION_ID,),
        body=Content(desk.SessionCancel),
        responses={
            200: Reply(
                "Cancelled (`changed` false: it already was).", Content(desk.SessionChangeOut)
            ),
            **_RECEPTION_REFUSALS,
        },
        security=(BEARER,),
    ),
    Operation(
        "POST",
        "/api/v1/reception/sessions/{session_id}/move",
        "moveReceptionSession",
        "Move a session (and its place); every booked citizen gets an SMS with the new time",
        _RECEPTION,
        params=(_SESSION_ID,),
        body=Content(desk.SessionMove),
        responses={
            200: Reply(
                "Moved (`changed` false: nothing to change).", Content(desk.SessionChangeOut)
            ),
            **_RECEPTION_REFUSALS,
        },
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/reception/bookings/{code}",
        "getBooking",
        "One booking by its code (phone masked)",
        _RECEPTION,
        params=(_BOOKING_CODE,),
        responses={200: Reply("The booking.", Content(desk.BookingOut)), **problems(401, 404, 429)},
        security=(BEARER,),
    ),
    Operation(
        "POST",
        "/api/v1/reception/bookings/{code}/state",
        "changeBookingState",
        "Mark a booking attended or no-show, or cancel it (the citizen gets an SMS)",
        _RECEPTION,
        params=(_BOOKING_CODE,),
        body=Content(desk.BookingStateChange),
        responses={
            200: Reply("The booking.", Content(desk.BookingOut)),
            **_RECEPTION_REFUSALS,
        },
        security=(BEARER,),
    ),
    Operation(
        "GET",
        "/api/v1/inbound-messages",
        "listInboundMessages",
        "Texts citizens sent, what was understood and answered, newest first (phones masked)",
        "inbound",
        query=inbound_schemas.InboundQuery,
        responses={
            200: Reply("One page.", Content(inbound_schemas.InboundList)),
            **problems(400, 401, 429),
        },
        security=(BEARER,),
    ),
    # USSD menu (notifier.web.ussd)
    Operation(
        "POST",
        "/ussd",
        "ussdMenu",
        "One step of a citizen's USSD session",
        "ussd",
        description=(
            "Called by the USSD aggregator on every step, with the whole path of inputs in "
            "`text`. When USSD_SHARED_SECRET is set, it must come in `X-USSD-Secret` or in the "
            "`secret` query parameter. Menu tree: docs/ussd.md."
        ),
        body=Content(UssdForm, media_type="application/x-www-form-urlencoded"),
        params=(
            Param("X-USSD-Secret", "header", {"type": "string"}, required=False),
            Param("secret", "query", {"type": "string"}, required=False),
        ),
        responses={
            200: Reply(
                "The screen: `CON ` (wait for input) or `END ` (the session ends), then ASCII "
                "text; at most 182 characters.",
                Content(
                    schema={"type": "string", "maxLength": 182, "pattern": "^(CON|END) "},
                    media_type="text/plain",
                ),
            ),
            **problems(400, 403, 413, 415, 429),
        },
    ),
    # Operations (notifier.web.health)
    Operation(
        "GET",
        "/healthz",
        "healthz",
        "The process is up",
        "operations",
        responses={200: Reply("Up.", Content(Health))},
    ),
    Operation(
        "GET",
        "/readyz",
        "readyz",
        "The database and Redis answer",
        "operations",
        responses={
            200: Reply("Ready.", Content(Readiness)),
            503: Reply("Not ready: `checks` says what fails.", Content(Readiness)),
        },
    ),
    # Delivery (notifier.web.metrics; /metrics itself is Prometheus text, for the internal network)
    Operation(
        "GET",
        "/api/v1/delivery/status",
        "deliveryStatus",
        "Which provider sends now, the failover circuit and queue lengths",
        "operations",
        description="Every switch to the fallback provider and back, newest first.",
        responses={
            200: Reply("The delivery status.", Content(failover.DeliveryStatus)),
            **problems(401, 429),
        },
        security=(BEARER,),
    ),
    # This document
    Operation(
        "GET",
        "/api/v1/openapi.json",
        "openapi",
        "This OpenAPI document",
        "operations",
        responses={200: Reply("OpenAPI 3.1.", Content(schema={"type": "object"}))},
    ),
]

WEBHOOKS = [
    Webhook(
        "notificationStatus",
        "Sent to an API key's callback URL when one of its messages is final "
        "(delivered, failed, rejected); retried on errors, 5xx and 429 for 24 hours.",
        Content(callbacks.CallbackPayload),
        params=_SIGNATURE_HEADERS,
        responses={200: Reply("Any 2xx ends the retries.")},
    )
]


def served_routes(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, path shape) of every route the app serves."""
    return {
        (method, openapi.path_shape(rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }


def build_document(available: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The document of the registered operations (those in `available`, when given)."""
    return openapi.build(
        OPERATIONS,
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes=SECURITY_SCHEMES,
        webhooks=WEBHOOKS,
        available=available,
    )


def document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document: the operations it serves (built once per app)."""
    cached: dict[str, Any] | None = app.extensions.get("openapi_document")
    if cached is None:
        cached = build_document(served_routes(app))
        app.extensions["openapi_document"] = cached
    return cached


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    return jsonify(document(current_app._get_current_object()))  # type: ignore[attr-defined]
