"""POST /api/v1/preview: rendered, folded, encoding, segments and parts; errors name the field."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifier.api import keys
from notifier.core.runtime import Services
from notifier.text import sms
from tests.support.console import staff_client

PERSONALISATION = {
    "code": "000.00.31.H26-250714-0001",
    "procedure": "Chứng thực bản sao từ bản chính",
    "due_date": "2025-07-16",
}


@pytest.fixture
def key(services: Services) -> str:
    with services.db.transaction() as session:
        _, plaintext = keys.create_api_key(session, "console-tests")
    return plaintext


def preview(client: FlaskClient, key: str, payload: Any) -> Any:
    return client.post("/api/v1/preview", json=payload, headers={"Authorization": f"Bearer {key}"})


def test_template_preview(client: FlaskClient, key: str) -> None:
    response = preview(
        client, key, {"template": "dossier_received", "personalisation": PERSONALISATION}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["text"].startswith("UBND xã Đại Thanh: Hồ sơ 000.00.31.H26-250714-0001")
    assert "16/07/2025" in body["text"]
    assert body["folded"] == sms.fold(body["text"])
    assert body["body"] == body["folded"]  # SMS_DIACRITICS=strip
    assert body["encoding"] == "GSM-7"
    assert body["segments"] == 1
    assert body["parts"] == [body["body"]]
    assert body["cost_vnd"] == 800
    assert body["within_limit"] is True


def test_body_with_diacritics_kept_is_ucs2_and_split(make_app: Any) -> None:
    app = make_app(SMS_DIACRITICS="keep")
    services: Services = app.extensions["notifier"]
    with services.db.transaction() as session:
        _, key = keys.create_api_key(session, "k")
    text = "Kính gửi Ông/Bà {{ ten }}, " + "lịch tiếp công dân đã thay đổi. " * 3
    response = preview(app.test_client(), key, {"body": text, "personalisation": {"ten": "An"}})
    body = response.get_json()
    assert body["encoding"] == "UCS-2"
    assert body["segments"] == len(body["parts"]) > 1
    assert "".join(body["parts"]) == body["body"]
    assert all(len(part) <= 67 for part in body["parts"])
    assert body["cost_vnd"] == 800 * body["segments"]


def test_missing_personalisation_is_a_400_naming_it(client: FlaskClient, key: str) -> None:
    response = preview(
        client, key, {"template": "dossier_received", "personalisation": {"code": "X"}}
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert [e["field"] for e in problem["errors"]] == [
        "personalisation.due_date",
        "personalisation.procedure",
    ]
    assert "due_date" in problem["detail"]
    missing_body = preview(client, key, {"body": "Chào {{ ten }}"})
    assert missing_body.get_json()["errors"] == [
        {"field": "personalisation.ten", "message": "missing"}
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"template": "nope"}, "template"),
        ({"template": "../etc/passwd"}, "template"),
        ({}, "template"),
        ({"template": "dossier_received", "body": "x"}, "template"),
        ({"body": "{% for %}"}, "body"),
        ({"body": "x", "language": "fr"}, "language"),
        ({"body": "x", "extra": 1}, "extra"),
        ({"body": "x" * 3000}, "body"),
        ({"body": "x", "personalisation": {"a": {"b": 1}}}, "personalisation.a"),
        ({"body": "x", "personalisation": []}, "personalisation"),
    ],
)
def test_bad_requests_name_the_field(
    client: FlaskClient, key: str, payload: dict[str, Any], field: str
) -> None:
    response = preview(client, key, payload)
    assert response.status_code == 400
    fields = [e["field"] for e in response.get_json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields


def test_too_long_text_is_previewed_with_the_reason(client: FlaskClient, key: str) -> None:
    body = preview(client, key, {"body": "a" * 1000}).get_json()
    assert body["within_limit"] is False
    assert body["segments"] == 7
    assert "limit is 6" in body["limit_error"]
    assert "Tin nhắn quá dài" in body["limit_error_vi"]


def test_needs_an_api_key_or_a_staff_session(client: FlaskClient, services: Services) -> None:
    anonymous = client.post("/api/v1/preview", json={"body": "x"})
    assert anonymous.status_code == 401
    assert anonymous.mimetype == "application/problem+json"
    wrong = preview(client, "ntf_live_wrong", {"body": "x"})
    assert wrong.status_code == 401
    client, token = staff_client(services, client, "viewer")
    without_header = client.post("/api/v1/preview", json={"body": "x"})
    assert without_header.status_code == 400
    assert "CSRF" in without_header.get_json()["title"]
    with_header = client.post(
        "/api/v1/preview", json={"body": "Xin chào"}, headers={"X-CSRFToken": token}
    )
    assert with_header.status_code == 200
    assert with_header.get_json()["body"] == "Xin chao"
    # The session's token still holds after a page view (a signed copy differs by its timestamp
    # once a second has passed, so the token itself is used again rather than compared).
    client.get("/")
    again = client.post("/api/v1/preview", json={"body": "x"}, headers={"X-CSRFToken": token})
    assert again.status_code == 200


def test_malformed_json_and_wrong_type(client: FlaskClient, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    bad = client.post(
        "/api/v1/preview", data=b"{", headers=headers, content_type="application/json"
    )
    assert bad.status_code == 400
    form = client.post("/api/v1/preview", data={"body": "x"}, headers=headers)
    assert form.status_code == 415


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.text(max_size=400),
    personalisation=st.dictionaries(
        st.from_regex(r"[a-z_]{1,8}", fullmatch=True), st.text(max_size=40), max_size=4
    ),
)
def test_any_body_is_previewed_or_refused_clearly(
    client: FlaskClient, key: str, body: str, personalisation: dict[str, str]
) -> None:
    response = preview(client, key, {"body": body, "personalisation": personalisation})
    assert response.status_code in (200, 400)
    payload = response.get_json()
    if response.status_code == 400:
        assert payload["errors"]
        return
    assert payload["segments"] == sms.analyze(payload["body"]).segments
    assert "".join(payload["parts"]) == payload["body"].strip() or payload["parts"] == []
