"""The console in Debian's Chromium (headless, through Playwright) against a real HTTP server."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.serving import make_server

from notifier.core.runtime import Services
from notifier.models import Message
from notifier.reception import Reception
from notifier.reports import dashboard
from notifier.seeding import demo
from tests.support.console import PASSWORD, make_staff, seed_console_data
from tests.support.helpers import ARTIFACTS, run_jobs

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed"),
]


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(base_url=server, viewport={"width": 1100, "height": 900})
        tab = context.new_page()
        tab.errors = []  # type: ignore[attr-defined]
        # Script errors and Content-Security-Policy violations; a 400 from the preview while
        # a placeholder is still missing is expected and shown to the user.
        tab.on(
            "console",
            lambda m: "Content Security Policy" in m.text and tab.errors.append(m.text),  # type: ignore[attr-defined]
        )
        tab.on("pageerror", lambda e: tab.errors.append(str(e)))  # type: ignore[attr-defined]
        yield tab
        context.close()
        browser.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def sign_in(page: Any, username: str) -> None:
    page.goto("/")
    assert "/login" in page.url
    shot(page, "login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))


def test_officer_sends_notices_and_checks_the_dashboard(
    page: Any, services: Services, tmp_path: Path
) -> None:
    demo.seed(services)
    ids = seed_console_data(services)
    make_staff(services, "lan", "officer")
    sign_in(page, "lan")

    # The dashboard's figures are the database's.
    with services.db.session() as session:
        today = dashboard.Period.last_days(_today(services)).end
        figures = dashboard.dossier_figures(
            session, dashboard.Period.last_days(today), services.settings.tz, today
        )
    assert page.text_content('[data-figure="received"]') == str(figures.received)
    assert page.text_content('[data-figure="resolved"]') == str(figures.resolved_rate)
    assert "/293, " in str(figures.resolved_rate)  # the demo's 292 and one more
    assert page.text_content('[data-figure="overdue"]') == str(figures.overdue)
    assert page.locator("svg rect.bar").count() >= 1
    shot(page, "dashboard")

    # One phone, with the live preview as a basic phone shows it.
    page.click("text=Gửi thông báo")
    page.fill("input[name=phone]", "0912 345 678")
    page.fill(
        "textarea[name=body]", "Kính gửi Ông/Bà {{ ten }}, mời Ông/Bà đến UBND xã nhận kết quả."
    )
    page.fill("textarea[name=personalisation]", "ten = Trần Thị Bình")
    expect(page.locator("[data-preview-body]")).to_contain_text("Tran Thi Binh")
    assert page.get_attribute("[data-preview-meter]", "data-segments") == "1"
    assert page.get_attribute("[data-preview-meter]", "data-encoding") == "GSM-7"
    shot(page, "notice-one")
    page.click("#notice-form button[type=submit]")
    page.wait_for_selector("#created-count")
    assert page.get_attribute("#created-count", "data-count") == "1"
    shot(page, "notice-done")

    # A CSV of 20 rows, 2 of them bad: reported first, then 18 sent.
    csv_file = tmp_path / "danh-sach.csv"
    lines = ["so_dien_thoai,ten"] + [f"09{n:08d},Người {n}" for n in range(20)]
    lines[3] = "024 3825 1234,Máy bàn"
    lines[15] = "09000000xx,Sai số"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    page.goto("/notices/new?mode=csv")
    page.set_input_files("input[name=file]", str(csv_file))
    page.fill(
        "textarea[name=body]",
        "Kính gửi Ông/Bà {{ ten }}: lịch tiếp công dân tuần này đổi sang thứ Năm.",
    )
    page.click("#notice-form button[type=submit]")
    page.wait_for_selector("#check-summary")
    assert page.get_attribute("#check-summary", "data-valid") == "18"
    assert page.get_attribute("#check-summary", "data-bad") == "2"
    assert page.locator("table.errors tbody tr").count() == 2
    shot(page, "notice-csv-report")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#confirm-send button[type=submit]")
    page.wait_for_selector("#created-count")
    assert page.get_attribute("#created-count", "data-count") == "18"
    run_jobs(services)
    with services.db.session() as session:
        notices = session.scalars(select(Message).where(Message.kind == "notice")).all()
    assert len(notices) == 19
    assert {m.status for m in notices} == {"delivered"}

    # A reception session created, booked by two citizens, then cancelled: both are told.
    page.goto("/reception")
    page.click("text=Thêm buổi tiếp công dân")
    day = (datetime.now(services.settings.tz) + timedelta(days=5)).date()
    page.fill("#session-form input[name=date]", day.isoformat())
    page.fill("#session-form input[name=host]", "Phó Chủ tịch UBND xã")
    shot(page, "reception-new")
    page.click("#session-form button[type=submit]")
    page.wait_for_selector("#cancel-form", state="attached")
    session_id = int(page.url.rsplit("/", 1)[1])
    for phone in ("0912000001", "0912000002"):
        assert Reception(services).book(phone=phone, channel="sms", session_id=session_id).ok
    page.reload()
    assert page.locator("#bookings tbody tr").count() == 2
    page.click("text=Hủy buổi tiếp")
    page.fill("#cancel-form input[name=reason]", "Lãnh đạo đi họp đột xuất")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#cancel-form button[type=submit]")
    page.wait_for_selector("#bookings")
    assert page.locator("#cancel-form").count() == 0
    shot(page, "reception-cancelled")
    with services.db.session() as session:
        told = session.scalars(
            select(Message.phone).where(Message.template == "reception_session_cancelled")
        ).all()
    assert sorted(told) == ["+84912000001", "+84912000002"]

    # The other pages render and are captured.
    for name, path in [
        ("dossiers", "/dossiers?q=H26"),
        ("dossier", f"/dossiers/{ids['dossier_id']}"),
        ("messages", "/messages"),
        ("message", f"/messages/{ids['failed_id']}"),
        ("reception", "/reception"),
        ("reception-session", f"/reception/sessions/{ids['session_id']}"),
        ("reception-day", "/reception/day"),
        ("notice-session", "/notices/new?mode=session"),
        ("simulator", "/simulator?phone=%2B84912000001"),
        ("audit-forbidden", "/audit"),
    ]:
        page.goto(path)
        assert page.locator("h1").count() == 1, path
        shot(page, name)
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/")
    shot(page, "dashboard-phone")
    page.goto("/lang/en?next=/messages")
    assert page.locator("h1").text_content() == "Messages"
    shot(page, "messages-en")
    assert page.errors == []  # type: ignore[attr-defined]


def test_viewer_reads_but_cannot_send(page: Any, services: Services) -> None:
    ids = seed_console_data(services)
    make_staff(services, "xem", "viewer")
    sign_in(page, "xem")
    assert page.locator("text=Gửi thông báo").count() == 0
    page.goto(f"/dossiers/{ids['dossier_id']}")
    assert "+84 91x xxx 678" in page.content()
    assert "+84912345678" not in page.content()
    response = page.goto("/notices/new")
    assert response.status == 403
    shot(page, "viewer-forbidden")


def _today(services: Services) -> Any:
    from datetime import datetime

    return datetime.now(services.settings.tz).date()
