"""Staff accounts of the console. Passwords are hashed with werkzeug's scrypt."""

from __future__ import annotations

import functools
import logging

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from notifier.core.ratelimit import RateLimiter
from notifier.models import StaffUser

log = logging.getLogger(__name__)

ROLES = ("admin", "officer", "viewer")
MIN_PASSWORD_LENGTH = 8


def create_user(session: Session, username: str, password: str, role: str) -> StaffUser:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    username = username.strip().lower()
    if session.scalar(select(StaffUser).where(StaffUser.username == username)):
        raise ValueError(f"user {username!r} already exists")
    user = StaffUser(username=username, password_hash=generate_password_hash(password), role=role)
    session.add(user)
    return user


def list_users(session: Session, limit: int = 500) -> list[StaffUser]:
    """Staff users by username."""
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username).limit(limit)).all())


def verify_password(user: StaffUser, password: str) -> bool:
    return check_password_hash(user.password_hash, password)


def find_active(session: Session, username: str) -> StaffUser | None:
    user = session.scalar(select(StaffUser).where(StaffUser.username == username.strip().lower()))
    return user if user is not None and user.active else None


def authenticate(session: Session, username: str, password: str) -> StaffUser | None:
    """The active user with these credentials, or None. Hashes even for unknown users."""
    user = find_active(session, username)
    if user is None:
        # Same work as a real check, so response time does not reveal which usernames exist.
        check_password_hash(_dummy_hash(), password)
        return None
    return user if verify_password(user, password) else None


@functools.cache
def _dummy_hash() -> str:
    # Made on first use, not at import: scrypt takes 32 MB for a moment, and every process
    # (web workers, queue workers) imports this module while only a failed login needs it.
    return generate_password_hash("not-a-real-password")


# What each role may do in the console. Viewers only read, and never see full phone numbers.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "send", "schedule", "manage", "see_phones"}),
    "officer": frozenset({"read", "send", "schedule", "see_phones"}),
    "viewer": frozenset({"read"}),
}


def can(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def set_password(user: StaffUser, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = generate_password_hash(password)


class LoginThrottle:
    """Counts failed logins per username and per client address (the shared Redis limiter).

    After `max_failures` failures within `window_seconds`, further attempts are refused. If
    Redis is down the limiter lets attempts through (passwords are still checked); the database
    stays the only thing a login depends on.
    """

    USER_SCOPE = "console-login-user"
    IP_SCOPE = "console-login-ip"

    def __init__(self, limiter: RateLimiter, max_failures: int, window_seconds: int) -> None:
        self.limiter = limiter
        self.spec = f"{max_failures}/{window_seconds} second"

    def blocked(self, username: str, ip: str) -> bool:
        return not (
            self.limiter.exhausted(self.USER_SCOPE, username.strip().lower(), self.spec).allowed
            and self.limiter.exhausted(self.IP_SCOPE, ip, self.spec).allowed
        )

    def failed(self, username: str, ip: str) -> None:
        self.limiter.hit(self.USER_SCOPE, username.strip().lower(), self.spec)
        self.limiter.hit(self.IP_SCOPE, ip, self.spec)

    def succeeded(self, username: str, ip: str) -> None:
        try:
            self.limiter.reset(self.USER_SCOPE, username.strip().lower(), self.spec)
        except RedisError as exc:
            log.warning("login throttle not reset, Redis unavailable: %s", exc)
