"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from notifier.web import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
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
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503
