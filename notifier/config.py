"""Configuration read from the environment (names in CONTRACTS.md), overridable in tests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import time
from pathlib import Path
from typing import Any, get_type_hints
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = PROJECT_ROOT / "instance"

_TRUE = {"1", "true", "yes", "on"}


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
                values[f.name] = _coerce(environ[f.name], hints[f.name])
        if overrides:
            raise ValueError(f"Unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.TIMEZONE)

    @property
    def quiet_hours(self) -> tuple[time, time] | None:
        """(start, end) in local time, or None when quiet hours are switched off ("" or "off")."""
        if self.QUIET_HOURS.strip().lower() in {"", "off", "none"}:
            return None
        start, end = (time.fromisoformat(part.strip()) for part in self.QUIET_HOURS.split("-", 1))
        return start, end

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
            )
            if value
        )

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")


def _coerce(raw: str, kind: Any) -> Any:
    if kind is bool:
        return raw.strip().lower() in _TRUE
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw
