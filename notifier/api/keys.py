"""API keys: random bearer tokens shown once; only their SHA-256 is stored.

A key is `live` (its messages go to the configured SMS provider) or `test` (its messages go
through the whole pipeline to the simulated provider and never reach a phone). A key may carry
a callback URL and secret, and its own rate limit and daily cap.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.core.config import Settings
from notifier.core.db import utcnow
from notifier.models import ApiKey
from notifier.providers import SIMULATED

KEY_PREFIX = "ntf_"
LIVE = "live"
TEST = "test"
KINDS = (LIVE, TEST)


def hash_key(key: str) -> str:
    # A salted slow hash is for guessable passwords; a 256-bit random key only needs a one-way hash.
    return hashlib.sha256(key.encode()).hexdigest()


def check_callback_url(url: str) -> str:
    """The URL, stripped, if it is an absolute http(s) URL; ValueError otherwise."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError("the callback URL must be an absolute http:// or https:// URL")
    if len(url) > 500:
        raise ValueError("the callback URL is longer than 500 characters")
    return url


def create_api_key(
    session: Session,
    name: str,
    kind: str = LIVE,
    *,
    callback_url: str | None = None,
    callback_secret: str | None = None,
    rate_limit_per_minute: int | None = None,
    daily_cap: int | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never stored.

    A callback URL without a secret gets a random secret (read it back from the row once).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("the key name must have 1 to 100 characters")
    if callback_url:
        callback_url = check_callback_url(callback_url)
        callback_secret = callback_secret or secrets.token_urlsafe(32)
    elif callback_secret:
        raise ValueError("a callback secret needs a callback URL")
    plaintext = f"{KEY_PREFIX}{kind}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(
        name=name,
        kind=kind,
        prefix=plaintext[:12],
        key_hash=hash_key(plaintext),
        callback_url=callback_url or None,
        callback_secret=callback_secret or None,
        rate_limit_per_minute=rate_limit_per_minute,
        daily_cap=daily_cap,
    )
    session.add(api_key)
    return api_key, plaintext


def authenticate(session: Session, token: str, now: datetime | None = None) -> ApiKey | None:
    """The active key matching `token`, or None."""
    if not token.startswith(KEY_PREFIX) or len(token) > 200:
        return None
    api_key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(token)))
    if api_key is None or api_key.revoked_at is not None:
        return None
    now = now or utcnow()
    # Coarse on purpose: one write a minute per key, not one per request.
    if api_key.last_used_at is None or now - api_key.last_used_at > timedelta(minutes=1):
        api_key.last_used_at = now
    return api_key


def revoke(session: Session, api_key: ApiKey, now: datetime | None = None) -> None:
    api_key.revoked_at = api_key.revoked_at or now or utcnow()


def find(session: Session, id_or_prefix: str) -> ApiKey | None:
    """A key by its numeric id or by the prefix `list_keys` shows (e.g. `ntf_live_AbC`)."""
    value = id_or_prefix.strip()
    if value.isdigit():
        return session.get(ApiKey, int(value))
    found = session.scalars(select(ApiKey).where(ApiKey.prefix == value)).all()
    return found[0] if len(found) == 1 else None


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def provider_for(api_key: ApiKey) -> str | None:
    """The provider a key's messages are bound to: the simulated one for test keys."""
    return SIMULATED if api_key.kind == TEST else None


@dataclass(frozen=True)
class Limits:
    """A key's effective limits; None means unlimited."""

    per_minute: int | None
    daily_cap: int | None


def limits(settings: Settings, api_key: ApiKey) -> Limits:
    def effective(own: int | None, default: int) -> int | None:
        value = default if own is None else own
        return value if value > 0 else None

    return Limits(
        per_minute=effective(api_key.rate_limit_per_minute, settings.API_RATE_LIMIT_PER_MINUTE),
        daily_cap=effective(api_key.daily_cap, settings.API_DAILY_CAP),
    )
