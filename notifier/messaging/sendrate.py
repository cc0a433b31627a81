"""A provider rate limiter shared by every worker on every machine (Redis, one atomic Lua script).

Each (provider, sender) has one key holding the earliest time the next segment may go out (the
"theoretical arrival time" of GCRA). A caller reserves send slots for a list of messages: each
message gets the current time slot and pushes the next one by `segments / rate`, so sends are
spaced evenly and a provider limit is used to the full without bursts above it. Slots are handed
out at most `horizon` ahead, so a worker never holds many messages waiting for their turn (and an
urgent message reserved later is never far behind). A 429 from the provider pauses the key for
`Retry-After` seconds for everyone. All times come from the Redis server clock, the one clock
every machine shares.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis import Redis
from redis.commands.core import Script

log = logging.getLogger(__name__)

KEY_PREFIX = "notifier:sendrate:"
UNLIMITED_CHECK_EVERY = 0.1

# KEYS[1]: the key. ARGV: interval per segment (µs, 0 = unlimited), horizon (µs), then costs.
# Returns {granted, retry_in_us, delay_1_us, ..., delay_granted_us}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local horizon = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local delays = {}
for i = 3, #ARGV do
  if tat - now > horizon then break end
  delays[#delays + 1] = tat - now
  tat = tat + tonumber(ARGV[i]) * interval
end
if #delays > 0 and tat > now then
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
local retry_in = 0
if tat - now > horizon then retry_in = tat - now - horizon end
local reply = {#delays, retry_in}
for i = 1, #delays do reply[#reply + 1] = delays[i] end
return reply
"""

# KEYS[1]: the key. ARGV[1]: pause (µs). Nobody gets a slot before now + pause.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > tat then
  redis.call('SET', KEYS[1], string.format('%d', until_), 'PX', math.floor(tonumber(ARGV[1]) / 1000) + 1000)
end
return 1
"""


def parse_rates(raw: str) -> dict[str, float]:
    """`"twilio=50, android_gateway=0.5"` → {"twilio": 50.0, "android_gateway": 0.5}."""
    rates: dict[str, float] = {}
    for part in raw.replace(";", ",").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = -1.0
        if not sep or not name.strip() or rate <= 0:
            raise ValueError(
                f"SMS_RATE_LIMITS entry {part.strip()!r} is not PROVIDER=MESSAGES_PER_SECOND "
                "with a positive number"
            )
        rates[name.strip()] = rate
    return rates


@dataclass(frozen=True)
class Reservation:
    """Delays (seconds from now) for the first `len(delays)` messages; the rest must ask again."""

    delays: list[float]
    retry_in: float  # when nothing fitted: how long until a slot is within the horizon


class SendRateLimiter:
    """Reserve send slots per (provider, sender); unlimited providers still honour 429 pauses."""

    def __init__(
        self,
        redis: Redis,
        rates: Mapping[str, float],
        *,
        margin: float = 0.0,
        horizon: float = 0.25,
    ) -> None:
        if not 0 <= margin < 1:
            raise ValueError("SMS_RATE_LIMIT_MARGIN must be at least 0 and below 1")
        self.redis = redis
        self.rates = dict(rates)
        self.margin = margin
        self.horizon = horizon
        self._paused: dict[str, tuple[float, float]] = {}  # key -> (checked at, paused until)
        self._reserve: Script = redis.register_script(_RESERVE)
        self._pause: Script = redis.register_script(_PAUSE)

    @staticmethod
    def key(provider: str, sender: str) -> str:
        return f"{KEY_PREFIX}{provider}:{sender or 'default'}"

    def interval(self, provider: str) -> float:
        """Seconds one segment occupies at `provider` (0 when no limit is configured)."""
        rate = self.rates.get(provider)
        return 0.0 if not rate else 1.0 / (rate * (1 - self.margin))

    def reserve(
        self, provider: str, sender: str, segments: Sequence[int], *, horizon: float | None = None
    ) -> Reservation:
        """Reserve slots, in order, for messages of `segments` each (as many as fit the horizon)."""
        if not segments:
            return Reservation([], 0.0)
        horizon = self.horizon if horizon is None else horizon
        if not self.interval(provider):
            return self._unlimited(self.key(provider, sender), len(segments), horizon)
        reply = self._reserve(
            keys=[self.key(provider, sender)],
            args=[
                round(self.interval(provider) * 1_000_000),
                round(horizon * 1_000_000),
                *(max(1, int(s)) for s in segments),
            ],
        )
        granted, retry_in = int(reply[0]), int(reply[1])
        return Reservation([int(d) / 1_000_000 for d in reply[2 : 2 + granted]], retry_in / 1e6)

    def _unlimited(self, key: str, count: int, horizon: float) -> Reservation:
        # No spacing to share: only a 429 pause matters, and it is read at most every 0.1 s.
        now = time.monotonic()
        checked_at, paused_until = self._paused.get(key, (0.0, 0.0))
        if now - checked_at >= UNLIMITED_CHECK_EVERY:
            pttl = int(self.redis.pttl(key))
            paused_until = now + pttl / 1000 - 1.0 if pttl > 0 else 0.0
            self._paused[key] = (now, paused_until)
        wait = max(0.0, paused_until - now)
        if wait > horizon:
            return Reservation([], wait - horizon)
        return Reservation([wait] * count, 0.0)

    def pause(self, provider: str, sender: str, seconds: float) -> None:
        """The provider said 429: nobody sends through this key for `seconds`."""
        if seconds > 0:
            key = self.key(provider, sender)
            self._pause(keys=[key], args=[round(seconds * 1_000_000)])
            self._paused.pop(key, None)
            log.warning("%s rate limited by the provider: pausing %.1f s", provider, seconds)
