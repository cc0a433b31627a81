"""GET /api/v1/inbound-messages: what citizens texted and what they were answered."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue

from notifier.inbound import conversation
from notifier.schemas.inbound import InboundList, InboundOut, InboundQuery
from notifier.web import services
from notifier.web.apidoc import documented, reply
from notifier.web.auth import require_api_key
from notifier.web.inputs import query_args

bp = Blueprint("inbound_api", __name__, url_prefix="/api/v1")
bp.before_request(require_api_key)


@bp.get("/inbound-messages")
@documented(
    "listInboundMessages",
    tag="inbound",
    query=InboundQuery,
    responses={200: reply("One page.", InboundList)},
    problems=(400, 401, 429),
    bearer=True,
)
def list_inbound() -> ResponseReturnValue:
    """Texts citizens sent, what was understood and answered, newest first (phones masked)."""
    query = query_args(InboundQuery)
    tz = services().settings.tz
    with services().db.session() as session:
        found = conversation.recent(
            session, limit=query.limit, before_id=query.before_id, phone=query.phone
        )
    page = InboundList(
        messages=[
            InboundOut(**{**asdict(view), "received_at": view.received_at.astimezone(tz)})
            for view in found
        ],
        next_before_id=found[-1].id if len(found) == query.limit else None,
    )
    return Response(page.model_dump_json(), mimetype="application/json")
