"""Reading what a request brings (signed bodies, JSON bodies, query strings), refusing what is
wrong with a problem document."""

from __future__ import annotations

import logging
from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from notifier import signing
from notifier.web import services
from notifier.web.problems import ApiProblem, invalid_request

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


def signed_body(scheme: signing.Scheme, secret: str, source: str, max_bytes: int) -> bytes:
    """The raw body, once its signature is checked; else 401 (logged without the body, which may
    hold a citizen's text and number)."""
    request.max_content_length = max_bytes
    body = request.get_data(cache=True)
    try:
        scheme.verify(
            secret,
            body,
            request.headers.get(scheme.timestamp_header),
            request.headers.get(scheme.signature_header),
            tolerance_seconds=services().settings.WEBHOOK_TOLERANCE_SECONDS,
        )
    except signing.SignatureError as exc:
        log.warning("%s refused: %s", source, exc)
        raise ApiProblem(401, "Unauthorized", str(exc)) from None
    return body


def json_body(model: type[M], *, strict: bool = True) -> M:
    """The JSON body validated by `model`: 415 if it is not JSON, 400 naming each bad field.

    Strict by default: "5" is not a number, but ISO strings are dates and times.
    """
    if request.mimetype != "application/json":
        raise ApiProblem(415, "Unsupported Media Type", "Send the body as application/json.")
    return parse(model, request.get_data(cache=True), strict=strict)


def parse(model: type[M], data: bytes | object, *, where: str = "", strict: bool = False) -> M:
    """`data` (raw JSON, or already decoded) validated by `model`; 400 naming each bad field,
    prefixed with `where` when the data sits inside a larger body."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data, strict=strict)
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise invalid_request(exc, where) from None


def query_args(model: type[M]) -> M:
    """The query string validated by `model` (lax: query values are all strings)."""
    return parse(model, request.args.to_dict())
