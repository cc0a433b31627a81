"""Staff accounts of the console. Passwords are hashed with werkzeug's scrypt."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from notifier.models import StaffUser

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


def verify_password(user: StaffUser, password: str) -> bool:
    return check_password_hash(user.password_hash, password)
