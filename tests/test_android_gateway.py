"""SMS Gateway for Android: sending through its API (real client, fake phone over HTTP) and its
delivery webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import subprocess
import textwrap
import tomllib
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from notifier.core.runtime import Services
from notifier.models import InboundMessage, Message
from tests.support.fake_android_gateway import (
    EVENTS_PATH,
    FakeAndroidGateway,
    post_event,
    signed,
)
from tests.support.helpers import dossier_event, post_signed, run_jobs
from tests.support.live import LiveServer
from tests.support.receiver import Receiver


@pytest.fixture
def settings_overrides(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    return {**gateway_settings, "SMS_PROVIDER": "android_gateway"}


def load(services: Services, message_id: str) -> Message:
    with services.db.session() as session:
        return session.scalars(
            select(Message).where(Message.id == message_id).options(selectinload(Message.history))
        ).one()


def notice(client: FlaskClient) -> str:
    response = post_signed(client, dossier_event())
    assert response.status_code == 202
    return str(response.get_json()["messages"][0]["id"])


# -- sending -----------------------------------------------------------------------------------


def test_the_client_range_admits_only_releases_the_adapter_is_written_for() -> None:
    """2.x has no `errors` module; 3.0 to 3.1.1 export no `TextMessage` and post to `/message`,
    which the cloud server is removing (a 404 there would fail every SMS for good)."""
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    [client] = [
        requirement
        for requirement in map(Requirement, pyproject["project"]["dependencies"])
        if requirement.name == "android-sms-gateway"
    ]
    for release in ("2.0.0", "2.1.0", "3.0.0", "3.1.0", "3.1.1"):
        assert release not in client.specifier
    assert version("android-sms-gateway") in client.specifier


def test_a_notice_goes_out_through_the_phone_with_our_id(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    message_id = notice(client)
    run_jobs(services)

    [sent] = fake_gateway.messages
    assert sent.phone_numbers == ["+84912345678"]
    assert sent.text.startswith("UBND xa Dai Thanh: Ho so 000.00.31.H26-250714-0001")
    assert sent.id == message_id
    assert sent.with_delivery_report is True
    message = load(services, message_id)
    assert message.status == "sent"
    assert message.provider == "android_gateway"
    assert message.provider_message_id == message_id


@pytest.mark.parametrize("status", [500, 503, 429])
def test_gateway_errors_are_retried(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway, status: int
) -> None:
    fake_gateway.fail_next(1, status=status, message="Queue limits exceeded")
    message_id = notice(client)
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "sent"
    assert message.attempts == 2
    assert len(fake_gateway.messages) == 1


def test_an_answer_lost_on_the_way_back_sends_one_sms(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    fake_gateway.drop_next_answer()
    message_id = notice(client)
    run_jobs(services)

    assert len(fake_gateway.messages) == 1
    assert fake_gateway.requests == 2  # the retry was answered 409: the phone had it already
    message = load(services, message_id)
    assert message.status == "sent"
    assert [h.status for h in message.history] == ["queued", "sending", "queued", "sending", "sent"]


@pytest.mark.parametrize(
    ("status", "text", "reason"),
    [
        (401, "Unauthorized", "provider_not_configured"),
        (400, "invalid phone number", "invalid_number"),
        (400, "textMessage is required", "provider_rejected"),
    ],
)
def test_refusals_fail_at_once(
    client: FlaskClient,
    services: Services,
    fake_gateway: FakeAndroidGateway,
    status: int,
    text: str,
    reason: str,
) -> None:
    fake_gateway.fail_next(1, status=status, message=text)
    message_id = notice(client)
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == reason
    assert text in (message.failure_detail or "")
    assert fake_gateway.requests == 1


def test_a_message_the_phone_cannot_send_is_failed_by_its_report(
    live_server: LiveServer, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    # The phone takes every message (Pending) and reports a failure only once it has tried.
    fake_gateway.report_to(live_server.url + EVENTS_PATH)
    fake_gateway.fail_recipient_next("RESULT_ERROR_NO_SERVICE")
    message_id = notice(live_server.app.test_client())
    run_jobs(services)
    fake_gateway.wait_reported()
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "undelivered"
    assert "RESULT_ERROR_NO_SERVICE" in (message.failure_detail or "")
    assert [h.status for h in message.history] == ["queued", "sending", "sent", "failed"]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_phone_unreachable_is_retried_then_failed(
    make_app: Any, gateway_settings: dict[str, Any]
) -> None:
    app: Flask = make_app(
        **{**gateway_settings, "ANDROID_GATEWAY_URL": f"http://127.0.0.1:{unused_port()}"},
        SMS_PROVIDER="android_gateway",
        SEND_MAX_ATTEMPTS=2,
    )
    services: Services = app.extensions["notifier"]
    message_id = notice(app.test_client())
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "provider_unavailable"
    assert message.attempts == 2


def test_a_slow_phone_times_out_and_is_retried(
    make_app: Any, gateway_settings: dict[str, Any], fake_gateway: FakeAndroidGateway
) -> None:
    app: Flask = make_app(
        **gateway_settings,
        SMS_PROVIDER="android_gateway",
        PROVIDER_TIMEOUT_SECONDS=0.2,
        SEND_MAX_ATTEMPTS=2,
    )
    services: Services = app.extensions["notifier"]
    fake_gateway.latency = 1.0
    message_id = notice(app.test_client())
    run_jobs(services)
    message = load(services, message_id)
    assert message.attempts == 2
    assert "Timeout" in " ".join(h.detail or "" for h in message.history)


def test_without_credentials_nothing_is_sent(
    make_app: Any, gateway_settings: dict[str, Any], fake_gateway: FakeAndroidGateway
) -> None:
    app: Flask = make_app(
        **{**gateway_settings, "ANDROID_GATEWAY_PASSWORD": ""}, SMS_PROVIDER="android_gateway"
    )
    services: Services = app.extensions["notifier"]
    message_id = notice(app.test_client())
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "provider_not_configured"
    assert fake_gateway.requests == 0


# -- delivery webhooks -------------------------------------------------------------------------


def sent_message(client: FlaskClient, services: Services) -> str:
    message_id = notice(client)
    run_jobs(services)
    return message_id


def test_sent_then_delivered(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    message_id = sent_message(client, services)
    for event in ("sms:sent", "sms:delivered"):
        response = post_event(client, fake_gateway.status_event(event, message_id, "+84912345678"))
        assert response.status_code == 200
    assert response.get_json()["status"] == "delivered"
    message = load(services, message_id)
    assert message.status == "delivered"
    assert message.delivered_at is not None


def test_a_repeated_event_changes_nothing(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    message_id = sent_message(client, services)
    envelope = fake_gateway.status_event("sms:delivered", message_id, "+84912345678")
    post_event(client, envelope)
    post_event(client, envelope)
    post_event(client, fake_gateway.status_event("sms:sent", message_id, "+84912345678"))
    message = load(services, message_id)
    assert message.status == "delivered"
    assert [h.status for h in message.history] == ["queued", "sending", "sent", "delivered"]


def test_failed_event_records_the_reason(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    message_id = sent_message(client, services)
    envelope = fake_gateway.status_event(
        "sms:failed", message_id, "+84912345678", reason="RESULT_ERROR_GENERIC_FAILURE"
    )
    assert post_event(client, envelope).status_code == 200
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "undelivered"
    assert "RESULT_ERROR_GENERIC_FAILURE" in (message.failure_detail or "")


def test_the_phone_reports_by_webhook_over_http(
    live_server: LiveServer, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    fake_gateway.report_to(live_server.url + EVENTS_PATH)
    message_id = notice(live_server.app.test_client())
    run_jobs(services)
    fake_gateway.wait_reported()
    assert load(services, message_id).status == "delivered"


def test_a_report_arriving_before_the_send_is_recorded_still_counts(
    live_server: LiveServer, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    fake_gateway.report_first = True
    fake_gateway.report_to(live_server.url + EVENTS_PATH)
    message_id = notice(live_server.app.test_client())
    run_jobs(services)

    message = load(services, message_id)
    assert message.status == "delivered"
    assert message.provider == "android_gateway"
    assert message.provider_message_id == message_id
    assert [h.status for h in message.history] == ["queued", "sending", "sent", "delivered"]
    assert [h.source for h in message.history][2:] == ["android_gateway-receipt"] * 2


def test_events_for_unknown_messages_and_other_events_are_acknowledged(
    client: FlaskClient, fake_gateway: FakeAndroidGateway
) -> None:
    unknown = fake_gateway.status_event("sms:delivered", "no-such-message", "+84912345678")
    assert post_event(client, unknown).status_code == 200
    ping = fake_gateway.envelope("system:ping", {"health": {"status": "pass"}})
    response = post_event(client, ping)
    assert response.status_code == 200
    assert response.get_json()["ignored"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event": "sms:sent", "payload": {"messageId": "x"}}, "id"),
        ({"id": "e1", "event": "sms:sent", "payload": {}}, "payload.messageId"),
        (
            {"id": "e1", "event": "sms:received", "payload": {"message": "LICH"}},
            "payload.sender",
        ),
        ({"id": "e1", "event": "sms:received", "payload": "LICH"}, "payload"),
    ],
)
def test_malformed_events_are_400_with_the_field(
    client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = post_event(client, body)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in {error["field"] for error in response.get_json()["errors"]}


def test_invalid_json_is_400(client: FlaskClient) -> None:
    response = post_event(client, b'{"id": "e1", ')
    assert response.status_code == 400


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)
EVENTS = st.sampled_from(["sms:received", "sms:sent", "sms:delivered", "sms:failed", "x", ""])
PAYLOAD_KEYS = st.sampled_from(
    ["messageId", "message", "sender", "phoneNumber", "receivedAt", "reason", "simNumber", "x"]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event=EVENTS,
    event_id=JSON,
    payload=st.dictionaries(PAYLOAD_KEYS, JSON, max_size=5) | JSON,
)
@example(
    event="sms:received",
    event_id="nul\x00",
    payload={"message": "DAT\x00 1", "phoneNumber": "09\x0012345678"},
)
@example(event="sms:failed", event_id="e", payload={"messageId": "\x00", "reason": "\x00"})
@example(event="sms:received", event_id="e", payload={"message": "x", "sender": None})
def test_no_event_body_is_a_server_error(
    client: FlaskClient, event: str, event_id: Any, payload: Any
) -> None:
    body = json.dumps({"id": event_id, "event": event, "payload": payload}).encode()
    response = post_event(client, body)
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        assert response.get_json()["errors"]


def test_signed_headers_match_the_apps_recipe() -> None:
    _, headers = signed(b'{"id":"x"}', "key", 1_700_000_000)
    expected = hmac.new(b"key", b'{"id":"x"}1700000000', hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == expected
    assert headers["X-Timestamp"] == "1700000000"


# -- the fake behaves as the app does -----------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver().start()
    yield found
    found.stop()


def post_message(fake: FakeAndroidGateway, number: str, message_id: str) -> dict[str, Any]:
    response = requests.post(
        fake.url + "/messages",
        json={"id": message_id, "phoneNumbers": [number], "textMessage": {"text": "Xin chao"}},
        auth=(fake.login, fake.password),
        timeout=10,
    )
    assert response.status_code == 202
    answer: dict[str, Any] = response.json()
    return answer


def test_the_phone_takes_any_number_and_fails_a_bad_one_later(
    fake_gateway: FakeAndroidGateway, receiver: Receiver
) -> None:
    fake_gateway.report_to(receiver.url)
    local = post_message(fake_gateway, "0912345678", "local-number")
    landline = post_message(fake_gateway, "02438251234", "landline")
    fake_gateway.wait_reported()

    assert local["state"] == landline["state"] == "Pending"
    assert "error" not in landline["recipients"][0]  # null fields are left out
    events = [received.json for received in receiver.received]
    reports = {(e["event"], e["payload"]["messageId"]): e["payload"] for e in events}
    assert set(reports) == {
        ("sms:sent", "local-number"),
        ("sms:delivered", "local-number"),
        ("sms:failed", "landline"),
    }
    assert reports["sms:failed", "landline"]["reason"] == "sendSMS: Invalid phone number type"
    # As the app writes them: no nulls, the deprecated phoneNumber beside recipient.
    assert list(reports["sms:sent", "local-number"]) == [
        "partsCount",
        "sentAt",
        "messageId",
        "recipient",
        "phoneNumber",
    ]


def test_the_same_sms_keeps_its_id_through_every_webhook(fake_gateway: FakeAndroidGateway) -> None:
    payload = fake_gateway.received_payload("+84912345678", "LICH")
    first = fake_gateway.envelope("sms:received", payload, webhook_id="hook-a")
    second = fake_gateway.envelope("sms:received", payload, webhook_id="hook-b")
    assert first["id"] != second["id"]
    assert first["payload"]["messageId"] == second["payload"]["messageId"]
    assert len(first["id"]) == 21
    again = fake_gateway.received_payload("+84912345678", "LICH")
    assert again["messageId"] != payload["messageId"]  # another SMS, sent a moment later


def run_documented_registration(phone: str, password: str) -> None:
    docs = (Path(__file__).parents[1] / "docs" / "two-way-sms.md").read_text()
    [script] = [
        block
        for block in re.findall(r"```sh\n(.*?)```", docs, re.DOTALL)
        if "$PHONE/webhooks" in block
    ]
    script = re.sub(r"(?m)^\s*PHONE=.*$", f"PHONE={phone}", script).replace("<password>", password)
    subprocess.run(
        ["bash", "-euc", textwrap.dedent(script)], check=True, capture_output=True, timeout=60
    )


def test_registering_the_webhooks_twice_as_documented_keeps_four(
    fake_gateway: FakeAndroidGateway,
) -> None:
    run_documented_registration(fake_gateway.url, fake_gateway.password)
    run_documented_registration(fake_gateway.url, fake_gateway.password)
    hooks = fake_gateway.webhooks.values()
    assert sorted(hook.event for hook in hooks) == [
        "sms:delivered",
        "sms:failed",
        "sms:received",
        "sms:sent",
    ]
    assert {hook.url for hook in hooks} == {
        "https://notifier.xa.example.vn/gateways/android/events"
    }


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://notifier.xa.example.vn/gateways/android/events", True),
        ("http://127.0.0.1:5000/gateways/android/events", True),
        ("http://localhost:5000/gateways/android/events", False),
        ("http://192.168.1.20:5000/gateways/android/events", False),
    ],
)
def test_plain_http_webhooks_go_only_to_127_0_0_1(
    fake_gateway: FakeAndroidGateway, url: str, allowed: bool
) -> None:
    response = requests.post(
        fake_gateway.url + "/webhooks",
        json={"url": url, "event": "sms:received"},
        auth=(fake_gateway.login, fake_gateway.password),
        timeout=10,
    )
    assert response.status_code == (201 if allowed else 400)


# -- inbound texts and reports as the app sends them --------------------------------------------


def inbound(services: Services) -> list[InboundMessage]:
    with services.db.session() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


def test_a_text_without_the_deprecated_phone_number_is_read_from_sender(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    payload = fake_gateway.received_payload("+84912345678", "HD", phone_number=False)
    assert "phoneNumber" not in payload
    response = post_event(client, fake_gateway.envelope("sms:received", payload))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["outcome"] == "help"
    [row] = inbound(services)
    assert row.phone == "+84912345678"


def test_one_sms_through_two_webhooks_is_answered_once(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    # Registered twice (once without an id): the app posts the SMS to each, each event its id.
    payload = fake_gateway.received_payload("0912345678", "HD")
    first = post_event(client, fake_gateway.envelope("sms:received", payload, webhook_id="a"))
    second = post_event(client, fake_gateway.envelope("sms:received", payload, webhook_id="b"))
    assert first.get_json()["duplicate"] is False
    assert second.get_json()["duplicate"] is True
    assert second.get_json()["reply_message_id"] == first.get_json()["reply_message_id"]
    run_jobs(services)
    assert len(inbound(services)) == 1
    assert len(fake_gateway.texts_to("+84912345678")) == 1


def test_the_same_text_sent_again_later_is_a_new_sms(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    for _ in range(2):
        response = post_event(client, fake_gateway.received("0912345678", "LICH"))
        assert response.get_json()["duplicate"] is False
    assert len(inbound(services)) == 2


def test_a_very_long_text_is_kept_cut_and_marked(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    text = "HD " + "xin cam on " * 1200  # over 10,000 characters: a long concatenated SMS
    response = post_event(client, fake_gateway.received("0912345678", text))
    assert response.status_code == 200, response.get_data(as_text=True)
    [row] = inbound(services)
    assert row.text is not None
    assert len(row.text) == 2000
    assert row.text.startswith("HD xin cam on")
    assert row.text.endswith(" […]")


def test_a_very_long_failure_reason_is_kept_cut_and_marked(
    client: FlaskClient, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    message_id = sent_message(client, services)
    reason = "sendSMS: " + "java.lang.IllegalStateException: radio off; " * 20
    assert len(reason) > 500
    envelope = fake_gateway.status_event("sms:failed", message_id, "+84912345678", reason)
    assert post_event(client, envelope).status_code == 200
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_detail is not None
    assert message.failure_detail.startswith("gateway sms:failed: sendSMS: java.lang")
    assert message.failure_detail.endswith(" […]")
