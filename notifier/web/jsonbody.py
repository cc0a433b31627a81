"""Reading JSON request bodies the same way on every endpoint: 415, malformed, invalid."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from notifier.web import guards
from notifier.web.problems import ApiProblem, invalid_request

M = TypeVar("M", bound=BaseModel)


def parse_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying why it is not one."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = f"The body is not valid JSON: {exc}"
        raise ApiProblem(400, "Malformed JSON", detail, [_body_error(detail)]) from None
    if not isinstance(payload, dict):
        detail = "The body must be a JSON object."
        raise ApiProblem(400, "Invalid request", detail, [_body_error(detail)])
    return payload


def _body_error(message: str) -> dict[str, str]:
    return {"field": "(body)", "message": message}


def validate(model: type[M], body: bytes) -> M:
    """The body (already known to be a JSON object) checked against `model` in strict JSON
    mode: "5" is not a number, but ISO date strings are dates."""
    try:
        return model.model_validate_json(body, strict=True)
    except ValidationError as exc:
        raise invalid_request(exc) from None


def read(model: type[M]) -> M:
    """The request's JSON body as `model`: 415, 400 or the validated model."""
    guards.require_mimetype("application/json")
    body = request.get_data(cache=True)
    parse_object(body)
    return validate(model, body)
