"""Inbound rate limits: per phone and per address, shared through Redis, failing open."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from redis import Redis

from notifier.core import ratelimit
from notifier.core.runtime import Services
from tests.support.processes import RedisServer


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"RATE_LIMIT_PER_PHONE": "3/minute", "RATE_LIMIT_PER_IP": "5/minute"}


def test_a_phone_over_its_limit_is_refused_with_a_wait_and_others_are_not(
    services: Services,
) -> None:
    verdicts = [services.inbound_limits.check_phone("sms", "+84912345678") for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert 1 <= verdicts[-1].retry_after <= 60
    assert services.inbound_limits.check_phone("sms", "+84987654321").allowed
    # Each inbound channel counts apart: USSD use does not eat into the SMS allowance.
    assert services.inbound_limits.check_phone("ussd", "+84912345678").allowed


def test_counters_are_shared_by_every_process(make_app: Any) -> None:
    first: Services = make_app(RATE_LIMIT_PER_IP="2/minute").extensions["notifier"]
    second: Services = make_app(RATE_LIMIT_PER_IP="2/minute").extensions["notifier"]
    assert first.inbound_limits.check_ip("ussd", "203.0.113.9").allowed
    assert second.inbound_limits.check_ip("ussd", "203.0.113.9").allowed
    assert not first.inbound_limits.check_ip("ussd", "203.0.113.9").allowed


def test_redis_holds_no_phone_number_or_address(services: Services, redis_url: str) -> None:
    services.inbound_limits.check_phone("sms", "+84912345678")
    services.inbound_limits.check_ip("ussd", "203.0.113.9")
    keys = [key.decode() for key in Redis.from_url(redis_url).keys("*")]
    assert keys
    assert not [key for key in keys if "912345678" in key or "203.0.113" in key]


def test_switched_off_limit_never_refuses(make_app: Any) -> None:
    services: Services = make_app(RATE_LIMIT_PER_PHONE="off").extensions["notifier"]
    assert all(
        services.inbound_limits.check_phone("sms", "+84912345678").allowed for _ in range(50)
    )


def test_a_malformed_limit_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match="like '20/minute'"):
        ratelimit.parse_limit("twenty a minute")


def test_with_redis_down_requests_are_let_through(make_app: Any) -> None:
    server = RedisServer().start()
    app: Flask = make_app(REDIS_URL=server.url, RATE_LIMIT_PER_PHONE="1/minute")
    services: Services = app.extensions["notifier"]
    server.stop()
    assert services.inbound_limits.check_phone("sms", "+84912345678").allowed
    assert services.inbound_limits.check_phone("sms", "+84912345678").allowed
