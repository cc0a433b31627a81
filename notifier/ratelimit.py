"""Rate limits on inbound traffic, per client IP and per phone number, counted in Redis.

Any inbound handler calls `check` (or `check_ip` / `check_phone`) before doing work; the
counters live in Redis so every web process shares them. Identifiers are hashed before they
become keys, so Redis never holds a phone number or an address. When Redis cannot be reached
the request is let through: refusing citizens because a counter is missing would be worse than
a burst going uncounted.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import limits
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis import Redis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from notifier.runtime import Services

log = logging.getLogger(__name__)

_OFF = {"", "off", "none", "0"}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until a refused caller may try again


ALLOWED = Verdict(allowed=True)


@lru_cache(maxsize=64)
def parse_limit(spec: str) -> limits.RateLimitItem | None:
    """ "20/minute", "5 per second", "100/hour"…; None when the limit is switched off."""
    if spec.strip().lower() in _OFF:
        return None
    try:
        return limits.parse(spec)
    except ValueError:
        raise ValueError(f"invalid rate limit {spec!r}: write it like '20/minute'") from None


def _key(identifier: str) -> str:
    return hashlib.sha256(identifier.encode()).hexdigest()[:32]


class RateLimiter:
    """Sliding-window counters shared through Redis (the `limits` library's strategy)."""

    def __init__(self, redis: Redis, prefix: str = "notifier-rl") -> None:
        storage = RedisStorage("redis://", connection_pool=redis.connection_pool, key_prefix=prefix)
        self._strategy = SlidingWindowCounterRateLimiter(storage)

    def hit(self, scope: str, identifier: str, spec: str, cost: int = 1) -> Verdict:
        """Count one request of `identifier` in `scope`; refused once over the limit."""
        item = parse_limit(spec)
        if item is None:
            return ALLOWED
        key = _key(identifier)
        try:
            if self._strategy.hit(item, scope, key, cost=cost):
                return ALLOWED
            return Verdict(False, self._retry_after(item, scope, key))
        except RedisError as exc:
            log.warning("rate limit %s not counted, Redis unavailable: %s", scope, exc)
            return ALLOWED

    def exhausted(self, scope: str, identifier: str, spec: str) -> Verdict:
        """Whether `identifier` has no requests left in `scope`, without counting one."""
        item = parse_limit(spec)
        if item is None:
            return ALLOWED
        key = _key(identifier)
        try:
            if self._strategy.test(item, scope, key):
                return ALLOWED
            return Verdict(False, self._retry_after(item, scope, key))
        except RedisError as exc:
            log.warning("rate limit %s not checked, Redis unavailable: %s", scope, exc)
            return ALLOWED

    def _retry_after(self, item: limits.RateLimitItem, scope: str, key: str) -> int:
        stats = self._strategy.get_window_stats(item, scope, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def reset(self, scope: str, identifier: str, spec: str) -> None:
        item = parse_limit(spec)
        if item is not None:
            self._strategy.clear(item, scope, _key(identifier))


def check_ip(services: Services, scope: str, ip: str | None) -> Verdict:
    """One request from `ip` on an endpoint open to the public (RATE_LIMIT_PER_IP)."""
    return services.rate_limiter.hit(
        f"ip:{scope}", ip or "unknown", services.settings.RATE_LIMIT_PER_IP
    )


def check_phone(services: Services, scope: str, phone: str) -> Verdict:
    """One inbound text or USSD request from `phone` (RATE_LIMIT_PER_PHONE)."""
    return services.rate_limiter.hit(
        f"phone:{scope}", phone, services.settings.RATE_LIMIT_PER_PHONE
    )


AUTH_FAILURES = "auth-failures"


def auth_failures_exhausted(services: Services, ip: str | None) -> Verdict:
    """Whether `ip` sent too many requests that failed authentication to be heard now."""
    spec = services.settings.RATE_LIMIT_AUTH_FAILURES_PER_IP
    return services.rate_limiter.exhausted(AUTH_FAILURES, ip or "unknown", spec)


def record_auth_failure(services: Services, ip: str | None) -> None:
    spec = services.settings.RATE_LIMIT_AUTH_FAILURES_PER_IP
    services.rate_limiter.hit(AUTH_FAILURES, ip or "unknown", spec)
