"""POST /api/v1/notifications/bulk: every row validated first, messages created in chunks."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from notifier.api import batches
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.models import Batch, Message
from tests.support.api import auth, get, make_key, post
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import run_jobs

URL = "/api/v1/notifications/bulk"
TEMPLATE = "dossier_received"


def values(n: int) -> dict[str, str]:
    return {
        "code": f"000.00.31.H26-250714-{n:04d}",
        "procedure": "Đăng ký khai sinh",
        "due_date": "2025-07-16",
    }


def recipient(n: int, phone: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"phone": phone or f"09123{n:05d}", "personalisation": values(n), **extra}


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return {**twilio_settings, "API_BULK_CHUNK_SIZE": 2}


@pytest.fixture
def key(services: Services) -> str:
    return make_key(services)


def messages(services: Services) -> list[Message]:
    with services.db.session() as session:
        return list(session.scalars(select(Message).order_by(Message.phone)))


def test_valid_rows_are_queued_and_bad_rows_reported_by_number(
    client: FlaskClient, services: Services, key: str, fake_twilio: FakeTwilio
) -> None:
    rows = [
        recipient(1),
        recipient(2, phone="024 3825 1234"),
        recipient(3),
        {"phone": "0912300004", "personalisation": {"code": "X"}},
        recipient(5),
        recipient(6),
        recipient(7),
    ]
    response = post(client, key, URL, {"template": TEMPLATE, "recipients": rows})

    assert response.status_code == 202
    body = response.get_json()
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (7, 5, 2)
    assert len(body["errors"]) == 3  # row 4 lacks two values
    assert body["state"] == "pending"
    errors = {(e["row"], e["field"]) for e in body["errors"]}
    assert errors == {
        (2, "phone"),
        (4, "personalisation.procedure"),
        (4, "personalisation.due_date"),
    }
    assert response.headers["Location"].endswith(f"{URL}/{body['id']}")

    run_jobs(services)

    assert sorted(m.to for m in fake_twilio.messages) == [
        f"+8491230000{n}" for n in (1, 3, 5, 6, 7)
    ]
    created = messages(services)
    assert {m.batch_id for m in created} == {body["id"]}
    assert all(m.priority == "bulk" and not m.essential for m in created)
    progress = get(client, key, f"{URL}/{body['id']}").get_json()
    assert progress["state"] == "done"
    assert progress["created"] == 5
    assert progress["statuses"] == {"sent": 5}
    assert {(e["row"], e["field"]) for e in progress["errors"]} == errors
    with services.db.session() as session:
        assert session.get_one(Batch, body["id"]).rows is None  # phone numbers not kept


def test_free_text_bulk(client: FlaskClient, services: Services, key: str) -> None:
    rows = [{"phone": "0912345678"}, {"phone": "0987654321"}]
    response = post(client, key, URL, {"body": "Lịch tiếp công dân thay đổi.", "recipients": rows})
    assert response.status_code == 202
    run_jobs(services)
    assert [m.body for m in messages(services)] == ["Lich tiep cong dan thay doi."] * 2


def test_when_no_row_is_valid_it_is_400_and_nothing_is_stored(
    client: FlaskClient, services: Services, key: str
) -> None:
    rows = [recipient(1, phone="not a phone"), {"phone": "0912345678"}]
    response = post(client, key, URL, {"template": TEMPLATE, "recipients": rows})
    assert response.status_code == 400
    errors = response.get_json()["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {
        (1, "recipients.0.phone"),
        (2, "recipients.1.personalisation.code"),
        (2, "recipients.1.personalisation.procedure"),
        (2, "recipients.1.personalisation.due_date"),
    }
    with services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"template": TEMPLATE, "recipients": []}, "recipients"),
        ({"template": TEMPLATE}, "recipients"),
        ({"recipients": [recipient(1)]}, "(body)"),
        ({"template": TEMPLATE, "body": "x", "recipients": [recipient(1)]}, "(body)"),
        ({"template": TEMPLATE, "recipients": [{"phone": 912345678}]}, "recipients.0.phone"),
        ({"template": TEMPLATE, "recipients": [{"phone": "0912345678", "x": 1}]}, "recipients.0.x"),
        ({"template": "no_such_template", "recipients": [recipient(1)]}, "template"),
        ({"body": "x" * 2000, "recipients": [recipient(1)]}, "body"),
    ],
)
def test_requests_wrong_as_a_whole_are_400(
    client: FlaskClient, key: str, payload: dict[str, Any], field: str
) -> None:
    response = post(client, key, URL, payload)
    assert response.status_code == 400
    assert field in {e["field"] for e in response.get_json()["errors"]}


def test_ten_thousand_recipients_in_one_request(
    client: FlaskClient, services: Services, key: str
) -> None:
    rows = [{"phone": f"09{n:08d}", "reference": f"r{n}"} for n in range(10_000)]
    payload = {"body": "Thông báo lịch tiếp công dân", "recipients": rows}
    assert len(json.dumps(payload)) > 64 * 1024

    response = post(client, key, URL, payload)

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["valid_rows"] == 10_000
    too_many = post(client, key, URL, {**payload, "recipients": [*rows, {"phone": "0912345678"}]})
    assert too_many.status_code == 400
    assert too_many.get_json()["errors"][0]["field"] == "recipients"


def test_body_over_the_bulk_limit_is_413(make_app: Any) -> None:
    app = make_app(API_BULK_MAX_BYTES=100_000)
    key = make_key(app.extensions["notifier"])
    rows = [{"phone": "0912345678", "reference": "r" * 150 + str(n)} for n in range(1000)]
    response = app.test_client().post(
        URL, json={"body": "x", "recipients": rows}, headers=auth(key)
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_duplicate_references_are_row_errors(
    client: FlaskClient, services: Services, key: str
) -> None:
    single = "/api/v1/notifications"
    post(client, key, single, {"phone": "0912345678", "body": "x", "reference": "taken"})
    rows = [
        {"phone": "0912345671", "reference": "a"},
        {"phone": "0912345672", "reference": "a"},
        {"phone": "0912345673", "reference": "taken"},
        {"phone": "0912345674", "reference": "b"},
    ]
    body = post(client, key, URL, {"body": "x", "recipients": rows}).get_json()
    assert body["valid_rows"] == 2
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(2, "reference"), (3, "reference")]
    run_jobs(services)
    assert len(messages(services)) == 3


def test_bulk_reference_makes_a_retry_return_the_first_batch(
    client: FlaskClient, services: Services, key: str
) -> None:
    payload = {"template": TEMPLATE, "reference": "broadcast-7", "recipients": [recipient(1)]}
    first = post(client, key, URL, payload)
    again = post(client, key, URL, payload)
    run_jobs(services)

    assert (first.status_code, again.status_code) == (202, 200)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["duplicate"] is True
    assert len(messages(services)) == 1
    conflict = post(client, key, URL, {**payload, "recipients": [recipient(1), recipient(2)]})
    assert conflict.status_code == 409


def test_a_key_sees_only_its_own_batches(client: FlaskClient, services: Services, key: str) -> None:
    batch_id = post(client, key, URL, {"body": "x", "recipients": [{"phone": "0912345678"}]})
    other = make_key(services, name="other")
    assert get(client, other, f"{URL}/{batch_id.get_json()['id']}").status_code == 404
    assert get(client, key, f"{URL}/nope").status_code == 404


def test_bulk_of_a_test_key_never_reaches_the_provider(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    key = make_key(services, kind="test")
    rows = [{"phone": "0900000001"}, {"phone": "0900000003"}, {"phone": "0912345678"}]
    body = post(client, key, URL, {"body": "x", "recipients": rows}).get_json()
    run_jobs(services)
    assert fake_twilio.requests == 0
    progress = get(client, key, f"{URL}/{body['id']}").get_json()
    assert progress["statuses"] == {"delivered": 2, "failed": 1}


def test_daily_cap_refuses_a_bulk_that_would_pass_it(
    client: FlaskClient, services: Services
) -> None:
    key = make_key(services, daily_cap=2)
    rows = [{"phone": f"091234567{n}"} for n in range(3)]
    response = post(client, key, URL, {"body": "x", "recipients": rows})
    assert response.status_code == 429
    assert "Retry-After" in response.headers
    assert post(client, key, URL, {"body": "x", "recipients": rows[:2]}).status_code == 202


def test_processing_a_batch_twice_creates_each_message_once(
    client: FlaskClient, services: Services, key: str
) -> None:
    rows = [recipient(n) for n in range(1, 6)]
    batch_id = post(client, key, URL, {"template": TEMPLATE, "recipients": rows}).get_json()["id"]
    assert batches.process_batch(services, batch_id) == 5
    assert batches.process_batch(services, batch_id) == 0
    run_jobs(services)
    assert len(messages(services)) == 5


def test_sweep_resumes_a_batch_whose_job_was_lost(
    client: FlaskClient, services: Services, key: str
) -> None:
    rows = [recipient(n) for n in range(1, 4)]
    assert post(client, key, URL, {"template": TEMPLATE, "recipients": rows}).status_code == 202
    services.redis.flushdb()

    assert batches.sweep_batches(services) == 0  # within the grace period
    later = utcnow() + timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS + 1)
    assert batches.sweep_batches(services, now=later) == 1
    run_jobs(services)
    assert len(messages(services)) == 3
    assert batches.sweep_batches(services, now=later) == 0


def test_row_validation_for_a_csv_upload(services: Services) -> None:
    """The console's CSV upload calls the same function with plain dicts and a header line."""
    rows = [
        {"phone": "0912345678", "personalisation": values(1)},
        {"phone": "", "personalisation": values(2)},
        {"phone": "0912345679", "personalisation": {"code": "X"}},
    ]
    result = batches.validate_rows(services.settings, rows, template=TEMPLATE, first_row=2)
    assert result.total == 3
    assert [row.row for row in result.valid] == [2]
    assert result.valid[0].phone == "+84912345678"
    assert result.segments == 1
    assert {(e["row"], e["field"]) for e in result.errors} == {
        (3, "phone"),
        (4, "personalisation.procedure"),
        (4, "personalisation.due_date"),
    }


@given(
    phones=st.lists(
        st.one_of(
            st.from_regex(r"0(3[2-9]|9[0-9])[0-9]{7}", fullmatch=True),
            st.text(max_size=20),
            st.sampled_from(["024 3825 1234", "1900 1234", "+84 912 345 678", ""]),
        ),
        min_size=1,
        max_size=40,
    )
)
@settings(max_examples=80, deadline=None)
def test_every_row_is_either_kept_or_reported_with_its_number(phones: list[str]) -> None:
    from notifier.core.config import Settings

    rows = [{"phone": phone} for phone in phones]
    result = batches.validate_rows(Settings(), rows, body="Thông báo")
    reported = {error["row"] for error in result.errors}
    kept = {row.row for row in result.valid}
    assert kept.isdisjoint(reported)
    assert kept | reported == set(range(1, len(phones) + 1))
    assert all(error["field"] == "phone" and error["message"] for error in result.errors)
