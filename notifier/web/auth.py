"""Bearer API keys on the JSON API."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import g, request

from notifier.api import keys
from notifier.core import ratelimit
from notifier.models import ApiKey
from notifier.web import guards, services
from notifier.web.problems import ApiProblem

P = ParamSpec("P")
R = TypeVar("R")

_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="notifier"'}


def current_api_key() -> ApiKey:
    key: ApiKey = g.api_key
    return key


def require_api_key() -> None:
    """`before_request` hook for API blueprints: sets `g.api_key`, or answers 401 (no valid
    key) or 429 (with `Retry-After`: the key's rate limit is used up, or the client's address
    failed authentication too often lately)."""
    guards.refuse_locked_out_client()
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        guards.authentication_failed()
        raise ApiProblem(
            401,
            "Unauthorized",
            "Send an API key as 'Authorization: Bearer <key>'.",
            headers=_UNAUTHORIZED,
        )
    with services().db.transaction() as session:
        api_key = keys.authenticate(session, token.strip())
        if api_key is None:
            guards.authentication_failed()
            raise ApiProblem(
                401, "Unauthorized", "The API key is unknown or revoked.", headers=_UNAUTHORIZED
            )
    g.api_key = api_key
    per_minute = keys.limits(services().settings, api_key).per_minute
    if per_minute is not None:
        decision = ratelimit.take_request(services().redis, api_key.id, per_minute)
        if not decision.allowed:
            raise ApiProblem(
                429,
                "Too Many Requests",
                f"This API key may make {per_minute} requests a minute; "
                f"try again in {decision.retry_after} s.",
                headers={"Retry-After": str(decision.retry_after)},
            )


def api_key_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        require_api_key()
        return view(*args, **kwargs)

    return wrapper
