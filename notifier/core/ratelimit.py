"""Rate limits counted in Redis: on inbound traffic, and per API key.

Inbound traffic, per client IP and per phone number: any inbound handler calls `check` (or
`check_ip` / `check_phone`) before doing work; the counters live in Redis so every web process
shares them. Identifiers are hashed before they become keys, so Redis never holds a phone number
or an address. When Redis cannot be reached the request is let through: refusing citizens
because a counter is missing would be worse than a burst going uncounted.

API keys (`take_request`, `reserve_daily`): a token bucket for requests and a counter of
messages a day, each a Lua script, so a check and its update are one atomic step however many
web processes on however many machines share the Redis. The bucket reads the clock of Redis
itself, so machines with drifting clocks still share one limit. Redis down: let through too.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from functools import lru_cache
from zoneinfo import ZoneInfo

import limits
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from redis import Redis
from redis.exceptions import RedisError

from notifier.core.config import Settings
from notifier.core.db import utcnow

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


AUTH_FAILURES = "auth-failures"
_LOCKED_OUT = "notifier:locked-out:"


class InboundLimits:
    """The limits on traffic anyone can send: per address, per phone, and the lockout of an
    address whose requests keep failing authentication (RATE_LIMIT_* settings)."""

    def __init__(self, limiter: RateLimiter, redis: Redis, settings: Settings) -> None:
        self.limiter = limiter
        self.redis = redis
        self.settings = settings

    def check_ip(self, scope: str, ip: str | None) -> Verdict:
        """One request from `ip` on an endpoint open to the public (RATE_LIMIT_PER_IP)."""
        return self.limiter.hit(f"ip:{scope}", ip or "unknown", self.settings.RATE_LIMIT_PER_IP)

    def check_phone(self, scope: str, phone: str) -> Verdict:
        """One inbound text or USSD request from `phone` (RATE_LIMIT_PER_PHONE)."""
        return self.limiter.hit(f"phone:{scope}", phone, self.settings.RATE_LIMIT_PER_PHONE)

    def auth_failures_exhausted(self, ip: str | None) -> Verdict:
        """Whether `ip` sent too many requests that failed authentication to be heard now.

        Every webhook request asks, so the answer is one key read: the key is set, for as long
        as the lockout lasts, when failures reach the limit (only failed requests pay for
        counting).
        """
        if parse_limit(self.settings.RATE_LIMIT_AUTH_FAILURES_PER_IP) is None:
            return ALLOWED
        try:
            left_ms = int(self.redis.pttl(_LOCKED_OUT + _key(ip or "unknown")))
        except RedisError as exc:
            log.warning("lockout not checked, Redis unavailable: %s", exc)
            return ALLOWED
        return Verdict(False, max(1, math.ceil(left_ms / 1000))) if left_ms > 0 else ALLOWED

    def record_auth_failure(self, ip: str | None) -> None:
        identifier = ip or "unknown"
        spec = self.settings.RATE_LIMIT_AUTH_FAILURES_PER_IP
        self.limiter.hit(AUTH_FAILURES, identifier, spec)
        verdict = self.limiter.exhausted(AUTH_FAILURES, identifier, spec)
        if verdict.allowed:
            return
        try:
            self.redis.set(_LOCKED_OUT + _key(identifier), 1, ex=verdict.retry_after)
        except RedisError as exc:
            log.warning("lockout not recorded, Redis unavailable: %s", exc)


# --- API keys: token bucket and daily cap ------------------------------------------------------

_PREFIX = "notifier:limits"

# KEYS[1]: the bucket; ARGV: capacity, refill rate (tokens a second), cost.
# Returns {allowed (0|1), tokens left, seconds until `cost` tokens are there}; floats as strings
# because Redis truncates Lua numbers to integers.
_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
end
if now > at then
  tokens = math.min(capacity, tokens + (now - at) * rate)
  at = now
end
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(tokens), tostring(wait)}
"""

# KEYS[1]: the day's counter; ARGV: cap, count, ttl seconds. Returns {allowed (0|1), used}.
_DAILY_RESERVE = """
local cap = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + count > cap then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], count)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return {1, used}
"""

# Never below zero, even if a release arrives after the counter expired.
_DAILY_RELEASE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local count = math.min(used, tonumber(ARGV[1]))
if count > 0 then
  return redis.call('DECRBY', KEYS[1], count)
end
return used
"""


@dataclass(frozen=True)
class Decision(Verdict):
    """A per-key verdict, with the limit and what is left of it."""

    limit: int = 0
    remaining: int = 0


@dataclass(frozen=True)
class Reservation:
    """Messages counted against a day's cap; release them if they are not created after all."""

    key: str | None
    count: int


def take_request(
    redis: Redis, key_id: int, per_minute: int, *, capacity: float | None = None
) -> Decision:
    """Take one request from key `key_id`'s bucket: `per_minute` a minute, bursts of `capacity`
    (default: a minute's worth)."""
    capacity = float(per_minute) if capacity is None else capacity
    try:
        allowed, tokens, wait = redis.register_script(_BUCKET_LUA)(
            keys=[f"{_PREFIX}:bucket:{key_id}"], args=[capacity, per_minute / 60.0, 1]
        )
    except RedisError as exc:
        log.warning("rate limit not checked for key %s, Redis unavailable: %s", key_id, exc)
        return Decision(allowed=True, limit=per_minute, remaining=per_minute)
    return Decision(
        allowed=bool(int(allowed)),
        limit=per_minute,
        remaining=math.floor(float(tokens)),
        retry_after=0 if int(allowed) else max(1, math.ceil(float(wait))),
    )


def _day_key(key_id: int, tz: ZoneInfo, now: datetime) -> tuple[str, int]:
    """The counter of the local day containing `now`, and the seconds until that day ends."""
    local = now.astimezone(tz)
    tomorrow = datetime.combine(local.date() + timedelta(days=1), clock_time(0), tzinfo=tz)
    return f"{_PREFIX}:day:{key_id}:{local.date().isoformat()}", max(
        1, math.ceil((tomorrow - local).total_seconds())
    )


def reserve_daily(
    redis: Redis,
    key_id: int,
    count: int,
    cap: int,
    *,
    tz: ZoneInfo,
    now: datetime | None = None,
) -> tuple[Decision, Reservation]:
    """Count `count` messages against today's (local time) cap, or refuse them all."""
    key, until_midnight = _day_key(key_id, tz, now or utcnow())
    try:
        allowed, used = redis.register_script(_DAILY_RESERVE)(
            keys=[key], args=[cap, count, until_midnight + 3600]
        )
    except RedisError as exc:
        log.warning("daily cap not checked for key %s, Redis unavailable: %s", key_id, exc)
        return Decision(allowed=True, limit=cap, remaining=cap), Reservation(None, 0)
    remaining = max(0, cap - int(used))
    if not int(allowed):
        refused = Decision(False, until_midnight, limit=cap, remaining=remaining)
        return refused, Reservation(None, 0)
    return Decision(allowed=True, limit=cap, remaining=remaining), Reservation(key, count)


def release_daily(redis: Redis, reservation: Reservation) -> None:
    if reservation.key is None or reservation.count <= 0:
        return
    try:
        redis.register_script(_DAILY_RELEASE)(keys=[reservation.key], args=[reservation.count])
    except RedisError as exc:
        log.warning("could not give back %d message(s) of a daily cap: %s", reservation.count, exc)
