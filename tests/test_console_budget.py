"""Console pages stay within a fixed number of SQL statements, however many dossiers there are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import event, insert, select

from notifier.core.runtime import Services
from notifier.models import Dossier, DossierEvent, Message, MessageStatusEvent
from tests.support.console import seed_console_data, staff_client

BUDGET = 8  # statements per page, the signed-in user's lookup included


@contextmanager
def counting(services: Services) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(services.db.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(services.db.engine, "before_cursor_execute", record)


def add_dossiers(services: Services, start: int, count: int) -> None:
    now = datetime.now(UTC)
    dossiers = [
        {
            "code": f"000.00.31.H26-250714-{n:05d}",
            "procedure": "Đăng ký khai sinh",
            "status": ("received", "processing", "ready", "returned")[n % 4],
            "status_changed_at": now - timedelta(hours=n % 500),
            "due_date": (now + timedelta(days=(n % 7) - 3)).date(),
            "citizen_name": "Nguyễn Văn An",
            "phone": f"+8491{n:07d}",
            "received_at": now - timedelta(hours=n % 600),
            "resolved_at": now if n % 4 >= 2 else None,
            "created_at": now - timedelta(hours=n % 600),
            "updated_at": now,
        }
        for n in range(start, start + count)
    ]
    with services.db.transaction() as session:
        session.execute(insert(Dossier), dossiers)
        ids = session.scalars(
            select(Dossier.id).where(Dossier.code.in_([d["code"] for d in dossiers[:2000]]))
        ).all()
        messages = [
            {
                "id": f"m-{start}-{i}",
                "phone": f"+8491{i:07d}",
                "template": "dossier_received",
                "body": "Ho so da duoc tiep nhan",
                "encoding": "GSM-7",
                "segments": 1,
                "characters": 23,
                "status": ("delivered", "failed", "sent")[i % 3],
                "failure_reason": "unreachable" if i % 3 == 1 else None,
                "kind": "dossier",
                "priority": "urgent",
                "essential": True,
                "attempts": 1,
                "created_at": now - timedelta(hours=i % 600),
                "updated_at": now,
                "sent_at": now - timedelta(hours=i % 600),
                "dossier_id": dossier_id,
            }
            for i, dossier_id in enumerate(ids)
        ]
        session.execute(insert(Message), messages)
        session.execute(
            insert(MessageStatusEvent),
            [
                {"message_id": m["id"], "status": m["status"], "at": now, "source": "test"}
                for m in messages
            ],
        )
        session.execute(
            insert(DossierEvent),
            [
                {
                    "event_id": f"ev-{start}-{i}",
                    "payload_hash": "0" * 64,
                    "dossier_id": dossier_id,
                    "status": "received",
                    "occurred_at": now,
                    "received_at": now,
                }
                for i, dossier_id in enumerate(ids)
            ],
        )


def measure(client: FlaskClient, services: Services, paths: list[str]) -> dict[str, int]:
    counts = {}
    for path in paths:
        with counting(services) as statements:
            response = client.get(path)
        assert response.status_code == 200, path
        counts[path] = len(statements)
    return counts


def test_pages_stay_within_the_query_budget_for_10000_dossiers(
    client: FlaskClient, services: Services
) -> None:
    ids = seed_console_data(services)
    client, _ = staff_client(services, client, "viewer")
    paths = [
        "/",
        "/dossiers",
        "/dossiers?q=H26",
        "/dossiers?q=0912345678",
        "/dossiers?page=3",
        f"/dossiers/{ids['dossier_id']}",
        "/messages",
        "/messages?status=failed&template=dossier_received",
        "/messages?page=2",
        f"/messages/{ids['failed_id']}",
        "/reception",
        f"/reception/sessions/{ids['session_id']}",
        "/reception/day",
    ]
    add_dossiers(services, 0, 200)
    small = measure(client, services, paths)
    add_dossiers(services, 200, 9_800)
    with services.db.session() as session:
        assert session.query(Dossier).count() == 10_001
    large = measure(client, services, paths)
    assert large == small
    assert max(large.values()) <= BUDGET, large
    page = client.get("/dossiers").text
    assert page.count('href="/dossiers/') == 50
