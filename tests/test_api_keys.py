"""API keys: the CLI, test keys on the simulated provider, per-key rate limits and daily caps."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from notifier.core import ratelimit
from notifier.core.runtime import Services
from notifier.models import ApiKey, Message
from notifier.providers import simulated
from tests.support.api import auth, get, make_key, post
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import run_jobs

URL = "/api/v1/notifications"


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return {**twilio_settings, "SEND_MAX_ATTEMPTS": 3}


def load(services: Services, message_id: str) -> Message:
    with services.db.session() as session:
        return session.scalars(
            select(Message).where(Message.id == message_id).options(selectinload(Message.history))
        ).one()


# -- command line ------------------------------------------------------------------------------


def test_cli_creates_lists_and_revokes_keys(app: Flask, services: Services) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(args=["notifier", "create-api-key", "Một cửa", "--kind", "test"])
    assert created.exit_code == 0, created.output
    key = created.output.strip()
    assert key.startswith("ntf_test_")

    client = app.test_client()
    assert post(client, key, URL, {"phone": "0912345678", "body": "Xin chào"}).status_code == 201

    listed = runner.invoke(args=["notifier", "list-api-keys"])
    assert "Một cửa" in listed.output
    assert key[:12] in listed.output
    assert key not in listed.output
    with services.db.session() as session:
        stored = session.scalars(select(ApiKey)).one()
    assert stored.key_hash != key
    assert key not in (stored.prefix, stored.key_hash)

    revoked = runner.invoke(args=["notifier", "revoke-api-key", key[:12]])
    assert revoked.exit_code == 0, revoked.output
    assert post(client, key, URL, {"phone": "0912345678", "body": "Xin chào"}).status_code == 401
    assert "revoked" in runner.invoke(args=["notifier", "list-api-keys"]).output


def test_cli_callback_url_without_secret_prints_a_generated_secret(
    app: Flask, services: Services
) -> None:
    result = app.test_cli_runner().invoke(
        args=["notifier", "create-api-key", "logbook", "--callback-url", "https://x.test/cb"]
    )
    assert result.exit_code == 0
    with services.db.session() as session:
        stored = session.scalars(select(ApiKey)).one()
    assert stored.callback_url == "https://x.test/cb"
    assert stored.callback_secret
    assert stored.callback_secret in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--callback-url", "ftp://x.test/cb"],
        ["--callback-url", "/relative"],
        ["--callback-secret", "s3cret"],
        ["--kind", "demo"],
    ],
)
def test_cli_refuses_bad_options(app: Flask, services: Services, args: list[str]) -> None:
    result = app.test_cli_runner().invoke(args=["notifier", "create-api-key", "bad", *args])
    assert result.exit_code != 0
    with services.db.session() as session:
        assert session.scalars(select(ApiKey)).all() == []


def test_revoking_an_unknown_key_fails(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["notifier", "revoke-api-key", "ntf_live_nope"])
    assert result.exit_code != 0
    assert "no API key" in result.output


# -- test keys ---------------------------------------------------------------------------------


def send(client: FlaskClient, key: str, phone: str) -> str:
    response = post(client, key, URL, {"phone": phone, "body": "Thử nghiệm"})
    assert response.status_code == 201
    return str(response.get_json()["id"])


def test_test_key_goes_through_the_pipeline_and_never_reaches_the_provider(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    key = make_key(services, kind="test")
    message_id = send(client, key, "0912 345 678")
    run_jobs(services)

    assert fake_twilio.requests == 0
    body = get(client, key, f"{URL}/{message_id}").get_json()
    assert body["status"] == "delivered"
    assert body["provider"] == "simulated"
    assert [c["status"] for c in body["status_history"]] == [
        "queued",
        "sending",
        "sent",
        "delivered",
    ]


def test_live_key_reaches_the_provider(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    send(client, make_key(services), "0912 345 678")
    run_jobs(services)
    assert len(fake_twilio.messages) == 1


def test_simulated_delivered_number(client: FlaskClient, services: Services) -> None:
    message_id = send(client, make_key(services, kind="test"), "0900 000 001")
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "delivered"
    assert message.attempts == 1


def test_simulated_temporary_failure_is_retried_then_fails(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    message_id = send(client, make_key(services, kind="test"), "0900 000 002")
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "provider_unavailable"
    assert message.attempts == services.settings.SEND_MAX_ATTEMPTS == 3
    assert [h.status for h in message.history].count("sending") == 3
    assert fake_twilio.requests == 0


def test_simulated_permanent_failure_fails_at_once(client: FlaskClient, services: Services) -> None:
    message_id = send(client, make_key(services, kind="test"), "0900 000 003")
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "unreachable"
    assert message.attempts == 1


def test_the_documented_numbers_are_the_simulated_ones() -> None:
    from pathlib import Path

    guide = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    for number in (simulated.DELIVERED, simulated.TEMPORARY_FAILURE, simulated.PERMANENT_FAILURE):
        local = "0" + number[3:]
        assert f"{local[:4]} {local[4:7]} {local[7:]}" in guide


# -- rate limit and daily cap ------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(client: FlaskClient, services: Services) -> None:
    key = make_key(services, rate_limit_per_minute=2)
    other = make_key(services, name="other", rate_limit_per_minute=2)
    assert get(client, key, URL).status_code == 200
    assert get(client, key, URL).status_code == 200

    refused = post(client, key, URL, {"phone": "0912345678", "body": "x"})

    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert "2 requests a minute" in refused.get_json()["detail"]
    # Two tokens a minute: the next one is about 30 s away.
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert get(client, other, URL).status_code == 200
    with services.db.session() as session:
        assert session.scalars(select(Message)).all() == []


def test_rate_limit_zero_means_no_limit(client: FlaskClient, services: Services) -> None:
    key = make_key(services, rate_limit_per_minute=0)
    assert all(get(client, key, URL).status_code == 200 for _ in range(30))


def test_default_rate_limit_comes_from_settings(make_app: Any) -> None:
    app: Flask = make_app(API_RATE_LIMIT_PER_MINUTE=3)
    services: Services = app.extensions["notifier"]
    key = make_key(services)
    client = app.test_client()
    codes = [get(client, key, URL).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_token_bucket_is_atomic_across_connections(redis_url: str) -> None:
    Redis.from_url(redis_url).flushdb()
    barrier = threading.Barrier(20)
    allowed: list[bool] = []

    def hammer() -> None:
        redis = Redis.from_url(redis_url)  # one connection per thread, like separate processes
        barrier.wait()
        for _ in range(5):
            # A bucket of 10 that refills one token a day: exactly 10 of the 100 calls pass.
            decision = ratelimit.take_request(redis, 99, 1, capacity=10)
            allowed.append(decision.allowed)
        redis.close()

    threads = [threading.Thread(target=hammer) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 100
    assert allowed.count(True) == 10


def test_daily_cap_refuses_the_message_past_it(client: FlaskClient, services: Services) -> None:
    key = make_key(services, daily_cap=2)
    first = post(client, key, URL, {"phone": "0912345678", "body": "1", "reference": "a"})
    assert first.status_code == 201
    # A replay creates nothing, so it does not count.
    again = post(client, key, URL, {"phone": "0912345678", "body": "1", "reference": "a"})
    assert again.status_code == 200
    assert post(client, key, URL, {"phone": "0912345678", "body": "2"}).status_code == 201

    refused = post(client, key, URL, {"phone": "0912345678", "body": "3"})

    assert refused.status_code == 429
    assert "daily cap of 2" in refused.get_json()["detail"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 86_400
    with services.db.session() as session:
        assert len(session.scalars(select(Message)).all()) == 2


def test_refused_requests_do_not_use_up_the_daily_cap(
    client: FlaskClient, services: Services
) -> None:
    key = make_key(services, daily_cap=1)
    assert post(client, key, URL, {"phone": "024 3825 1234", "body": "x"}).status_code == 400
    assert post(client, key, URL, {"phone": "0912345678", "body": "x"}).status_code == 201


def test_without_redis_the_limits_let_requests_through(make_app: Any) -> None:
    app: Flask = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    services: Services = app.extensions["notifier"]
    key = make_key(services, rate_limit_per_minute=1, daily_cap=1)
    client = app.test_client()
    codes = [
        client.post(URL, json={"phone": "0912345678", "body": "x"}, headers=auth(key)).status_code
        for _ in range(2)
    ]
    # The messages are committed; the sweeper enqueues them when Redis is back.
    assert codes == [201, 201]


def test_an_address_failing_authentication_again_and_again_is_locked_out(
    make_app: Any,
) -> None:
    app: Flask = make_app(RATE_LIMIT_AUTH_FAILURES_PER_IP="3/minute")
    client = app.test_client()
    key = make_key(app.extensions["notifier"])
    guesses = [get(client, f"ntf_live_guess{n}", URL).status_code for n in range(3)]
    assert guesses == [401, 401, 401]

    locked = get(client, key, URL)  # even a valid key, from that address, waits

    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1
