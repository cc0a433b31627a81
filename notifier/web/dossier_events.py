"""POST /api/v1/dossier-events: the signed webhook of the one-stop-shop system."""

from __future__ import annotations

import logging
from typing import Any, cast

from flask import Blueprint, Flask, current_app, jsonify
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from notifier.core import signing
from notifier.core.combining import Combiner
from notifier.dossiers import ingest
from notifier.models import Message
from notifier.web import guards, jsonbody, services, services_of
from notifier.web.problems import ApiProblem

log = logging.getLogger(__name__)
bp = Blueprint("dossier_events", __name__, url_prefix="/api/v1")

MAX_BODY_BYTES = 64 * 1024


# Events that arrive together are written together (one transaction, one job).
MAX_EVENTS_PER_WRITE = 100


@bp.record_once
def _set_up(state: BlueprintSetupState) -> None:
    app = cast(Flask, state.app)
    app.extensions["dossier_events"] = Combiner(
        lambda batch: ingest.record(services_of(app), batch), MAX_EVENTS_PER_WRITE
    )


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
    event = jsonbody.validate(ingest.DossierEventIn, body)
    combiner: Combiner[ingest.Received, ingest.IngestResult]
    combiner = current_app.extensions["dossier_events"]
    result = combiner.submit((event, ingest.payload_hash(payload)))
    if result.conflict:
        raise ApiProblem(
            409,
            "Conflict",
            f"event_id {event.event_id!r} was already received with a different body.",
        )
    return (
        jsonify(
            event_id=result.event_id,
            duplicate=result.duplicate,
            messages=[_summary(m) for m in result.messages],
        ),
        200 if result.duplicate else 202,
    )


def _summary(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status,
        "template": message.template,
        "segments": message.segments,
        "encoding": message.encoding,
        "failure_reason": message.failure_reason,
    }
