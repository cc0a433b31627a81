"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from notifier.schemas.operations import Health, Readiness
from notifier.web import services
from notifier.web.apidoc import documented, reply

bp = Blueprint("health", __name__)

TAG = "operations"


@bp.get("/healthz")
@documented("healthz", tag=TAG, responses={200: reply("Up.", Health)})
def healthz() -> ResponseReturnValue:
    """The process is up."""
    return jsonify(Health(status="ok").model_dump())


@bp.get("/readyz")
@documented(
    "readyz",
    tag=TAG,
    responses={
        200: reply("Ready.", Readiness),
        503: reply("Not ready: `checks` says what fails.", Readiness),
    },
)
def readyz() -> ResponseReturnValue:
    """The database and Redis answer."""
    checks = {"database": "ok", "redis": "ok"}
    try:
        with services().db.session() as session:
            session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        checks["database"] = type(exc).__name__
    try:
        services().redis.ping()
    except RedisError as exc:
        checks["redis"] = type(exc).__name__
    ready = all(value == "ok" for value in checks.values())
    answer = Readiness(status="ok" if ready else "unavailable", checks=checks)
    return jsonify(answer.model_dump()), 200 if ready else 503
