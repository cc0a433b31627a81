"""Console sign-in, sessions, CSRF, roles, security headers and masked phone numbers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier.core.runtime import Services
from notifier.models import AuditLog, Message, StaffUser
from notifier.web.console.i18n import VI
from tests.support.console import (
    PASSWORD,
    PHONES,
    csrf_token,
    login,
    make_staff,
    seed_console_data,
    signed_in,
    staff_client,
)

PAGES = ["/", "/dossiers", "/messages", "/reception", "/notices/new", "/users", "/api-keys"]


def audit_actions(services: Services) -> list[str]:
    with services.db.session() as session:
        return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all())


def count_messages(services: Services) -> int:
    with services.db.session() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


@pytest.mark.parametrize("path", [*PAGES, "/dossiers/1", "/reception/day", "/audit"])
def test_anonymous_requests_are_sent_to_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_login_form_has_the_contract_fields(client: FlaskClient) -> None:
    page = client.get("/login").text
    assert re.search(r'<input[^>]*name="username"', page)
    assert re.search(r'<input[^>]*name="password"[^>]*type="password"', page)
    assert re.search(r'<input type="hidden" name="csrf_token" value="[^"]+"', page)


def test_login_then_logout(client: FlaskClient, services: Services) -> None:
    make_staff(services, "lan", "officer")
    response = login(client, "LAN")
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302
    assert audit_actions(services) == ["login", "logout"]
    with services.db.session() as session:
        user = session.scalars(select(StaffUser)).one()
    assert user.last_login_at is not None


def test_session_cookie_flags(make_app: Any) -> None:
    app: Flask = make_app(PUBLIC_BASE_URL="https://notifier.example.test")
    services: Services = app.extensions["notifier"]
    make_staff(services, "lan", "officer")
    client = app.test_client()
    response = login(client, "lan")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=Lax" in cookie


def test_wrong_password_is_refused_and_audited(client: FlaskClient, services: Services) -> None:
    make_staff(services, "lan", "officer")
    response = login(client, "lan", "wrong password")
    assert response.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in response.text
    assert client.get("/").status_code == 302
    assert audit_actions(services) == ["login_failed"]


def test_failed_logins_are_rate_limited(make_app: Any) -> None:
    app: Flask = make_app(CONSOLE_LOGIN_MAX_FAILURES=3)
    services: Services = app.extensions["notifier"]
    make_staff(services, "lan", "officer")
    client = app.test_client()
    for _ in range(3):
        assert login(client, "lan", "guess").status_code == 401
    # Even the right password is refused while the lockout lasts.
    blocked = login(client, "lan", PASSWORD)
    assert blocked.status_code == 429
    assert client.get("/").status_code == 302
    assert audit_actions(services)[-1] == "login_blocked"
    services.redis.flushdb()
    assert login(client, "lan", PASSWORD).status_code == 302


def test_login_never_redirects_to_another_site(client: FlaskClient, services: Services) -> None:
    make_staff(services, "lan", "officer")
    token = csrf_token(client)
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post(
            "/login",
            data={"username": "lan", "password": PASSWORD, "csrf_token": token, "next": target},
        )
        assert response.headers["Location"] == "/"
        client.get("/logout")
        token = csrf_token(client)


def test_a_password_change_ends_other_sessions(
    app: Flask, client: FlaskClient, services: Services
) -> None:
    make_staff(services, "boss", "admin")
    lan_id = make_staff(services, "lan", "officer")
    signed_in(client, "lan")
    admin = app.test_client()
    token = signed_in(admin, "boss")
    response = admin.post(
        f"/users/{lan_id}",
        data={"action": "password", "password": "another long one", "csrf_token": token},
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_a_deactivated_user_is_signed_out(
    app: Flask, client: FlaskClient, services: Services
) -> None:
    make_staff(services, "boss", "admin")
    lan_id = make_staff(services, "lan", "officer")
    signed_in(client, "lan")
    admin = app.test_client()
    token = signed_in(admin, "boss")
    admin.post(f"/users/{lan_id}", data={"action": "deactivate", "csrf_token": token})
    assert client.get("/").status_code == 302
    assert login(client, "lan").status_code == 401


# --- CSRF ------------------------------------------------------------------------------------


def test_forms_without_a_valid_csrf_token_are_refused(
    client: FlaskClient, services: Services
) -> None:
    client, token = staff_client(services, client, "officer")
    form = {"phone": "0912345678", "body": "Xin chào", "template": "", "language": "vi"}
    for data in (form, {**form, "csrf_token": "forged"}, {**form, "csrf_token": token + "x"}):
        response = client.post("/notices/new/one", data=data)
        assert response.status_code == 400
        assert "Biểu mẫu đã hết hạn" in response.text
    assert count_messages(services) == 0
    assert client.post("/notices/new/one", data={**form, "csrf_token": token}).status_code == 200
    assert count_messages(services) == 1


def test_login_itself_needs_the_csrf_token(client: FlaskClient, services: Services) -> None:
    make_staff(services, "lan", "officer")
    response = client.post("/login", data={"username": "lan", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_a_token_from_another_session_is_refused(
    app: Flask, client: FlaskClient, services: Services
) -> None:
    make_staff(services, "lan", "officer")
    make_staff(services, "mai", "officer")
    signed_in(client, "lan")
    other = app.test_client()
    other_token = signed_in(other, "mai")
    response = client.post(
        "/notices/new/one",
        data={"phone": "0912345678", "body": "Xin chào", "csrf_token": other_token},
    )
    assert response.status_code == 400
    assert count_messages(services) == 0


# --- roles -----------------------------------------------------------------------------------


def _posts(ids: dict[str, Any]) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        "notice": (
            "/notices/new/one",
            {"phone": "0912345678", "body": "Xin chào", "template": "", "language": "vi"},
        ),
        "notice_session": ("/notices/new/session", {"session_id": str(ids["session_id"])}),
        "resend": (f"/messages/{ids['failed_id']}/resend", {}),
        "user": ("/users", {"username": "new", "role": "admin", "password": "long enough"}),
        "session": (
            "/reception/sessions",
            {
                "date": _session_day(ids),
                "starts": "08:00",
                "ends": "09:00",
                "host": "Chủ tịch",
                "location": "UBND xã",
                "capacity": "4",
            },
        ),
        "api_key": ("/api-keys", {"name": "onestop", "kind": "live"}),
    }


ALLOWED = {
    "viewer": set(),
    "officer": {"notice", "notice_session", "resend", "session"},
    "admin": {"notice", "notice_session", "resend", "session", "user", "api_key"},
}


@pytest.mark.parametrize("role", ["viewer", "officer", "admin"])
def test_each_role_is_refused_what_it_may_not_do(
    client: FlaskClient, services: Services, role: str
) -> None:
    ids = seed_console_data(services)
    client, token = staff_client(services, client, role)
    for name, (path, data) in _posts(ids).items():
        before = count_messages(services), len(audit_actions(services))
        response = client.post(
            path, data={**data, "body": data.get("body", "Xin chào"), "csrf_token": token}
        )
        if name in ALLOWED[role]:
            assert response.status_code in (200, 302), (name, response.status_code)
        else:
            assert response.status_code == 403, (name, response.status_code)
            assert (count_messages(services), len(audit_actions(services))) == before
    for path, needs in (("/notices/new", "officer"), ("/users", "admin"), ("/api-keys", "admin")):
        allowed = role == "admin" or role == needs
        assert client.get(path).status_code == (200 if allowed else 403), path


def test_viewer_never_sees_a_full_phone_number(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "viewer")
    pages = _read_pages(ids)
    pages += [f"/dossiers?q={PHONES[0]}", f"/messages?phone=0{PHONES[1][3:]}"]
    for path in pages:
        text = client.get(path).text
        for phone in PHONES:
            national = "0" + phone[3:]
            assert phone not in text, path
            assert national not in text, path
            assert phone[3:] not in text, path
    assert "+84 91x xxx 678" in client.get(f"/dossiers/{ids['dossier_id']}").text


def test_officer_sees_full_numbers(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "officer")
    assert PHONES[0] in client.get(f"/dossiers/{ids['dossier_id']}").text
    assert PHONES[2] in client.get(f"/reception/sessions/{ids['session_id']}").text


def _read_pages(ids: dict[str, Any]) -> list[str]:
    return [
        "/",
        "/dossiers",
        f"/dossiers/{ids['dossier_id']}",
        "/messages",
        f"/messages/{ids['delivered_id']}",
        f"/messages/{ids['failed_id']}",
        "/reception",
        f"/reception/sessions/{ids['session_id']}",
        "/reception/day?date=" + _session_day(ids),
    ]


def _session_day(ids: dict[str, Any]) -> str:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    return (
        (datetime.now(UTC) + timedelta(days=2))
        .astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
        .date()
        .isoformat()
    )


# --- headers and words -----------------------------------------------------------------------


def test_console_pages_send_security_headers(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    for path in ["/login"]:
        _check_headers(client.get(path).headers)
    client, _ = staff_client(services, client, "admin")
    for path in [*PAGES, *_read_pages(ids)]:
        response = client.get(path)
        assert response.status_code == 200, path
        _check_headers(response.headers)


def _check_headers(headers: Any) -> None:
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script_or_style(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "admin")
    for path in [*PAGES, *_read_pages(ids), "/notices/new?mode=session", "/notices/new?mode=csv"]:
        text = client.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert " style=" not in text, path
        assert " onclick=" not in text, path
        assert " onsubmit=" not in text, path


TEMPLATES = (
    Path(__file__).resolve().parents[1] / "notifier" / "web" / "console" / "templates" / "console"
)


_T_CALL = re.compile(r"""\bt\(\s*(?:"([^"]+)"|'([^']+)')""")


def test_every_console_text_has_its_vietnamese() -> None:
    used = {
        double or single
        for path in TEMPLATES.glob("*.html")
        for double, single in _T_CALL.findall(path.read_text())
    }
    assert len(used) > 100
    assert sorted(used - set(VI)) == []


def test_english_switch(client: FlaskClient, services: Services) -> None:
    client, _ = staff_client(services, client, "viewer")
    assert "Tổng quan" in client.get("/").text
    response = client.get("/lang/en?next=/dossiers")
    assert response.headers["Location"] == "/dossiers"
    page = client.get("/dossiers").text
    assert "Search by dossier code or phone number" in page
    assert "Tìm theo mã hồ sơ" not in page
    assert client.get("/lang/fr").status_code == 404
