"""Helpers shared by tests: signing webhooks, running jobs, building events."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from rq.worker import SimpleWorker
from werkzeug.test import TestResponse

from notifier.core import signing
from notifier.core.runtime import Services
from notifier.schemas import dossiers

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
    event: dict[str, Any] = copy.deepcopy(dossiers.EXAMPLE)  # the documented example
    event["dossier"].update(new_due_date=None, note=None)
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
