"""Who is signed in to the console: the staff user of this browser session, and CSRF.

Shared by the console's pages and by the JSON endpoints a signed-in officer may call from them
(`/api/v1/preview`), so neither reaches into the other.
"""

from __future__ import annotations

import hashlib

from flask import g, session
from flask_wtf.csrf import CSRFProtect

from notifier.models import StaffUser
from notifier.web import services

csrf = CSRFProtect()


def password_stamp(user: StaffUser) -> str:
    """Changes when the password does, so a reset ends every session of that user."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def load_staff() -> StaffUser | None:
    """The staff user of this browser session (cached on `g`), or None."""
    if "staff" in g:
        found: StaffUser | None = g.staff
        return found
    user: StaffUser | None = None
    staff_id = session.get("staff_id")
    if isinstance(staff_id, int):
        with services().db.session() as db:
            user = db.get(StaffUser, staff_id)
        if user is None or not user.active or session.get("stamp") != password_stamp(user):
            user = None
            session.pop("staff_id", None)
    g.staff = user
    return user
