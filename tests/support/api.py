"""Helpers for tests of the public API: keys and authenticated calls."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from notifier.api import keys
from notifier.core.runtime import Services


def make_key(services: Services, kind: str = "live", name: str = "one-stop", **options: Any) -> str:
    """Create an API key straight in the database; returns the plaintext."""
    with services.db.transaction() as session:
        _, plaintext = keys.create_api_key(session, name, kind, **options)
    return plaintext


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def post(client: FlaskClient, key: str, path: str, payload: Any) -> TestResponse:
    return client.post(path, json=payload, headers=auth(key))


def get(client: FlaskClient, key: str, path: str, **query: Any) -> TestResponse:
    return client.get(path, query_string=query, headers=auth(key))
