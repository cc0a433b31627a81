"""Errors in one shape everywhere in the API: RFC 9457 `application/problem+json`.

The shape is `schemas.problems.Problem`; this module writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import Flask, Response, json, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from notifier.schemas.problems import PROBLEM_MIMETYPE

TYPE_BASE = "https://notifier.invalid/problems/"

# Paths that speak JSON; the staff console answers in HTML.
_API_PREFIXES = ("/api/", "/twilio/", "/gateways/", "/ussd", "/healthz", "/readyz", "/metrics")


class ApiProblem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: Iterable[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors or [])
        self.headers = dict(headers or {})


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    errors: Iterable[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail or title,
        "errors": list(errors or []),
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)
    response.headers.update(headers or {})
    return response


def validation_errors(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic errors as `{"field": "dossier.due_date", "message": "..."}`, one per bad field.

    `prefix` names where the validated object sits in the request ("payload").
    """
    errors = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in (prefix, *error["loc"]) if part != "")
        errors.append({"field": location or "(body)", "message": error["msg"]})
    return errors


def invalid_request(exc: ValidationError, prefix: str = "") -> ApiProblem:
    return ApiProblem(
        400, "Invalid request", "Some fields are missing or wrong.", validation_errors(exc, prefix)
    )


def wants_problem_json() -> bool:
    return request.path.startswith(_API_PREFIXES)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiProblem)
    def _api_problem(exc: ApiProblem) -> Response:
        return problem(exc.status, exc.title, exc.detail, exc.errors, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_exception(exc: HTTPException) -> Response | HTTPException:
        if not wants_problem_json():
            return exc
        response = problem(exc.code or 500, exc.name, exc.description)
        if exc.code == 405 and exc.response is None:
            allowed = getattr(exc, "valid_methods", None)
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if wants_problem_json():
            return problem(500, "Internal Server Error", "Something went wrong on our side.")
        return Response("Internal Server Error", status=500, mimetype="text/plain")
