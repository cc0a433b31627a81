"""Reading query strings and parts of a body with the API's models, refusing what is wrong with
a problem document (JSON bodies: `web.jsonbody`)."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from notifier.web.problems import invalid_request

M = TypeVar("M", bound=BaseModel)


def query_args(model: type[M]) -> M:
    """The query string as `model` (strings converted as the model says); else 400."""
    try:
        return model.model_validate_strings(request.args.to_dict())
    except ValidationError as exc:
        raise invalid_request(exc) from None


def parse_part(model: type[M], data: Any, where: str) -> M:
    """`data`, decoded from the body at `where` (e.g. "payload"), as `model`; else 400 naming
    each bad field under `where`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request(exc, where) from None
