"""POST/GET /api/v1/notifications: sending one SMS, following it, listing, refusals."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from notifier.api import keys
from notifier.core.runtime import Services
from notifier.messaging import consent
from notifier.models import Message
from notifier.schemas import notifications
from tests.support.api import auth, get, make_key, post
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import run_jobs

URL = "/api/v1/notifications"
RECEIVED = copy.deepcopy(notifications.EXAMPLE)  # the documented example, without its reference
del RECEIVED["reference"]
EXPECTED_BODY = (
    "UBND xa Dai Thanh: Ho so 000.00.31.H26-250714-0001 (Chung thuc ban sao tu ban chinh) "
    "da duoc tiep nhan. Ngay hen tra ket qua: 16/07/2025."
)


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return twilio_settings


@pytest.fixture
def key(services: Services) -> str:
    return make_key(services)


def count_messages(services: Services) -> int:
    with services.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def test_template_notification_is_created_queued_and_sent(
    client: FlaskClient, services: Services, key: str, fake_twilio: FakeTwilio
) -> None:
    response = post(client, key, URL, RECEIVED)

    assert response.status_code == 201
    body = response.get_json()
    assert {"id", "status", "segments", "encoding", "body"} <= set(body)
    assert body["status"] == "queued"
    assert body["segments"] == 1
    assert body["encoding"] == "GSM-7"
    assert body["body"] == EXPECTED_BODY
    assert body["phone"] == "+84 91x xxx 678"
    assert response.headers["Location"].endswith(f"{URL}/{body['id']}")

    run_jobs(services)
    [sms] = fake_twilio.messages
    assert sms.to == "+84912345678"
    assert sms.body == EXPECTED_BODY
    with services.db.session() as session:
        message = session.get_one(Message, body["id"])
        assert message.api_key_id is not None
        assert message.kind == "api"


def test_free_text_notification(
    client: FlaskClient, services: Services, key: str, fake_twilio: FakeTwilio
) -> None:
    response = post(
        client, key, URL, {"phone": "+84 912 345 678", "body": "Kính mời Ông/Bà đến nhận kết quả."}
    )
    assert response.status_code == 201
    assert response.get_json()["body"] == "Kinh moi Ong/Ba den nhan ket qua."
    run_jobs(services)
    assert fake_twilio.messages[0].body == "Kinh moi Ong/Ba den nhan ket qua."


def test_get_shows_status_history_with_the_phone_masked(
    client: FlaskClient, services: Services, key: str
) -> None:
    created = post(client, key, URL, RECEIVED).get_json()
    run_jobs(services)

    response = get(client, key, f"{URL}/{created['id']}")

    assert response.status_code == 200
    body = response.get_json()
    contract = {
        "id",
        "phone",
        "status",
        "status_history",
        "provider",
        "provider_message_id",
        "segments",
        "encoding",
        "created_at",
        "sent_at",
        "delivered_at",
        "failure_reason",
    }
    assert contract <= set(body)
    assert body["phone"] == "+84 91x xxx 678"
    assert "0912345678" not in response.get_data(as_text=True).replace(" ", "")
    assert body["status"] == "sent"
    assert [change["status"] for change in body["status_history"]] == [
        "queued",
        "sending",
        "sent",
    ]
    assert body["provider"] == "twilio"
    assert body["provider_message_id"].startswith("SM")
    assert body["sent_at"] is not None
    assert body["delivered_at"] is None


def test_a_key_sees_only_its_own_notifications(
    client: FlaskClient, services: Services, key: str
) -> None:
    created = post(client, key, URL, RECEIVED).get_json()
    other = make_key(services, name="logbook")

    assert get(client, other, f"{URL}/{created['id']}").status_code == 404
    assert get(client, other, URL).get_json()["notifications"] == []
    for unknown in ("no-such-id", "7c9e6679-7425-40de-944b-e07fc1f90ae7"):
        missing = get(client, key, f"{URL}/{unknown}")
        assert missing.status_code == 404
        assert missing.mimetype == "application/problem+json"


def test_list_filters_and_paginates_newest_first(
    client: FlaskClient, services: Services, key: str
) -> None:
    ids = [
        post(
            client, key, URL, {"phone": "0912345678", "body": f"Tin {n}", "reference": f"r{n}"}
        ).get_json()["id"]
        for n in range(5)
    ]

    first = get(client, key, URL, limit=2).get_json()
    assert [n["id"] for n in first["notifications"]] == ids[:-3:-1]
    second = get(client, key, URL, limit=2, cursor=first["next_cursor"]).get_json()
    third = get(client, key, URL, limit=2, cursor=second["next_cursor"]).get_json()
    seen = [n["id"] for page in (first, second, third) for n in page["notifications"]]
    assert seen == ids[::-1]
    assert third["next_cursor"] is None

    by_reference = get(client, key, URL, reference="r3").get_json()["notifications"]
    assert [n["id"] for n in by_reference] == [ids[3]]
    assert get(client, key, URL, status="delivered").get_json()["notifications"] == []
    assert len(get(client, key, URL, status="queued").get_json()["notifications"]) == 5
    future = get(client, key, URL, since="2999-01-01T00:00:00+07:00").get_json()
    assert future["notifications"] == []
    past = get(client, key, URL, since="2000-01-01T00:00:00Z").get_json()
    assert len(past["notifications"]) == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-07-14T08:30:00"}, "since"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_list_queries_are_400_naming_the_parameter(
    client: FlaskClient, key: str, query: dict[str, str], field: str
) -> None:
    response = get(client, key, URL, **query)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in {error["field"] for error in response.get_json()["errors"]}


# -- idempotency -------------------------------------------------------------------------------


def test_retried_post_with_the_same_reference_returns_the_first_message(
    client: FlaskClient, services: Services, key: str, fake_twilio: FakeTwilio
) -> None:
    payload = {**RECEIVED, "reference": "onestop-000123"}
    first = post(client, key, URL, payload)
    run_jobs(services)
    again = post(client, key, URL, payload)
    run_jobs(services)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["status"] == "sent"
    assert len(fake_twilio.messages) == 1
    assert count_messages(services) == 1


def test_same_reference_with_other_content_is_409(
    client: FlaskClient, services: Services, key: str
) -> None:
    post(client, key, URL, {**RECEIVED, "reference": "r-1"})
    response = post(client, key, URL, {**RECEIVED, "phone": "0987654321", "reference": "r-1"})
    assert response.status_code == 409
    assert "r-1" in response.get_json()["detail"]
    assert count_messages(services) == 1


def test_references_are_per_key(client: FlaskClient, services: Services, key: str) -> None:
    other = make_key(services, name="logbook")
    first = post(client, key, URL, {**RECEIVED, "reference": "shared"})
    second = post(client, other, URL, {**RECEIVED, "reference": "shared"})
    assert first.status_code == second.status_code == 201
    assert first.get_json()["id"] != second.get_json()["id"]


def test_concurrent_retries_create_one_message(
    client: FlaskClient, services: Services, key: str, fake_twilio: FakeTwilio
) -> None:
    payload = {**RECEIVED, "reference": "sent-twice-at-once"}
    barrier = threading.Barrier(8)
    answers: list[tuple[int, str]] = []

    def send() -> None:
        own_client = client.application.test_client()
        barrier.wait()
        response = post(own_client, key, URL, payload)
        answers.append((response.status_code, response.get_json()["id"]))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run_jobs(services)

    assert sorted(code for code, _ in answers) == [200] * 7 + [201]
    assert len({message_id for _, message_id in answers}) == 1
    assert count_messages(services) == 1
    assert len(fake_twilio.messages) == 1


# -- refusals ----------------------------------------------------------------------------------


def test_missing_personalisation_names_the_variable(
    client: FlaskClient, services: Services, key: str
) -> None:
    payload = {**RECEIVED, "personalisation": {"code": "000.00.31.H26-250714-0001"}}
    response = post(client, key, URL, payload)
    assert response.status_code == 400
    fields = {error["field"] for error in response.get_json()["errors"]}
    assert fields == {"personalisation.procedure", "personalisation.due_date"}
    assert count_messages(services) == 0


def test_unknown_template_is_400_listing_the_known_ones(client: FlaskClient, key: str) -> None:
    response = post(client, key, URL, {**RECEIVED, "template": "dossier_lost"})
    assert response.status_code == 400
    [error] = response.get_json()["errors"]
    assert error["field"] == "template"
    assert "dossier_lost" in error["message"]
    assert "dossier_received" in error["message"]


def test_personalisation_the_template_cannot_use_is_400(client: FlaskClient, key: str) -> None:
    payload = {**RECEIVED, "personalisation": {**RECEIVED["personalisation"], "due_date": "soon"}}
    response = post(client, key, URL, payload)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "personalisation"


def test_too_long_text_is_400_with_segments_and_limit(
    client: FlaskClient, services: Services, key: str
) -> None:
    response = post(client, key, URL, {"phone": "0912345678", "body": "Thông báo. " * 100})
    assert response.status_code == 400
    [error] = response.get_json()["errors"]
    assert error["field"] == "body"
    assert error["reason"] == "message_too_long"
    assert error["segments"] > error["limit"] == 6
    assert "segments" in error["message"]
    assert count_messages(services) == 0


@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("024 3825 1234", "landline"),
        ("0912 345", "too_short"),
        ("not a phone", "not_a_number"),
        ("1900 1234", "service_number"),
    ],
)
def test_a_number_that_cannot_receive_sms_is_400_with_the_reason(
    client: FlaskClient, services: Services, key: str, phone: str, reason: str
) -> None:
    response = post(client, key, URL, {**RECEIVED, "phone": phone})
    assert response.status_code == 400
    [error] = response.get_json()["errors"]
    assert (error["field"], error["reason"]) == ("phone", reason)
    assert count_messages(services) == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"phone": "0912345678"}, "(body)"),
        ({"phone": "0912345678", "body": "x", "template": "dossier_ready"}, "(body)"),
        ({"phone": "0912345678", "body": "x", "personalisation": {"a": "b"}}, "(body)"),
        ({"body": "x"}, "phone"),
        ({"phone": 912345678, "body": "x"}, "phone"),
        ({"phone": "0912345678", "body": "x", "colour": "blue"}, "colour"),
        ({"phone": "0912345678", "body": "x", "language": "fr"}, "language"),
        ({"phone": "0912345678", "body": "x", "reference": ""}, "reference"),
        ({"phone": "0912345678", "body": ""}, "body"),
        ({**RECEIVED, "personalisation": {"code": ["a"]}}, "personalisation.code"),
        ({**RECEIVED, "personalisation": {"1bad": "x"}}, "personalisation.1bad"),
    ],
)
def test_invalid_fields_are_400_naming_the_field(
    client: FlaskClient, services: Services, key: str, payload: dict[str, Any], field: str
) -> None:
    response = post(client, key, URL, payload)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    errors = response.get_json()["errors"]
    assert any(error["field"].startswith(field) for error in errors), errors
    assert count_messages(services) == 0


def test_malformed_json_and_wrong_media_type(client: FlaskClient, key: str) -> None:
    malformed = client.post(
        URL, data=b'{"phone": ', headers=auth(key), content_type="application/json"
    )
    assert malformed.status_code == 400
    assert malformed.get_json()["title"] == "Malformed JSON"
    listed = client.post(URL, data=b"[1]", headers=auth(key), content_type="application/json")
    assert listed.status_code == 400
    form = client.post(URL, data={"phone": "0912345678"}, headers=auth(key))
    assert form.status_code == 415


def test_body_over_64_kib_is_413(client: FlaskClient, key: str) -> None:
    response = post(client, key, URL, {"phone": "0912345678", "body": "x" * 70_000})
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


@given(
    payload=st.dictionaries(
        st.sampled_from(["phone", "template", "body", "personalisation", "reference", "language"]),
        st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.lists(st.text()),
    )
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_garbage_is_refused_with_a_problem_or_accepted_whole(
    client: FlaskClient, key: str, payload: dict[str, Any]
) -> None:
    response = post(client, key, URL, payload)
    assert response.status_code in {201, 400}
    if response.status_code == 400:
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["errors"]


# -- keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ntf_live_unknown", "Basic dXNlcjpwYXNz", "Token abc"],
)
def test_missing_or_unknown_key_is_401(client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.post(URL, json=RECEIVED, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_401_everywhere(client: FlaskClient, services: Services, key: str) -> None:
    created = post(client, key, URL, RECEIVED).get_json()
    with services.db.transaction() as session:
        found = keys.find(session, key[:12])
        assert found is not None
        keys.revoke(session, found)

    assert post(client, key, URL, RECEIVED).status_code == 401
    response = get(client, key, f"{URL}/{created['id']}")
    assert response.status_code == 401
    assert "revoked" in response.get_json()["detail"]
    assert count_messages(services) == 1


def test_opted_out_number_is_recorded_rejected_unless_essential(
    client: FlaskClient, services: Services, key: str, fake_twilio: FakeTwilio
) -> None:
    with services.db.transaction() as session:
        consent.opt_out(session, "+84912345678", channel="sms")
    optional = post(client, key, URL, {**RECEIVED, "essential": False})
    essential = post(client, key, URL, RECEIVED)
    run_jobs(services)

    assert optional.status_code == 201
    assert optional.get_json()["status"] == "rejected"
    assert optional.get_json()["failure_reason"] == "opted_out"
    assert essential.get_json()["status"] == "queued"
    assert len(fake_twilio.messages) == 1
