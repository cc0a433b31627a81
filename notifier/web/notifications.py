"""The notifications API for other systems: send one SMS, follow it, list them, send in bulk.

Every route needs a bearer API key (`web.auth`), which also applies the key's rate limit. The
contracts are `schemas.notifications`; single sends are `api.notifications`, bulk sends
`api.batches`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from uuid import UUID

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ValidationError

from notifier.api import batches
from notifier.api import notifications as notes
from notifier.schemas.notifications import (
    BatchOut,
    BulkIn,
    Notification,
    NotificationCreated,
    NotificationIn,
    NotificationPage,
    NotificationQuery,
)
from notifier.schemas.openapi import Reply
from notifier.web import jsonbody, services
from notifier.web.apidoc import documented, reply
from notifier.web.auth import current_api_key, require_api_key
from notifier.web.problems import ApiProblem, invalid_request

bp = Blueprint("notifications", __name__, url_prefix="/api/v1")
bp.before_request(require_api_key)

document = partial(documented, tag="notifications", bearer=True)
SEND_PROBLEMS = (400, 401, 409, 413, 415, 429)


def _made_or_first(
    code: int, made: str, first: str, model: type[BaseModel], location: str
) -> dict[int, Reply]:
    """A send's replies: `code` when it is made, 200 and `first` for a repeated `reference`."""
    return {
        code: reply(made, model, location=location),
        200: reply(f"The `reference` was used before: {first}.", model, location=location),
    }


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
@document(
    "createNotification",
    body=NotificationIn,
    responses=_made_or_first(
        201,
        "Created and queued (or `rejected`, e.g. the number opted out).",
        "the first message",
        NotificationCreated,
        "The notification's URL.",
    ),
    problems=SEND_PROBLEMS,
)
def create() -> ResponseReturnValue:
    """Send one SMS.

    From a template and its personalisation, or from free text. A repeated `reference` returns
    the first message (200) instead of sending again.
    """
    wanted = jsonbody.read(NotificationIn)
    with domain_errors():
        created = notes.send(services(), current_api_key(), wanted)
    location = url_for(".get_one", message_id=created.message.id)
    return json_response(
        NotificationCreated.of(created.message, created.duplicate),
        200 if created.duplicate else 201,
        Location=location,
    )


@bp.get("/notifications/<uuid:message_id>")
@document(
    "getNotification",
    responses={200: reply("The notification (phone masked).", Notification)},
    problems=(401, 404, 429),
)
def get_one(message_id: UUID) -> ResponseReturnValue:
    """A notification's status and history."""
    with services().db.session() as session:
        message = notes.get(session, current_api_key().id, str(message_id))
        if message is None:
            raise ApiProblem(404, "Not Found", "This API key has no notification with this id.")
        return json_response(Notification.of(message))


@bp.get("/notifications")
@document(
    "listNotifications",
    query=NotificationQuery,
    responses={200: reply("One page.", NotificationPage)},
    problems=(400, 401, 429),
)
def list_all() -> ResponseReturnValue:
    """The key's notifications, newest first.

    Keyset pagination: pass `next_cursor` back as `cursor` for the next page.
    """
    try:
        query = NotificationQuery.model_validate_strings(request.args.to_dict())
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
            NotificationPage(
                notifications=[Notification.of(message) for message in page],
                next_cursor=next_cursor,
            )
        )


@bp.post("/notifications/bulk")
@document(
    "createBulk",
    body=BulkIn,
    responses=_made_or_first(
        202,
        "Accepted: messages are being created.",
        "the first bulk send",
        BatchOut,
        "The bulk send's progress URL.",
    ),
    problems=SEND_PROBLEMS,
)
def create_bulk() -> ResponseReturnValue:
    """Send to up to 10,000 recipients.

    Every recipient is checked first; the valid ones are queued in chunks by a worker and the
    others listed in `errors` with their row number (1 = first recipient). Body up to 8 MiB.
    When no recipient is valid: 400.
    """
    # Only this route takes large bodies: 10,000 recipients do not fit the app's 64 KiB.
    request.max_content_length = services().settings.API_BULK_MAX_BYTES
    wanted = jsonbody.read(BulkIn)
    with domain_errors():
        submitted = batches.submit_bulk(services(), current_api_key(), wanted)
    with services().db.session() as session:
        out = batches.batch_out(session, submitted.batch, submitted.duplicate)
    return json_response(
        out,
        200 if submitted.duplicate else 202,
        Location=url_for(".get_bulk", batch_id=submitted.batch.id),
    )


@bp.get("/notifications/bulk/<uuid:batch_id>")
@document(
    "getBulk",
    responses={200: reply("Progress.", BatchOut)},
    problems=(401, 404, 429),
)
def get_bulk(batch_id: UUID) -> ResponseReturnValue:
    """A bulk send's progress."""
    with services().db.session() as session:
        batch = batches.get_batch(session, current_api_key().id, str(batch_id))
        if batch is None:
            raise ApiProblem(404, "Not Found", "This API key has no bulk send with this id.")
        return json_response(batches.batch_out(session, batch))
