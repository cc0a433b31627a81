"""Admin pages: staff users, API keys and the audit log."""

from __future__ import annotations

from flask import abort, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from notifier.api import keys as api_keys
from notifier.models import ApiKey, StaffUser
from notifier.staff import accounts, audit
from notifier.web import services
from notifier.web.console.base import audit_action, back, bp, current_user, render, requires
from notifier.web.console.pages import page_args


def _users_page(status: int = 200, **context: object) -> ResponseReturnValue:
    with services().db.session() as db:
        users = accounts.list_users(db)
    return render("users.html", status, users=users, roles=accounts.ROLES, **context)


@bp.get("/users")
@requires("manage")
def users() -> ResponseReturnValue:
    return _users_page()


@bp.post("/users")
@requires("manage")
def user_create() -> ResponseReturnValue:
    username = request.form.get("username", "").strip()[:64]
    role = request.form.get("role", "")
    password = request.form.get("password", "")[:200]
    try:
        if not username or not username.replace("_", "").replace(".", "").isalnum():
            raise ValueError("username: letters, digits, dots and underscores only")
        with services().db.transaction() as db:
            accounts.create_user(db, username, password, role)
            audit_action(db, "staff_created", f"staff:{username.lower()}", {"role": role})
    except ValueError as exc:
        return _users_page(400, error=str(exc))
    return back("console.users")


@bp.post("/users/<int:user_id>")
@requires("manage")
def user_update(user_id: int) -> ResponseReturnValue:
    me = current_user()
    action = request.form.get("action", "")
    try:
        with services().db.transaction() as db:
            user = db.get(StaffUser, user_id)
            if user is None:
                abort(404)
            if user.id == me.id and action in {"deactivate", "role"}:
                raise ValueError("you cannot lock yourself out")
            if action == "deactivate":
                user.active = False
            elif action == "activate":
                user.active = True
            elif action == "role":
                role = request.form.get("role", "")
                if role not in accounts.ROLES:
                    raise ValueError(f"role must be one of {', '.join(accounts.ROLES)}")
                user.role = role
            elif action == "password":
                accounts.set_password(user, request.form.get("password", "")[:200])
            else:
                abort(400)
            audit_action(db, f"staff_{action}", f"staff:{user.username}", {"role": user.role})
    except ValueError as exc:
        return _users_page(400, error=str(exc))
    return back("console.users")


@bp.get("/api-keys")
@requires("manage")
def keys() -> ResponseReturnValue:
    with services().db.session() as db:
        found = db.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()).limit(500)).all()
    return render("api_keys.html", keys=found, kinds=api_keys.KINDS)


@bp.post("/api-keys")
@requires("manage")
def key_create() -> ResponseReturnValue:
    name = request.form.get("name", "").strip()[:100]
    kind = request.form.get("kind", "live")
    if not name or kind not in api_keys.KINDS:
        abort(400)
    with services().db.transaction() as db:
        created, plaintext = api_keys.create_api_key(db, name, kind)
        db.flush()
        audit_action(db, "api_key_created", f"api_key:{created.id}", {"name": name, "kind": kind})
        found = db.scalars(select(ApiKey).order_by(ApiKey.created_at.desc()).limit(500)).all()
    # Shown once, on this page only: it is stored hashed.
    return render("api_keys.html", keys=found, kinds=api_keys.KINDS, new_key=plaintext)


@bp.post("/api-keys/<int:key_id>/revoke")
@requires("manage")
def key_revoke(key_id: int) -> ResponseReturnValue:
    with services().db.transaction() as db:
        found = db.get(ApiKey, key_id)
        if found is None:
            abort(404)
        api_keys.revoke(db, found)
        audit_action(db, "api_key_revoked", f"api_key:{key_id}", {"name": found.name})
    return back("console.keys")


@bp.get("/audit")
@requires("manage")
def audit_log() -> ResponseReturnValue:
    with services().db.session() as db:
        page = audit.entries(db, *page_args())
    return render("audit.html", page=page)
