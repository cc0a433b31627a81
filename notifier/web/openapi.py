"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of every public operation.

Each route documents itself beside its definition (`web.apidoc.documented`); this module walks
the app's routes and builds the document with `schemas.openapi`, so only operations the app
really serves are published. `tests/test_openapi.py` fails when a public route is undocumented.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.routing import Rule

from notifier.schemas import openapi
from notifier.schemas.callbacks import CallbackPayload
from notifier.schemas.dossiers import SIGNATURE_HEADERS
from notifier.schemas.openapi import Content, Doc, Operation, Param, Reply, Webhook
from notifier.web.apidoc import BEARER, doc_of, documented

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")

TITLE = "notifier: SMS notices of the commune's public administrative service centre"
VERSION = "1.0.0"
DESCRIPTION = (
    "Send SMS to citizens and follow them; receive dossier status events from the one-stop-shop "
    "system; run the citizen-reception schedule; provider webhooks, including citizens' SMS "
    "(docs/two-way-sms.md). Every error is `application/problem+json` with `type`, `title`, "
    "`status`, `detail` and `errors[]`. Guide with examples: docs/api.md."
)
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key made by `flask --app wsgi notifier create-api-key NAME`.",
    }
}

# Prefixes of the public (machine-facing) routes; the console's HTML pages are not in the API.
PUBLIC_PREFIXES = ("/api/", "/twilio/", "/gateways/", "/ussd", "/healthz", "/readyz")

WEBHOOKS = [
    Webhook(
        "notificationStatus",
        "Sent to an API key's callback URL when one of its messages is final "
        "(delivered, failed, rejected); retried on errors, 5xx and 429 for 24 hours.",
        Content(CallbackPayload),
        params=SIGNATURE_HEADERS,
        responses={200: Reply("Any 2xx ends the retries.")},
    )
]

# A Flask path variable: <name>, <converter:name> or <converter(arguments):name>.
_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "uuid": {"type": "string", "format": "uuid"},
    "int": {"type": "integer"},
}


def openapi_path(rule: str) -> str:
    """A Flask rule in OpenAPI style: `/a/<uuid:id>` becomes `/a/{id}`."""
    return _VARIABLE.sub(lambda match: "{" + match.group(2) + "}", rule)


def _with_path_params(rule: Rule, doc: Doc) -> Doc:
    """The route's path parameters first: as the view declares them, else as its converters say."""
    declared = {param.name: param for param in doc.params if param.location == "path"}
    path = [
        declared.get(name)
        or Param(name, "path", _CONVERTER_SCHEMAS.get(converter, {"type": "string"}))
        for converter, name in _VARIABLE.findall(rule.rule)
    ]
    others = [param for param in doc.params if param.location != "path"]
    return replace(doc, params=(*path, *others))


def operations(app: Flask) -> list[Operation]:
    """Every documented operation the app serves, one per route and method."""
    found = []
    for rule in app.url_map.iter_rules():
        doc = doc_of(app.view_functions[rule.endpoint])
        if doc is None:
            continue
        doc = _with_path_params(rule, doc)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append(Operation(method, openapi_path(rule.rule), doc))
    return found


def served_routes(app: Flask) -> set[tuple[str, str]]:
    """(METHOD, path shape) of every route the app serves."""
    return {
        (method, openapi.path_shape(rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of the operations `app` serves."""
    return openapi.build(
        operations(app),
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes=SECURITY_SCHEMES,
        webhooks=WEBHOOKS,
    )


def document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, built once per app."""
    cached: dict[str, Any] | None = app.extensions.get("openapi_document")
    if cached is None:
        cached = build_document(app)
        app.extensions["openapi_document"] = cached
    return cached


@bp.get("/openapi.json")
@documented(
    "openapi",
    tag="operations",
    responses={200: Reply("OpenAPI 3.1.", Content(schema={"type": "object"}))},
)
def openapi_json() -> ResponseReturnValue:
    """This OpenAPI document."""
    return jsonify(document(current_app._get_current_object()))  # type: ignore[attr-defined]
