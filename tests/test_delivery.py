"""Sending: retries with backoff, permanent failures, Redis outages, delivery receipts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import delivery
from notifier.models import Contact, Message
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import dossier_event, post_signed, run_jobs
from tests.support.processes import RedisServer


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return twilio_settings


def load(services: Services, message_id: str) -> Message:
    with services.db.session() as session:
        return session.scalars(
            select(Message).where(Message.id == message_id).options(selectinload(Message.history))
        ).one()


def send_event(client: FlaskClient) -> str:
    response = post_signed(client, dossier_event())
    assert response.status_code == 202
    return str(response.get_json()["messages"][0]["id"])


def test_provider_500_then_201_sends_one_sms(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(1, status=500)
    message_id = send_event(client)
    run_jobs(services)

    assert len(fake_twilio.messages) == 1
    assert fake_twilio.requests == 2
    message = load(services, message_id)
    assert message.status == "sent"
    assert message.attempts == 2
    assert [h.status for h in message.history] == ["queued", "sending", "queued", "sending", "sent"]


def test_rate_limited_429_is_retried(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(2, status=429, code=20429)
    message_id = send_event(client)
    run_jobs(services)
    assert load(services, message_id).status == "sent"
    assert len(fake_twilio.messages) == 1


def test_invalid_number_21211_fails_at_once_without_retry(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(1, status=400, code=21211, message="Invalid 'To' Phone Number")
    message_id = send_event(client)
    run_jobs(services)

    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "invalid_number"
    assert "21211" in (message.failure_detail or "")
    assert fake_twilio.requests == 1


def test_opted_out_21610_fails_and_marks_the_number(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.fail_next(1, status=400, code=21610, message="Attempt to send to unsubscribed")
    message_id = send_event(client)
    run_jobs(services)

    assert load(services, message_id).failure_reason == "opted_out"
    with services.db.session() as session:
        contact = session.get(Contact, "+84912345678")
    assert contact is not None
    assert contact.opted_out is True


def test_provider_down_for_every_attempt_ends_failed_provider_unavailable(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    app: Flask = make_app(**twilio_settings, SEND_MAX_ATTEMPTS=3)
    services: Services = app.extensions["notifier"]
    fake_twilio.fail_next(3, status=503)
    message_id = send_event(app.test_client())
    run_jobs(services)

    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "provider_unavailable"
    assert message.attempts == 3
    assert fake_twilio.messages == []


def test_running_the_same_job_twice_sends_once(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    message_id = send_event(client)
    delivery.send_message(services, message_id)
    delivery.send_message(services, message_id)
    run_jobs(services)
    assert len(fake_twilio.messages) == 1


def test_retry_waits_for_its_backoff(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    app: Flask = make_app(**twilio_settings, SEND_RETRY_BASE_SECONDS=30.0)
    services: Services = app.extensions["notifier"]
    fake_twilio.fail_next(1, status=500)
    message_id = send_event(app.test_client())
    run_jobs(services)

    message = load(services, message_id)
    assert message.status == "queued"
    assert message.next_attempt_at is not None
    wait = message.next_attempt_at - utcnow()
    assert timedelta(seconds=20) < wait <= timedelta(seconds=30)
    # While its backoff runs, the sweeper leaves it to its scheduled retry job.
    assert delivery.sweep(services, now=message.next_attempt_at).requeued == 0


def test_redis_down_during_the_request_then_sweeper_sends_once(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    redis_server = RedisServer().start()
    try:
        app: Flask = make_app(**twilio_settings, REDIS_URL=redis_server.url)
        services: Services = app.extensions["notifier"]
        redis_server.stop()

        response = post_signed(app.test_client(), dossier_event())
        assert response.status_code == 202
        message_id = response.get_json()["messages"][0]["id"]
        assert load(services, message_id).status == "queued"

        redis_server.start()
        # Within the grace period the sweeper waits (the job may simply be in the queue).
        assert delivery.sweep(services).requeued == 0
        later = utcnow() + timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS + 1)
        assert delivery.sweep(services, now=later).requeued == 1
        assert delivery.sweep(services, now=later).requeued == 0  # job now in the queue
        run_jobs(services)
        run_jobs(services)
    finally:
        redis_server.stop()

    assert len(fake_twilio.messages) == 1
    assert load(services, message_id).status == "sent"


# -- status callbacks --------------------------------------------------------------------------


def post_status(
    client: FlaskClient,
    fake: FakeTwilio,
    sid: str,
    status: str,
    error_code: str | None = None,
    signature: str | None = None,
) -> Any:
    url = "https://notifier.example.test/twilio/status"
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": fake.account_sid}
    if error_code:
        form["ErrorCode"] = error_code
    signature = signature or fake.status_callback_signature(url, form)
    return client.post("/twilio/status", data=form, headers={"X-Twilio-Signature": signature})


def sent_message(client: FlaskClient, services: Services, fake: FakeTwilio) -> tuple[str, str]:
    message_id = send_event(client)
    run_jobs(services)
    return message_id, fake.messages[0].sid


def test_status_callbacks_out_of_order_keep_the_furthest_status(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    message_id, sid = sent_message(client, services, fake_twilio)
    assert post_status(client, fake_twilio, sid, "delivered").status_code == 204
    assert post_status(client, fake_twilio, sid, "sent").status_code == 204

    message = load(services, message_id)
    assert message.status == "delivered"
    assert message.delivered_at is not None
    assert [h.status for h in message.history][-1] == "delivered"


@pytest.mark.parametrize(
    ("twilio_status", "error_code", "reason"),
    [
        ("undelivered", "30003", "unreachable"),
        ("undelivered", "21610", "opted_out"),
        ("failed", "39999", "undelivered"),  # a code we do not know
    ],
)
def test_failure_callback_fails_with_the_reason_of_its_error_code(
    client: FlaskClient,
    services: Services,
    fake_twilio: FakeTwilio,
    twilio_status: str,
    error_code: str,
    reason: str,
) -> None:
    message_id, sid = sent_message(client, services, fake_twilio)
    post_status(client, fake_twilio, sid, twilio_status, error_code=error_code)
    message = load(services, message_id)
    assert (message.status, message.failure_reason) == ("failed", reason)
    assert f"error {error_code}" in (message.failure_detail or "")


def test_undelivered_callback_for_an_unsubscribed_number_opts_it_out(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    _, sid = sent_message(client, services, fake_twilio)
    post_status(client, fake_twilio, sid, "undelivered", error_code="21610")
    with services.db.session() as session:
        contact = session.get(Contact, "+84912345678")
    assert contact is not None
    assert contact.opted_out is True


def test_bad_callback_signature_is_403_and_changes_nothing(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    message_id, sid = sent_message(client, services, fake_twilio)
    response = post_status(client, fake_twilio, sid, "delivered", signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403
    assert load(services, message_id).status == "sent"


def test_callback_signed_for_another_url_is_403(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    _, sid = sent_message(client, services, fake_twilio)
    form = {"MessageSid": sid, "MessageStatus": "delivered"}
    signature = fake_twilio.status_callback_signature("https://evil.example/twilio/status", form)
    response = client.post("/twilio/status", data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"To": "+84912345678", "Body": "Xin chao"}, 21603),  # neither From nor a service
        ({"To": "+84912345678", "From": "UBND-XA", "Body": "a" * 1601}, 21617),
        ({"To": "+84912345678", "From": "UBND-XA", "Body": "😀" * 801}, 21617),
    ],
)
def test_the_fake_refuses_what_twilio_refuses(
    fake_twilio: FakeTwilio, form: dict[str, str], code: int
) -> None:
    response = requests.post(
        f"{fake_twilio.url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json",
        data=form,
        auth=(fake_twilio.account_sid, fake_twilio.auth_token),
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert fake_twilio.messages == []


def test_the_longest_body_twilio_takes_is_1600_characters(fake_twilio: FakeTwilio) -> None:
    response = requests.post(
        f"{fake_twilio.url}/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json",
        data={"To": "+84912345678", "MessagingServiceSid": "MG" + "0" * 32, "Body": "a" * 1600},
        auth=(fake_twilio.account_sid, fake_twilio.auth_token),
        timeout=10,
    )
    assert response.status_code == 201


def test_console_provider_prints_and_reports_delivered(
    make_app: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app: Flask = make_app(SMS_PROVIDER="console")
    services: Services = app.extensions["notifier"]
    message_id = send_event(app.test_client())
    run_jobs(services)
    printed = capsys.readouterr().out
    assert "+84 91x xxx 678" in printed
    assert "Ho so 000.00.31.H26-250714-0001" in printed
    assert "0912345678" not in printed.replace(" ", "")
    assert load(services, message_id).status == "delivered"
