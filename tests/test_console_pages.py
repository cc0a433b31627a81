"""Console pages: dashboard figures, dossier search and timeline, messages, resending."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier.core.runtime import Services
from notifier.models import AuditLog, Message
from notifier.seeding import demo
from tests.support.console import PHONES, login, seed_console_data, staff_client
from tests.support.helpers import run_jobs

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def figures(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="(\w+)">([^<]+)<', page))


def test_dashboard_shows_the_demo_commune(client: FlaskClient, services: Services) -> None:
    demo.seed(services)
    page = signed_in_page(client, "/", services)
    found = figures(page)
    assert found["received"] == "292"
    assert found["resolved"] == "227/292, 77.7%"
    assert found["in_progress"] == "15"
    assert found["waiting"] == "50"
    on_time, resolved = re.match(r"(\d+)/(\d+), ", found["on_time"]).groups()  # type: ignore[union-attr]
    assert resolved == "227"
    assert 150 < int(on_time) < 227


def test_dashboard_counts_messages_segments_and_cost(
    client: FlaskClient, services: Services
) -> None:
    seed_console_data(services)
    today = datetime.now(TZ).date()
    page = signed_in_page(
        client, f"/?from={today - timedelta(days=7)}&to={today + timedelta(days=3)}", services
    )
    found = figures(page)
    assert found["sent"] == "2"
    assert found["delivered"] == "1"
    assert found["failed"] == "1"
    assert found["segments"] == "2"
    assert found["cost"] == "1.600 ₫"
    assert found["overdue"] == "1"
    assert found["received"] == "1"
    # One bar per status kind on the day the messages were made, in the SVG chart.
    assert page.count('class="bar bar-sent"') == 1
    assert "Chủ tịch UBND xã" in page  # bookings per session


def test_dashboard_period_excludes_other_days(client: FlaskClient, services: Services) -> None:
    seed_console_data(services)
    long_ago = (datetime.now(TZ) - timedelta(days=400)).date()
    page = signed_in_page(client, f"/?from={long_ago}&to={long_ago + timedelta(days=3)}", services)
    assert figures(page)["received"] == "0"
    assert figures(page)["sent"] == "0"
    bad = client.get("/?from=2025-07-10&to=2025-07-01")
    assert bad.status_code == 400
    assert "Khoảng thời gian không hợp lệ" in bad.text


def signed_in_page(client: FlaskClient, path: str, services: Services) -> str:
    client, _ = staff_client(services, client, "viewer")
    response = client.get(path)
    assert response.status_code == in_ok(response.status_code)
    return response.text


def in_ok(code: int) -> int:
    assert code == 200
    return code


def test_dossier_search_by_code_or_phone(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "officer")
    link = f"/dossiers/{ids['dossier_id']}"
    for query in ("000.00.31.h26-250714-0001", "250714", "0912 345 678", "+84912345678"):
        assert link in client.get("/dossiers", query_string={"q": query}).text, query
    for query in ("999", "0987654321", "%", "_"):
        assert link not in client.get("/dossiers", query_string={"q": query}).text, query


def test_dossier_timeline_shows_events_and_messages(
    client: FlaskClient, services: Services
) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "officer")
    page = client.get(f"/dossiers/{ids['dossier_id']}").text
    assert "Được tiếp nhận" in page
    assert "Đã nhận" in page  # the delivered SMS
    assert "Không liên lạc được số này" in page  # the failed one, in plain words
    assert "quá hạn" in page
    assert client.get("/dossiers/999999").status_code == 404


def test_messages_filter_by_status_template_and_date(
    client: FlaskClient, services: Services
) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "officer")
    failed = client.get("/messages?status=failed").text
    assert f"/messages/{ids['failed_id']}" in failed
    assert f"/messages/{ids['delivered_id']}" not in failed
    assert "Không liên lạc được số này" in failed
    assert (
        "1 found" in client.get("/lang/en?next=/messages?status=failed", follow_redirects=True).text
    )
    assert (
        f"/messages/{ids['delivered_id']}" in client.get("/messages?template=dossier_received").text
    )
    assert "/messages/" not in client.get("/messages?template=-").text.split("</form>")[1]
    today = datetime.now(TZ).date()
    assert "2 found" in client.get(f"/messages?from={today - timedelta(days=1)}").text
    assert "0 found" in client.get(f"/messages?to={today - timedelta(days=3)}").text
    assert "2 found" in client.get("/messages?status=nonsense&from=garbage").text


def test_resend_a_failed_message(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, token = staff_client(services, client, "officer")
    response = client.post(f"/messages/{ids['failed_id']}/resend", data={"csrf_token": token})
    assert response.status_code == 302
    run_jobs(services)
    with services.db.session() as session:
        original = session.get_one(Message, ids["failed_id"])
        copies = session.scalars(
            select(Message).where(Message.phone == PHONES[1], Message.id != original.id)
        ).all()
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "message_resend")).one()
    assert original.status == "failed"
    assert len(copies) == 1
    assert copies[0].status == "delivered"  # the console provider delivers at once
    assert copies[0].body == original.body
    assert copies[0].dossier_id == original.dossier_id
    assert copies[0].staff_user_id is not None
    assert audit.target == f"message:{original.id}"
    assert audit.actor == "staff:officer"


def test_only_failed_messages_are_resent(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, token = staff_client(services, client, "officer")
    response = client.post(f"/messages/{ids['delivered_id']}/resend", data={"csrf_token": token})
    assert response.status_code == 409
    assert "Chỉ gửi lại được tin nhắn bị lỗi" in response.text
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 2


def test_message_page_shows_history_and_reason(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "officer")
    page = client.get(f"/messages/{ids['failed_id']}").text
    assert "Không liên lạc được số này" in page
    assert "Gửi lại" in page
    assert client.get("/messages/not-a-message").status_code == 404


def test_print_the_days_list(client: FlaskClient, services: Services) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "officer")
    day = (datetime.now(UTC) + timedelta(days=2)).astimezone(TZ).date()
    page = client.get(f"/reception/day?date={day}").text
    assert "BK0000" in page
    assert "BK0001" in page
    assert "BK0000" not in client.get(f"/reception/day?date={day + timedelta(days=1)}").text
    assert f"/reception/sessions/{ids['session_id']}" in client.get("/reception").text


def test_admin_creates_and_revokes_an_api_key(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "admin")
    page = client.post("/api-keys", data={"name": "onestop", "kind": "live", "csrf_token": token})
    key = re.search(r'<pre id="new-key">([^<]+)</pre>', page.text).group(1)  # type: ignore[union-attr]
    assert client.get("/api-keys").text.count(key) == 0  # shown once only
    preview = client.post(
        "/api/v1/preview", json={"body": "Xin chào"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert preview.status_code == 200
    key_id = re.search(r"/api-keys/(\d+)/revoke", client.get("/api-keys").text).group(1)  # type: ignore[union-attr]
    client.post(f"/api-keys/{key_id}/revoke", data={"csrf_token": token})
    refused = client.post(
        "/api/v1/preview", json={"body": "Xin chào"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert refused.status_code == 401
    assert [a for a in audit_of(services) if a.startswith("api_key")] == [
        "api_key_created",
        "api_key_revoked",
    ]


def test_admin_manages_users(client: FlaskClient, services: Services) -> None:
    client, token = staff_client(services, client, "admin")
    ok = client.post(
        "/users",
        data={"username": "mai", "role": "viewer", "password": "long enough", "csrf_token": token},
    )
    assert ok.status_code == 302
    short = client.post(
        "/users",
        data={"username": "hoa", "role": "viewer", "password": "short", "csrf_token": token},
    )
    assert short.status_code == 400
    assert "at least 8" in short.text
    assert login(client.application.test_client(), "mai", "long enough").status_code == 302
    assert "staff_created" in audit_of(services)


def audit_of(services: Services) -> list[str]:
    with services.db.session() as session:
        return list(session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all())


def test_simulator_shows_what_each_phone_received(client: FlaskClient, services: Services) -> None:
    seed_console_data(services)
    client, _ = staff_client(services, client, "officer")
    page = client.get("/simulator").text
    assert "/simulator?phone=%2B84912345678" in page
    conversation = client.get("/simulator", query_string={"phone": PHONES[0]}).text
    assert f"Lien he {PHONES[0]}" in conversation


def test_simulator_exists_only_with_the_console_provider(
    make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    app = make_app(**twilio_settings)
    services: Services = app.extensions["notifier"]
    client, _ = staff_client(services, app.test_client(), "admin")
    assert client.get("/simulator").status_code == 404
    assert "Giả lập điện thoại" not in client.get("/").text
