"""Helpers shared by tests: signing webhooks, running jobs, building events."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from rq.worker import SimpleWorker
from werkzeug.test import TestResponse

from notifier.core import signing
from notifier.core.runtime import Services

WEBHOOK_SECRET = "test-webhook-secret"


def run_jobs(services: Services) -> None:
    """Run every queued job in this process until the queues are empty."""
    worker = SimpleWorker(list(services.queues.values()), connection=services.redis)
    worker.work(burst=True, logging_level="WARNING")


def post_signed(
    client: FlaskClient,
    payload: Mapping[str, Any] | bytes,
    *,
    path: str = "/api/v1/dossier-events",
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> TestResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = signing.signed_headers(secret, body, timestamp)
    return client.post(path, data=body, headers=headers, content_type=content_type)


def dossier_event(**changes: Any) -> dict[str, Any]:
    """A valid `received` event; `changes` replace top-level keys or, with dotted names, nested ones."""
    event: dict[str, Any] = {
        "event_id": "onestop-2025-07-14-000123",
        "occurred_at": "2025-07-14T08:30:00+07:00",
        "dossier": {
            "code": "000.00.31.H26-250714-0001",
            "procedure": "Chứng thực bản sao từ bản chính",
            "status": "received",
            "due_date": "2025-07-16",
            "new_due_date": None,
            "note": None,
        },
        "citizen": {"name": "Nguyễn Văn An", "phone": "0912 345 678", "language": "vi"},
    }
    for key, value in changes.items():
        target = event
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return event


_DELETE = object()
DELETE = _DELETE

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
