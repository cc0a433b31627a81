"""GET /metrics (Prometheus) and GET /api/v1/delivery/status (providers, failover, queues)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from flask.typing import ResponseReturnValue

from notifier.messaging import failover
from notifier.schemas.operations import DeliveryStatus
from notifier.web import services
from notifier.web.apidoc import documented, reply
from notifier.web.auth import api_key_required
from notifier.web.problems import ApiProblem

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus_metrics() -> ResponseReturnValue:
    if not services().settings.METRICS_ENABLED:
        raise ApiProblem(404, "Not Found", "Metrics are switched off (METRICS_ENABLED).")
    from prometheus_client import CONTENT_TYPE_LATEST

    from notifier.reports import prometheus  # loaded by the first scrape only

    body = prometheus.render(services())
    return Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)


@bp.get("/api/v1/delivery/status")
@documented(
    "deliveryStatus",
    tag="operations",
    responses={200: reply("The delivery status.", DeliveryStatus)},
    problems=(401, 429),
    bearer=True,
)
@api_key_required
def delivery_status() -> ResponseReturnValue:
    """Which provider sends now, the failover circuit and queue lengths.

    Every switch to the fallback provider and back, newest first.
    """
    return jsonify(failover.provider_status(services()).model_dump())
