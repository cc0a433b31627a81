"""POST /api/v1/dossier-events: the signed webhook of the one-stop-shop system."""

from __future__ import annotations

import logging
from typing import cast

from flask import Blueprint, Flask, current_app, jsonify
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue

from notifier.core import signing
from notifier.core.combining import Combiner
from notifier.dossiers import ingest
from notifier.schemas.dossiers import (
    SIGNATURE_HEADERS,
    DossierEventAccepted,
    DossierEventIn,
    DossierMessageSummary,
)
from notifier.web import guards, jsonbody, services, services_of
from notifier.web.apidoc import documented, reply
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
@documented(
    "receiveDossierEvent",
    tag="dossiers",
    body=DossierEventIn,
    params=SIGNATURE_HEADERS,
    responses={
        202: reply("Recorded; notices queued.", DossierEventAccepted),
        200: reply("Already received: the same messages.", DossierEventAccepted),
    },
    problems=(400, 401, 409, 413, 415, 429),
)
def receive() -> ResponseReturnValue:
    """A dossier status change from the one-stop-shop system.

    Signed with DOSSIER_WEBHOOK_SECRET. Idempotent on `event_id`.
    """
    body = guards.signed_body(
        signing.NOTIFIER,
        services().settings.DOSSIER_WEBHOOK_SECRET,
        "dossier webhook",
        MAX_BODY_BYTES,
    )
    guards.require_mimetype("application/json")
    payload = jsonbody.parse_object(body)
    event = jsonbody.validate(DossierEventIn, body)
    combiner: Combiner[ingest.Received, ingest.IngestResult]
    combiner = current_app.extensions["dossier_events"]
    result = combiner.submit((event, ingest.payload_hash(payload)))
    if result.conflict:
        raise ApiProblem(
            409,
            "Conflict",
            f"event_id {event.event_id!r} was already received with a different body.",
        )
    accepted = DossierEventAccepted(
        event_id=result.event_id,
        duplicate=result.duplicate,
        messages=[DossierMessageSummary.of(message) for message in result.messages],
    )
    return jsonify(accepted.model_dump(mode="json")), 200 if result.duplicate else 202
