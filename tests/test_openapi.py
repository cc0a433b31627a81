"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document covering every public endpoint, and
schemathesis generating requests from it against the app: no 5xx, every response as documented.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.definitions import OPENAPI_31
from twilio.request_validator import RequestValidator

from notifier import create_app
from notifier.core import signing
from notifier.core.runtime import Services
from notifier.schemas.notifications import NotificationIn
from notifier.schemas.openapi import path_shape
from notifier.web.openapi import PUBLIC_PREFIXES, build_document, served_routes
from notifier.web.openapi import operations as documented_operations
from tests.support.api import make_key
from tests.support.helpers import WEBHOOK_SECRET

TWILIO_TOKEN = "openapi-twilio-token"
GATEWAY_KEY = "openapi-gateway-key"
PUBLIC_BASE_URL = "https://notifier.example.test"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "ANDROID_GATEWAY_WEBHOOK_KEY": GATEWAY_KEY,
        # Generated requests fail authentication on purpose, hundreds of times from one address:
        # locked out, every later request would only get a (documented) 429.
        "RATE_LIMIT_AUTH_FAILURES_PER_IP": "off",
    }


def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.get_json()
    return found


def test_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    doc = document(client)
    assert doc["openapi"] == "3.1.0"
    jsonschema_rs.validator_for(OPENAPI_31).validate(doc)
    for name, schema in doc["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_every_public_route_is_documented_and_nothing_else(app: Flask) -> None:
    public = {
        (method, shape)
        for method, shape in served_routes(app)
        if shape.startswith(PUBLIC_PREFIXES) and not shape.startswith("/static")
    }
    documented = {op.route_key for op in documented_operations(app)}
    assert public - documented == set(), "document these routes with notifier.web.apidoc.documented"
    doc = {
        (m.upper(), path_shape(p))
        for p, ops in document(app.test_client())["paths"].items()
        for m in ops
    }
    assert doc == public


def test_request_schemas_are_the_validating_models(client: FlaskClient) -> None:
    schemas = document(client)["components"]["schemas"]
    generated = NotificationIn.model_json_schema(ref_template="#/components/schemas/{model}")
    assert schemas["NotificationIn"] == generated


def test_error_responses_are_documented_as_problems(client: FlaskClient) -> None:
    for path, operations in document(client)["paths"].items():
        for method, operation in operations.items():
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    assert "application/problem+json" in response["content"], (method, path, code)


def test_callbacks_are_documented_as_a_webhook(client: FlaskClient) -> None:
    hook = document(client)["webhooks"]["notificationStatus"]["post"]
    schema = hook["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/CallbackPayload"}
    assert {p["name"] for p in hook["parameters"]} == {
        "X-Notifier-Timestamp",
        "X-Notifier-Signature",
    }


# -- schemathesis ------------------------------------------------------------------------------

REQUESTS: Counter[str] = Counter()
CODES: Counter[str] = Counter()


@pytest.fixture
def api_key(services: Services) -> str:
    return make_key(
        services, kind="test", name="schemathesis", rate_limit_per_minute=0, daily_cap=0
    )


# The document of an app built only for its routes, which never opens its database or Redis (the
# tests above check the document the test apps serve); each generated request goes to the
# test's own app, on an emptied database.
DOCUMENT = build_document(
    create_app(
        {
            "DATABASE_URL": f"sqlite:///{Path(tempfile.gettempdir()) / 'notifier-openapi.sqlite3'}",
            "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
            "TESTING": True,
            "SECRET_KEY": "openapi-document",
        }
    )
)
OPERATION_COUNT = sum(len(methods) for methods in DOCUMENT["paths"].values())
schema = schemathesis.openapi.from_dict(DOCUMENT)


def _signed(case: Any) -> dict[str, Any]:
    """Sign the request the way its endpoint checks, so generated data reaches validation.

    Only where schemathesis sent the signature headers in a schema-valid form: when it leaves
    one out or breaks it on purpose, the request must stay refused.
    """
    headers = case.headers or {}
    if case.path == "/api/v1/dossier-events" and isinstance(case.body, dict):
        timestamp = str(headers.get("X-Notifier-Timestamp", ""))
        if "X-Notifier-Signature" in headers and timestamp.isascii() and timestamp.isdigit():
            body = json.dumps(case.body).encode()
            return {"data": body, "headers": signing.signed_headers(WEBHOOK_SECRET, body)}
    if case.path == "/gateways/android/events" and isinstance(case.body, dict):
        timestamp = str(headers.get("X-Timestamp", ""))
        if "X-Signature" in headers and timestamp.isascii() and timestamp.isdigit():
            body = json.dumps(case.body).encode()
            return {"data": body, "headers": signing.ANDROID_GATEWAY.headers(GATEWAY_KEY, body)}
    if (
        case.path in ("/twilio/status", "/twilio/inbound")
        and isinstance(case.body, dict)
        and "X-Twilio-Signature" in headers
        and all(isinstance(v, str) for v in case.body.values())
    ):
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(
            PUBLIC_BASE_URL + case.path, case.body
        )
        return {"headers": {"X-Twilio-Signature": signature}}
    return {}


@schema.parametrize()
@settings(
    max_examples=120,
    derandomize=True,  # the same requests on every run
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case: Any, app: Flask, api_key: str) -> None:
    extra = _signed(case)
    headers = {"Authorization": f"Bearer {api_key}", **extra.pop("headers", {})}
    REQUESTS[case.operation.label] += 1
    # This test's app, on its own emptied database (the checks that re-send reach it too).
    case.operation.schema.app = case.operation.app = app
    # Every check but "schema-valid data is accepted": a landline or a template variable left out
    # is schema-valid and still a documented 400.
    response = case.call_and_validate(
        headers=headers,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
        **extra,
    )
    CODES[f"{case.operation.label} {response.status_code}"] += 1


def test_schemathesis_sent_at_least_a_thousand_requests() -> None:
    if len(REQUESTS) < OPERATION_COUNT:
        pytest.skip("run with the schemathesis tests above")
    print(sorted(CODES.items()), sum(REQUESTS.values()))
    assert sum(REQUESTS.values()) >= 1000, REQUESTS
