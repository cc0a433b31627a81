"""The core path: signed dossier webhook → message row → job → SMS at the (fake) Twilio API."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from notifier.core.runtime import Services
from notifier.dossiers import ingest
from notifier.models import Dossier, DossierEvent, Message, Reminder
from notifier.schemas.dossiers import DossierEventIn
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import DELETE, dossier_event, post_signed, run_jobs

EXPECTED_RECEIVED_SMS = (
    "UBND xa Dai Thanh: Ho so 000.00.31.H26-250714-0001 (Chung thuc ban sao tu ban chinh) "
    "da duoc tiep nhan. Ngay hen tra ket qua: 16/07/2025."
)


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return twilio_settings


def count(services: Services, model: type) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def only_message(services: Services) -> Message:
    with services.db.session() as session:
        return session.scalars(select(Message).options(selectinload(Message.history))).one()


def test_signed_event_sends_exactly_one_sms_with_the_right_text(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    response = post_signed(client, dossier_event())

    assert response.status_code == 202
    body = response.get_json()
    assert body["event_id"] == "onestop-2025-07-14-000123"
    assert body["duplicate"] is False
    [summary] = body["messages"]
    assert summary["status"] == "queued"
    assert summary["template"] == "dossier_received"
    assert summary["encoding"] == "GSM-7"
    assert summary["segments"] == 1

    run_jobs(services)

    [sms] = fake_twilio.messages
    assert sms.to == "+84912345678"
    assert sms.body == EXPECTED_RECEIVED_SMS
    assert sms.sender == "UBND-XA"
    assert sms.status_callback == "https://notifier.example.test/twilio/status"
    message = only_message(services)
    assert message.status == "sent"
    assert message.provider == "twilio"
    assert message.provider_message_id == sms.sid
    assert [h.status for h in message.history] == ["queued", "sending", "sent"]


def test_dossier_is_stored_with_upper_case_code(client: FlaskClient, services: Services) -> None:
    post_signed(client, dossier_event(**{"dossier.code": "000.00.31.h26-250714-0001"}))
    with services.db.session() as session:
        dossier = session.scalars(select(Dossier)).one()
    assert dossier.code == "000.00.31.H26-250714-0001"
    assert dossier.status == "received"
    assert dossier.phone == "0912 345 678"
    assert str(dossier.due_date) == "2025-07-16"


def test_replayed_event_sends_nothing_more(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    first = post_signed(client, dossier_event())
    run_jobs(services)
    again = post_signed(client, dossier_event())
    run_jobs(services)

    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["messages"][0]["id"] == first.get_json()["messages"][0]["id"]
    assert len(fake_twilio.messages) == 1
    assert count(services, DossierEvent) == 1


def test_conflicting_replay_is_409_and_changes_nothing(
    client: FlaskClient, services: Services
) -> None:
    post_signed(client, dossier_event())
    response = post_signed(client, dossier_event(**{"dossier.due_date": "2025-07-20"}))

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "onestop-2025-07-14-000123" in response.get_json()["detail"]
    assert count(services, Message) == 1


def test_statuses_that_do_not_notify_send_nothing(client: FlaskClient, services: Services) -> None:
    response = post_signed(client, dossier_event(**{"dossier.status": "processing"}))
    assert response.status_code == 202
    assert response.get_json()["messages"] == []
    assert count(services, Message) == 0
    assert count(services, DossierEvent) == 1


def test_status_code_may_replace_status(
    client: FlaskClient, fake_twilio: FakeTwilio, services: Services
) -> None:
    event = dossier_event(**{"dossier.status": DELETE, "dossier.status_code": 9})
    response = post_signed(client, event)
    assert response.get_json()["messages"][0]["template"] == "dossier_ready"
    run_jobs(services)
    assert "da xu ly xong" in fake_twilio.messages[0].body


def test_rescheduled_event_apologises_with_the_new_date(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    post_signed(client, dossier_event())
    post_signed(
        client,
        dossier_event(
            event_id="onestop-2",
            occurred_at="2025-07-16T09:00:00+07:00",
            **{
                "dossier.status": "rescheduled",
                "dossier.new_due_date": "2025-07-21",
                "dossier.note": "cần xác minh thêm",
            },
        ),
    )
    run_jobs(services)
    assert fake_twilio.messages[1].body == (
        "UBND xa Dai Thanh xin loi Ong/Ba: ho so 000.00.31.H26-250714-0001 cham so voi hen. "
        "Ngay hen tra moi: 21/07/2025. Ly do: can xac minh them."
    )
    with services.db.session() as session:
        assert str(session.scalars(select(Dossier)).one().due_date) == "2025-07-21"


def test_older_event_arriving_late_is_kept_but_not_announced(
    client: FlaskClient, services: Services
) -> None:
    post_signed(
        client,
        dossier_event(occurred_at="2025-07-16T10:00:00+07:00", **{"dossier.status": "ready"}),
    )
    late = post_signed(client, dossier_event(event_id="late-received"))
    assert late.status_code == 202
    assert late.get_json()["messages"] == []
    with services.db.session() as session:
        assert session.scalars(select(Dossier)).one().status == "ready"


def test_english_speaking_citizen_gets_the_english_template(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    post_signed(client, dossier_event(**{"citizen.language": "en"}))
    run_jobs(services)
    assert fake_twilio.messages[0].body.startswith("UBND xa Dai Thanh: Dossier 000.00.31.H26")


# -- refusals ----------------------------------------------------------------------------------


def test_bad_signature_is_401_and_stores_nothing(client: FlaskClient, services: Services) -> None:
    response = post_signed(client, dossier_event(), secret="not-the-secret")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "signature does not match"
    assert count(services, DossierEvent) == 0


def test_missing_signature_is_401(client: FlaskClient) -> None:
    response = client.post("/api/v1/dossier-events", json=dossier_event())
    assert response.status_code == 401
    assert "missing" in response.get_json()["detail"]


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_stale_or_future_timestamp_is_401(client: FlaskClient, age: int) -> None:
    response = post_signed(client, dossier_event(), timestamp=int(time.time()) - age)
    assert response.status_code == 401
    assert "300 s" in response.get_json()["detail"]


def test_signature_of_another_body_is_401(client: FlaskClient) -> None:
    from notifier.core import signing

    body = json.dumps(dossier_event()).encode()
    headers = signing.signed_headers("test-webhook-secret", body)
    tampered = body.replace(b"0912 345 678", b"0987 654 321")
    response = client.post(
        "/api/v1/dossier-events", data=tampered, headers=headers, content_type="application/json"
    )
    assert response.status_code == 401


def test_malformed_json_is_400(client: FlaskClient) -> None:
    response = post_signed(client, b'{"event_id": "x", ')
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["title"] == "Malformed JSON"


def test_json_that_is_not_an_object_is_400(client: FlaskClient) -> None:
    response = post_signed(client, b"[1, 2, 3]")
    assert response.status_code == 400


def test_missing_fields_are_listed_one_by_one(client: FlaskClient) -> None:
    event = dossier_event(**{"dossier.procedure": DELETE, "citizen.phone": DELETE})
    response = post_signed(client, event)
    assert response.status_code == 400
    fields = {error["field"] for error in response.get_json()["errors"]}
    assert fields == {"dossier.procedure", "citizen.phone"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dossier.status_code": "9", "dossier.status": DELETE}, "dossier.status_code"),
        ({"dossier.due_date": "16/07/2025"}, "dossier.due_date"),
        ({"occurred_at": "2025-07-14T08:30:00"}, "occurred_at"),
        ({"citizen.phone": 912345678}, "citizen.phone"),
        ({"event_id": 123}, "event_id"),
        ({"dossier": "000.00.31.H26-250714-0001"}, "dossier"),
    ],
)
def test_wrong_types_name_the_field(
    client: FlaskClient, change: dict[str, Any], field: str
) -> None:
    response = post_signed(client, dossier_event(**change))
    assert response.status_code == 400
    assert field in {error["field"] for error in response.get_json()["errors"]}


def test_unknown_status_is_400(client: FlaskClient) -> None:
    response = post_signed(client, dossier_event(**{"dossier.status": "lost_in_the_mail"}))
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "dossier.status"


def test_rescheduled_without_new_date_is_400(client: FlaskClient) -> None:
    response = post_signed(client, dossier_event(**{"dossier.status": "rescheduled"}))
    assert response.status_code == 400
    assert "new_due_date" in response.get_json()["errors"][0]["message"]


def test_oversized_body_is_413(client: FlaskClient, services: Services) -> None:
    event = dossier_event(**{"dossier.note": "x" * 70_000})
    response = post_signed(client, event)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert count(services, DossierEvent) == 0


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = post_signed(client, dossier_event(), content_type="text/plain")
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("phone", "reason"),
    [("024 3825 1234", "landline"), ("0912 345", "too_short"), ("not a phone", "not_a_number")],
)
def test_unusable_phone_records_a_rejected_message_with_a_reason(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio, phone: str, reason: str
) -> None:
    response = post_signed(client, dossier_event(**{"citizen.phone": phone}))
    assert response.status_code == 202
    [summary] = response.get_json()["messages"]
    assert summary["status"] == "rejected"
    assert summary["failure_reason"] == reason
    run_jobs(services)
    assert fake_twilio.messages == []
    assert count(services, DossierEvent) == 1


def test_old_eleven_digit_number_is_converted_and_sent(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    post_signed(client, dossier_event(**{"citizen.phone": "0168 123 4567"}))
    run_jobs(services)
    assert fake_twilio.messages[0].to == "+84381234567"


def test_unauthenticated_app_with_no_secret_refuses_everything(make_app: Any) -> None:
    app: Flask = make_app(DOSSIER_WEBHOOK_SECRET="")
    response = post_signed(app.test_client(), dossier_event())
    assert response.status_code == 401
    assert "not configured" in response.get_json()["detail"]


def test_events_of_one_new_dossier_arriving_at_once_are_all_kept(
    client: FlaskClient, services: Services
) -> None:
    # Each request finds no dossier and creates it; all but the first meet its unique code.
    barrier = threading.Barrier(6)
    codes: list[int] = []

    def post(number: int) -> None:
        own_client = client.application.test_client()
        event = dossier_event(event_id=f"same-dossier-{number}")
        event["occurred_at"] = f"2025-07-14T08:3{number}:00+07:00"
        barrier.wait()
        codes.append(post_signed(own_client, event).status_code)

    threads = [threading.Thread(target=post, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert codes == [202] * 6
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Dossier)) == 1
        assert session.scalar(select(func.count()).select_from(DossierEvent)) == 6


# -- events received together (the webhook writes concurrent requests' events at once) --------


def received(**changes: Any) -> ingest.Received:
    payload = dossier_event(**changes)
    return DossierEventIn.model_validate(payload), ingest.payload_hash(payload)


def test_events_received_together_are_taken_in_order(
    services: Services, fake_twilio: FakeTwilio
) -> None:
    ready_at = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    results = ingest.record(
        services,
        [
            received(),
            received(
                event_id="ready", occurred_at=ready_at.isoformat(), **{"dossier.status": "ready"}
            ),
            # Older than the one before: kept, not announced.
            received(event_id="late", occurred_at="2025-07-15T10:00:00+07:00"),
            received(event_id="other", **{"dossier.code": "000.00.31.H26-250714-0002"}),
        ],
    )
    run_jobs(services)

    assert [r.duplicate for r in results] == [False] * 4
    assert [[m.template for m in r.messages] for r in results] == [
        ["dossier_received"],
        ["dossier_ready"],
        [],
        ["dossier_received"],
    ]
    assert len(fake_twilio.messages) == 3
    with services.db.session() as session:
        first, other = session.scalars(select(Dossier).order_by(Dossier.code)).all()
        assert (first.status, str(first.due_date)) == ("ready", "2025-07-16")
        assert first.received_at == datetime(2025, 7, 14, 1, 30, tzinfo=UTC)
        assert first.resolved_at == ready_at
        assert other.status == "received"
        assert session.scalar(select(func.count()).select_from(DossierEvent)) == 4
        # The ready dossier's collection reminder was scheduled in the same write.
        assert session.scalars(select(Reminder).where(Reminder.dossier_id == first.id)).all()


def test_a_replay_among_events_received_together_fails_none_of_the_others(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    first = post_signed(client, dossier_event())

    results = ingest.record(
        services,
        [
            received(event_id="new-1", **{"dossier.code": "000.00.31.H26-250714-0002"}),
            received(),
            received(event_id="new-2", **{"dossier.code": "000.00.31.H26-250714-0003"}),
            received(event_id="new-3", **{"dossier.due_date": "2025-07-18"}),
        ],
    )
    run_jobs(services)

    assert [r.duplicate for r in results] == [False, True, False, False]
    assert results[1].messages[0].id == first.get_json()["messages"][0]["id"]
    assert len(fake_twilio.messages) == 4  # the first event's, and one for each new event
    assert count(services, DossierEvent) == 4
    with services.db.session() as session:
        assert str(session.scalars(select(Dossier).order_by(Dossier.code)).first().due_date) == (
            "2025-07-18"
        )


def test_statements_are_planned_for_the_tables_as_they_are_now(services: Services) -> None:
    """PostgreSQL keeps no generic plan per prepared statement: one settled while the dossiers
    table was small went on reading the whole table once it had grown (15 ms a look-up instead
    of 0.6 at 15,000 dossiers, in the ingest benchmark)."""
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL's plan cache")
    with services.db.engine.connect() as connection:
        assert connection.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
