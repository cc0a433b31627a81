"""The notifications API for other systems: send one SMS, follow it, list them, send in bulk.

Every route needs a bearer API key (`web.auth`), which also applies the key's rate limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError

from notifier.api import notifications as notes
from notifier.web import jsonbody, services
from notifier.web.auth import current_api_key, require_api_key
from notifier.web.problems import ApiProblem, invalid_request

bp = Blueprint("notifications", __name__, url_prefix="/api/v1")
bp.before_request(require_api_key)


def json_response(model: BaseModel, status: int = 200, **headers: str) -> Response:
    return Response(
        model.model_dump_json(), status=status, mimetype="application/json", headers=headers
    )


@contextmanager
def domain_errors() -> Iterator[None]:
    """Map the domain's refusals onto problem documents."""
    try:
        yield
    except notes.InvalidNotification as exc:
        raise ApiProblem(
            400, "Invalid request", "The notification cannot be sent as asked.", exc.errors
        ) from None
    except notes.ReferenceConflict as exc:
        raise ApiProblem(
            409,
            "Conflict",
            f"reference {exc.reference!r} was already used by this API key for {exc.existing_id}, "
            "with different content.",
            [{"field": "reference", "message": "already used with different content"}],
        ) from None
    except notes.DailyCapReached as exc:
        raise ApiProblem(
            429,
            "Too Many Requests",
            f"{exc}. The cap resets at midnight ({services().settings.TIMEZONE}).",
            headers={"Retry-After": str(exc.decision.retry_after)},
        ) from None


@bp.post("/notifications")
def create() -> ResponseReturnValue:
    wanted = jsonbody.read(notes.NotificationIn)
    with domain_errors():
        created = notes.send(services(), current_api_key(), wanted)
    location = url_for(".get_one", message_id=created.message.id)
    return json_response(
        notes.NotificationCreated.of(created.message, created.duplicate),
        200 if created.duplicate else 201,
        Location=location,
    )


@bp.get("/notifications/<uuid:message_id>")
def get_one(message_id: UUID) -> ResponseReturnValue:
    with services().db.session() as session:
        message = notes.get(session, current_api_key().id, str(message_id))
        if message is None:
            raise ApiProblem(404, "Not Found", "This API key has no notification with this id.")
        return json_response(notes.Notification.of(message))


@bp.get("/notifications")
def list_all() -> ResponseReturnValue:
    try:
        query = notes.NotificationQuery.model_validate_strings(request.args.to_dict())
    except ValidationError as exc:
        raise invalid_request(exc) from None
    with services().db.session() as session:
        try:
            page, next_cursor = notes.list_page(session, current_api_key().id, query)
        except notes.InvalidCursor as exc:
            raise ApiProblem(
                400, "Invalid request", str(exc), [{"field": "cursor", "message": str(exc)}]
            ) from None
        return json_response(
            notes.NotificationPage(
                notifications=[notes.Notification.of(message) for message in page],
                next_cursor=next_cursor,
            )
        )


@bp.post("/notifications/bulk")
def create_bulk() -> ResponseReturnValue:
    # Only this route takes large bodies: 10,000 recipients do not fit the app's 64 KiB.
    request.max_content_length = services().settings.API_BULK_MAX_BYTES
    wanted = jsonbody.read(notes.BulkIn)
    with domain_errors():
        submitted = notes.submit_bulk(services(), current_api_key(), wanted)
    with services().db.session() as session:
        out = notes.batch_out(session, submitted.batch, submitted.duplicate)
    return json_response(
        out,
        200 if submitted.duplicate else 202,
        Location=url_for(".get_bulk", batch_id=submitted.batch.id),
    )


@bp.get("/notifications/bulk/<uuid:batch_id>")
def get_bulk(batch_id: UUID) -> ResponseReturnValue:
    with services().db.session() as session:
        batch = notes.get_batch(session, current_api_key().id, str(batch_id))
        if batch is None:
            raise ApiProblem(404, "Not Found", "This API key has no bulk send with this id.")
        return json_response(notes.batch_out(session, batch))
