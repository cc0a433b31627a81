"""Shared fixtures: a real database (SQLite file or PostgreSQL), a real Redis, real HTTP fakes.

TEST_DATABASE_URL picks the database (default: a SQLite file in a temporary folder) and
TEST_REDIS_URL the Redis database (default: redis://127.0.0.1:6379/15, flushed per test).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings as hypothesis_settings
from redis import Redis
from sqlalchemy import text

from notifier import create_app, models
from notifier.core.db import Base, Database
from notifier.core.runtime import Services
from tests.support import fake_android_gateway
from tests.support.fake_android_gateway import FakeAndroidGateway
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import WEBHOOK_SECRET
from tests.support.live import LiveServer, serve

# Speed is measured in bench/, never asserted in tests: no per-example deadline on a shared machine.
hypothesis_settings.register_profile("notifier", deadline=None)
hypothesis_settings.load_profile("notifier")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'notifier-test.sqlite3'}"
    )
    database = Database(url)
    Base.metadata.drop_all(database.engine)
    models.create_all(database)
    database.dispose()
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _empty_tables(database: Database) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in tables:
                connection.execute(text(f'DELETE FROM "{name}"'))
        else:
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings for its apps."""
    return {}


@pytest.fixture
def make_app(database_url: str, redis_url: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database and Redis; everything is emptied before each test."""
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        config = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "DOSSIER_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "QUIET_HOURS": "off",
            "SEND_RETRY_BASE_SECONDS": 0.0,
            "LOG_LEVEL": "WARNING",
            **overrides,
        }
        app = create_app(config)
        apps.append(app)
        return app

    database = Database(database_url)
    _empty_tables(database)
    database.dispose()
    Redis.from_url(redis_url).flushdb()
    yield factory
    for app in apps:
        app.extensions["notifier"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask], settings_overrides: dict[str, Any]) -> Flask:
    return make_app(**settings_overrides)


@pytest.fixture
def services(app: Flask) -> Services:
    found: Services = app.extensions["notifier"]
    return found


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio_settings(fake_twilio: FakeTwilio) -> dict[str, Any]:
    return {
        "SMS_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
        "TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
        "TWILIO_FROM": "UBND-XA",
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "PUBLIC_BASE_URL": "https://notifier.example.test",
    }


@pytest.fixture
def fake_gateway() -> Iterator[FakeAndroidGateway]:
    fake = FakeAndroidGateway().start()
    yield fake
    fake.stop()


@pytest.fixture
def gateway_settings(fake_gateway: FakeAndroidGateway) -> dict[str, Any]:
    """The Android gateway as the two-way channel (replies go back through it)."""
    return {
        "ANDROID_GATEWAY_URL": fake_gateway.url,
        "ANDROID_GATEWAY_LOGIN": fake_gateway.login,
        "ANDROID_GATEWAY_PASSWORD": fake_gateway.password,
        "ANDROID_GATEWAY_WEBHOOK_KEY": fake_android_gateway.WEBHOOK_KEY,
    }


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """`app` served over real HTTP on 127.0.0.1."""
    live = serve(app)
    yield live
    live.stop()
