"""POST /api/v1/dossier-events: the signed webhook of the one-stop-shop system."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from notifier import delivery, dossiers, signing
from notifier.models import Message
from notifier.web import guards, jsonbody, services
from notifier.web.problems import ApiProblem

log = logging.getLogger(__name__)
bp = Blueprint("dossier_events", __name__, url_prefix="/api/v1")

MAX_BODY_BYTES = 64 * 1024


@bp.post("/dossier-events")
def receive() -> ResponseReturnValue:
    body = guards.signed_body(
        signing.NOTIFIER,
        services().settings.DOSSIER_WEBHOOK_SECRET,
        "dossier webhook",
        MAX_BODY_BYTES,
    )
    guards.require_mimetype("application/json")
    payload = jsonbody.parse_object(body)
    event = jsonbody.validate(dossiers.DossierEventIn, body)
    digest = dossiers.payload_hash(payload)
    result = _ingest(event, digest)
    if result.conflict:
        raise ApiProblem(
            409,
            "Conflict",
            f"event_id {event.event_id!r} was already received with a different body.",
        )
    if not result.duplicate:
        delivery.enqueue_committed(services(), result.messages)
    return (
        jsonify(
            event_id=result.event_id,
            duplicate=result.duplicate,
            messages=[_summary(m) for m in result.messages],
        ),
        200 if result.duplicate else 202,
    )


def _ingest(event: dossiers.DossierEventIn, digest: str) -> dossiers.IngestResult:
    db = services().db
    retried = False
    while True:
        try:
            with db.transaction() as session:
                return dossiers.ingest(session, services().settings, event, digest)
        except IntegrityError:
            # Another request won a race on a unique index. The same event delivered twice at
            # once: answer as a replay. Another event of the same new dossier created it
            # meanwhile: a second try finds and updates it.
            with db.session() as session:
                found = dossiers.find_existing(session, event.event_id, digest)
            if found is not None:
                return found
            if retried:
                raise
            retried = True


def _summary(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status,
        "template": message.template,
        "segments": message.segments,
        "encoding": message.encoding,
        "failure_reason": message.failure_reason,
    }
