"""API keys: random bearer tokens shown once; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from notifier.db import utcnow
from notifier.models import ApiKey

KEY_PREFIX = "ntf_"
KINDS = ("live", "test")


def hash_key(key: str) -> str:
    # A salted slow hash is for guessable passwords; a 256-bit random key only needs a one-way hash.
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, name: str, kind: str = "live") -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never stored."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    plaintext = f"{KEY_PREFIX}{kind}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey(name=name, kind=kind, prefix=plaintext[:12], key_hash=hash_key(plaintext))
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
