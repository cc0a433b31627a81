"""Bearer API keys on the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, request

from notifier import api_keys
from notifier.models import ApiKey
from notifier.web import services
from notifier.web.problems import ApiProblem

P = ParamSpec("P")
R = TypeVar("R")

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="notifier"'}


def current_api_key() -> ApiKey:
    key: ApiKey = g.api_key
    return key


def require_api_key() -> None:
    """`before_request` hook for API blueprints: sets `g.api_key` or answers 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(
            401,
            "Unauthorized",
            "Send an API key as 'Authorization: Bearer <key>'.",
            headers=_UNAUTHORIZED,
        )
    with services().db.transaction() as session:
        api_key = api_keys.authenticate(session, token.strip())
        if api_key is None:
            raise ApiProblem(
                401, "Unauthorized", "The API key is unknown or revoked.", headers=_UNAUTHORIZED
            )
    g.api_key = api_key


def api_key_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        require_api_key()
        return view(*args, **kwargs)

    return wrapper
