"""Configuration read from the environment (names in CONTRACTS.md), overridable in tests."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date, time
from pathlib import Path
from typing import Any, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTANCE_DIR = PROJECT_ROOT / "instance"

_TRUE = {"1", "true", "yes", "on"}
_OFF = {"", "off", "none"}
_CLOCK_RE = re.compile(r"^(\d{1,2})(?:[:hH](\d{2})|[hH])$")
_YEARLY_RE = re.compile(r"^--(\d{2})-(\d{2})$")
# Times of day a setting may hold; the ones that accept "off" too.
CLOCK_SETTINGS = ("REMINDER_DAY_BEFORE_AT", "REMINDER_SAME_DAY_AT", "DOSSIER_REMINDER_AT")
OPTIONAL_CLOCK_SETTINGS = frozenset({"REMINDER_DAY_BEFORE_AT", "REMINDER_SAME_DAY_AT"})
NON_NEGATIVE_INT_SETTINGS = (
    "REMINDER_SAME_DAY_MINUTES_BEFORE",
    "DOSSIER_REMINDER_WORKING_DAYS",
    "DOSSIER_REMINDER_REPEATS",
)


def _default_database_url() -> str:
    return f"sqlite:///{INSTANCE_DIR / 'notifier.sqlite3'}"


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads; field names are the environment variable names."""

    DATABASE_URL: str = field(default_factory=_default_database_url)
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    SECRET_KEY: str = ""  # `make run` writes a random one to .env
    PUBLIC_BASE_URL: str = "http://127.0.0.1:5000"
    SMS_PROVIDER: str = "console"
    SMS_FALLBACK_PROVIDER: str = ""
    TWILIO_ACCOUNT_SID: str = ""
    TWILIO_AUTH_TOKEN: str = ""
    TWILIO_FROM: str = ""
    TWILIO_MESSAGING_SERVICE_SID: str = ""
    TWILIO_API_BASE_URL: str = "https://api.twilio.com"
    # Twilio's webhook SharedKeys, "<key id>:<secret>" separated by commas (two while rotating):
    # a webhook naming one in X-Twilio-Webhooks-Signature-Settings is checked with its secret.
    TWILIO_WEBHOOK_SHARED_KEYS: str = ""
    ANDROID_GATEWAY_URL: str = "http://127.0.0.1:8080"
    ANDROID_GATEWAY_LOGIN: str = ""
    ANDROID_GATEWAY_PASSWORD: str = ""
    ANDROID_GATEWAY_WEBHOOK_KEY: str = ""
    DOSSIER_WEBHOOK_SECRET: str = ""
    WEBHOOK_TOLERANCE_SECONDS: int = 300
    SMS_DIACRITICS: str = "strip"
    SMS_MAX_SEGMENTS: int = 6
    SMS_MAX_CHARACTERS: int = 918
    SMS_COST_PER_SEGMENT_VND: int = 800
    ALLOW_INTERNATIONAL_SMS: bool = False
    TIMEZONE: str = "Asia/Ho_Chi_Minh"
    QUIET_HOURS: str = "21:00-07:00"
    DOSSIER_NOTICES_URGENT: bool = True
    NOTIFY_RETURNED: bool = False
    SEND_MAX_ATTEMPTS: int = 6
    SEND_RETRY_BASE_SECONDS: float = 10.0
    PROVIDER_TIMEOUT_SECONDS: float = 10.0
    SWEEP_GRACE_SECONDS: int = 60
    RETENTION_DAYS: int = 90
    OFFICE_NAME: str = "UBND xã Đại Thanh"
    OFFICE_ADDRESS: str = "Bộ phận Một cửa UBND xã"
    OFFICE_HOURS: str = "7h30-17h thứ Hai đến thứ Sáu"
    # Reliability and security: inbound rate limits ("N/second|minute|hour|day", or "off")
    # and the age at which a message stuck in `sending` is reconciled with its provider.
    RATE_LIMIT_PER_IP: str = "120/minute"
    RATE_LIMIT_AUTH_FAILURES_PER_IP: str = "20/minute"
    RATE_LIMIT_PER_PHONE: str = "10/minute"
    SENDING_STALE_SECONDS: int = 120
    # Reverse proxies in front of the web processes: the client's address is then taken from
    # the last TRUSTED_PROXIES entries of X-Forwarded-For (0: the connection's own address).
    TRUSTED_PROXIES: int = 0
    # Reminders and the working-day calendar (docs/reminders.md). Times are local, "HH:MM".
    REMINDER_DAY_BEFORE_AT: str = "17:00"  # "off" disables the day-before reminder
    REMINDER_SAME_DAY_AT: str = "07:30"  # "off" disables the same-day reminder
    REMINDER_SAME_DAY_MINUTES_BEFORE: int = 120
    DOSSIER_REMINDER_WORKING_DAYS: int = 3  # 0 disables reminders for uncollected results
    DOSSIER_REMINDER_REPEATS: int = 2
    DOSSIER_REMINDER_AT: str = "08:00"
    # ISO dates (2026-02-16) and yearly dates (--09-02); HOLIDAY_CALENDAR adds a country's own.
    PUBLIC_HOLIDAYS: str = "--01-01,--04-30,--05-01,--09-02"
    HOLIDAY_CALENDAR: str = "VN"
    # Public API: per-key limits, bulk sends, delivery callbacks to API clients
    API_RATE_LIMIT_PER_MINUTE: int = 600
    API_DAILY_CAP: int = 50_000
    API_BULK_MAX_BYTES: int = 8 * 1024 * 1024
    API_BULK_CHUNK_SIZE: int = 500
    CALLBACK_TIMEOUT_SECONDS: float = 10.0
    CALLBACK_RETRY_BASE_SECONDS: float = 30.0
    CALLBACK_RETRY_HOURS: float = 24.0
    # Two-way SMS (inbound keywords): most replies one number gets in an hour (auto-responders).
    INBOUND_REPLY_LIMIT_PER_HOUR: int = 10
    # USSD menu: the aggregator's shared secret (empty: not checked) and how long a session's
    # listed choices and answers are kept in Redis.
    USSD_SHARED_SECRET: str = ""
    USSD_STATE_TTL_SECONDS: int = 300
    # Staff console (sessions, login throttling, pages, notices)
    CONSOLE_SESSION_HOURS: int = 12
    CONSOLE_LOGIN_MAX_FAILURES: int = 5
    CONSOLE_LOGIN_LOCKOUT_SECONDS: int = 900
    CONSOLE_PAGE_SIZE: int = 50
    NOTICE_CSV_MAX_ROWS: int = 10_000
    NOTICE_CSV_MAX_BYTES: int = 4 * 1024 * 1024
    # Delivery at scale: worker concurrency, batching, provider rate limits, failover, metrics.
    SEND_CONCURRENCY: int = 96
    SEND_BATCH_SIZE: int = 1000
    SMS_RATE_LIMITS: str = ""
    SMS_RATE_LIMIT_MARGIN: float = 0.03
    RATE_LIMIT_DEFAULT_PAUSE_SECONDS: float = 1.0
    FAILOVER_WINDOW_SECONDS: int = 60
    FAILOVER_ERROR_RATE: float = 0.5
    FAILOVER_MIN_REQUESTS: int = 10
    FAILOVER_COOLDOWN_SECONDS: float = 30.0
    METRICS_ENABLED: bool = True
    LOG_LEVEL: str = "INFO"
    TESTING: bool = False

    @classmethod
    def from_env(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> Settings:
        """Build settings from the environment, then apply explicit overrides (tests, factories)."""
        environ = os.environ if environ is None else environ
        overrides = dict(overrides or {})
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides.pop(f.name)
            elif environ.get(f.name, "") != "":
                try:
                    values[f.name] = _coerce(environ[f.name], hints[f.name])
                except ValueError:
                    raise ValueError(
                        f"{f.name}={environ[f.name]!r} is not a valid {hints[f.name].__name__}"
                    ) from None
        if overrides:
            raise ValueError(f"Unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)

    def __post_init__(self) -> None:
        # Fail at start-up with the variable's name rather than at the first message.
        try:
            ZoneInfo(self.TIMEZONE)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"TIMEZONE: {self.TIMEZONE!r} is not a time zone such as Asia/Ho_Chi_Minh"
            ) from None
        _ = self.quiet_hours, self.public_holidays, self.twilio_shared_keys
        for name in CLOCK_SETTINGS:
            self.clock(name)
        for name in NON_NEGATIVE_INT_SETTINGS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.TIMEZONE)

    @property
    def quiet_hours(self) -> tuple[time, time] | None:
        """(start, end) in local time, or None when quiet hours are switched off ("" or "off")."""
        raw = self.QUIET_HOURS.strip()
        if raw.lower() in _OFF:
            return None
        parts = raw.replace("–", "-").split("-")
        if len(parts) != 2:
            raise ValueError(f"QUIET_HOURS must look like 21:00-07:00 or be 'off', got {raw!r}")
        start, end = (parse_clock(part, "QUIET_HOURS") for part in parts)
        return start, end

    def clock(self, name: str) -> time | None:
        """A time-of-day setting; None when it is switched off ("off")."""
        raw = str(getattr(self, name)).strip()
        if raw.lower() in _OFF and name in OPTIONAL_CLOCK_SETTINGS:
            return None
        return parse_clock(raw, name)

    @property
    def public_holidays(self) -> tuple[frozenset[date], frozenset[tuple[int, int]]]:
        """PUBLIC_HOLIDAYS as (dates, yearly (month, day) pairs)."""
        dates: set[date] = set()
        yearly: set[tuple[int, int]] = set()
        for entry in (e.strip() for e in self.PUBLIC_HOLIDAYS.split(",")):
            if not entry:
                continue
            try:
                if match := _YEARLY_RE.match(entry):
                    month, day = int(match[1]), int(match[2])
                    date(2000, month, day)  # a leap year, so --02-29 is accepted
                    yearly.add((month, day))
                else:
                    dates.add(date.fromisoformat(entry))
            except ValueError:
                raise ValueError(
                    f"PUBLIC_HOLIDAYS: {entry!r} is neither a date (2026-02-17) "
                    "nor a yearly date (--09-02)"
                ) from None
        return frozenset(dates), frozenset(yearly)

    @property
    def twilio_shared_keys(self) -> dict[str, str]:
        """TWILIO_WEBHOOK_SHARED_KEYS as {key id: secret}."""
        keys: dict[str, str] = {}
        for entry in filter(
            None, (part.strip() for part in self.TWILIO_WEBHOOK_SHARED_KEYS.split(","))
        ):
            key_id, _, secret = entry.partition(":")
            if not (key_id.strip() and secret.strip()):
                raise ValueError(
                    "TWILIO_WEBHOOK_SHARED_KEYS: each entry is <key id>:<secret>, "
                    "separated by commas"
                )
            keys[key_id.strip()] = secret.strip()
        return keys

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line."""
        return tuple(
            value
            for value in (
                self.SECRET_KEY,
                self.DOSSIER_WEBHOOK_SECRET,
                self.TWILIO_AUTH_TOKEN,
                self.ANDROID_GATEWAY_PASSWORD,
                self.ANDROID_GATEWAY_WEBHOOK_KEY,
                self.USSD_SHARED_SECRET,
                *self.twilio_shared_keys.values(),
            )
            if value
        )

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")


def parse_clock(raw: str, name: str) -> time:
    """A local time of day written 07:30, 7:30, 7h30 or 7h."""
    match = _CLOCK_RE.match(raw.strip())
    hour, minute = (int(match[1]), int(match[2] or 0)) if match else (24, 0)
    if hour > 23 or minute > 59:
        raise ValueError(f"{name}: {raw.strip()!r} is not a time of day such as 07:30")
    return time(hour, minute)


def _coerce(raw: str, kind: Any) -> Any:
    if kind is bool:
        return raw.strip().lower() in _TRUE
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw
