"""Delivery callbacks: final statuses POSTed, signed, to an API key's URL, retried, recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier.core import signing
from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import callbacks, consent, delivery
from notifier.models import ApiKey, Callback, CallbackAttempt
from tests.support.api import make_key, post
from tests.support.helpers import dossier_event, post_signed, run_jobs
from tests.support.receiver import Receiver

URL = "/api/v1/notifications"
SECRET = "callback-secret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"CALLBACK_RETRY_BASE_SECONDS": 0.0, "SEND_MAX_ATTEMPTS": 2}


def key_for(services: Services, url: str, kind: str = "test") -> str:
    return make_key(services, kind=kind, callback_url=url, callback_secret=SECRET)


def send(client: FlaskClient, key: str, phone: str = "0912 345 678", **extra: Any) -> str:
    response = post(
        client, key, URL, {"phone": phone, "body": "Xin chào", "reference": "ref-1", **extra}
    )
    assert response.status_code == 201
    return str(response.get_json()["id"])


def attempts(services: Services) -> list[CallbackAttempt]:
    with services.db.session() as session:
        return list(session.scalars(select(CallbackAttempt).order_by(CallbackAttempt.id)))


def the_callback(services: Services) -> Callback:
    with services.db.session() as session:
        return session.scalars(select(Callback)).one()


def test_delivered_status_is_posted_signed(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    message_id = send(client, key_for(services, receiver.url))
    run_jobs(services)

    [request] = receiver.received
    assert request.path == "/callbacks"
    assert request.headers["Content-Type"] == "application/json"
    signing.verify(
        SECRET,
        request.body,
        request.headers["X-Notifier-Timestamp"],
        request.headers["X-Notifier-Signature"],
    )
    body = request.json
    assert body["id"] == message_id
    assert body["reference"] == "ref-1"
    assert body["status"] == "delivered"
    assert body["failure_reason"] is None
    assert body["phone"] == "+84 91x xxx 678"
    assert body["delivered_at"] is not None
    [attempt] = attempts(services)
    assert (attempt.attempt, attempt.response_code, attempt.outcome) == (1, 200, "delivered")
    assert attempt.status == "delivered"
    assert the_callback(services).state == "delivered"


def test_receiver_answering_500_twice_then_200_gets_three_identical_posts(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    receiver.answer(500, 500)
    send(client, key_for(services, receiver.url))
    run_jobs(services)

    assert len(receiver.received) == 3
    assert len({request.body for request in receiver.received}) == 1
    recorded = [(a.attempt, a.response_code, a.outcome) for a in attempts(services)]
    assert recorded == [(1, 500, "retry"), (2, 500, "retry"), (3, 200, "delivered")]
    callback = the_callback(services)
    assert (callback.state, callback.attempts) == ("delivered", 3)


def test_receiver_answering_400_is_not_retried(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    receiver.answer(400)
    send(client, key_for(services, receiver.url))
    run_jobs(services)

    assert len(receiver.received) == 1
    [attempt] = attempts(services)
    assert (attempt.response_code, attempt.outcome) == (400, "failed")
    callback = the_callback(services)
    assert callback.state == "failed"
    assert callback.last_error == "HTTP 400"


def test_429_waits_at_least_retry_after(make_app: Any, receiver: Receiver) -> None:
    app: Flask = make_app(CALLBACK_RETRY_BASE_SECONDS=1.0)
    services: Services = app.extensions["notifier"]
    receiver.answer(429, Retry_After="120")
    send(app.test_client(), key_for(services, receiver.url))
    run_jobs(services)

    callback = the_callback(services)
    assert callback.state == "pending"
    wait = callback.next_attempt_at - utcnow()
    assert timedelta(seconds=100) < wait <= timedelta(seconds=120)
    assert [a.outcome for a in attempts(services)] == ["retry"]


def test_connection_refused_is_retried_with_backoff_until_the_receiver_is_back(
    make_app: Any,
) -> None:
    app: Flask = make_app(CALLBACK_RETRY_BASE_SECONDS=30.0)
    services: Services = app.extensions["notifier"]
    gone = Receiver().start()
    url = gone.url
    gone.stop()
    send(app.test_client(), key_for(services, url))
    run_jobs(services)

    callback = the_callback(services)
    assert callback.state == "pending"
    assert timedelta(seconds=20) < callback.next_attempt_at - utcnow() <= timedelta(seconds=30)
    [failed] = attempts(services)
    assert failed.response_code is None
    assert "ConnectionError" in (failed.error or "")

    assert callbacks.deliver(services, callback.id) == "pending"  # not due yet: nothing sent
    back = Receiver(port=gone.port).start()
    try:
        later = utcnow() + timedelta(seconds=31)
        assert callbacks.deliver(services, callback.id, now=later) == "delivered"
    finally:
        back.stop()
    assert len(back.received) == 1
    assert [a.outcome for a in attempts(services)] == ["retry", "delivered"]


def test_retries_stop_after_the_retry_window(make_app: Any, receiver: Receiver) -> None:
    app: Flask = make_app(CALLBACK_RETRY_BASE_SECONDS=30.0, CALLBACK_RETRY_HOURS=0.001)
    services: Services = app.extensions["notifier"]
    receiver.answer(503)
    send(app.test_client(), key_for(services, receiver.url))
    run_jobs(services)

    assert the_callback(services).state == "failed"
    assert [(a.response_code, a.outcome) for a in attempts(services)] == [(503, "failed")]


def test_failed_and_rejected_statuses_are_posted_with_their_reason(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    key = key_for(services, receiver.url)
    send(client, key, "0900 000 003", reference="permanent")
    with services.db.transaction() as session:
        consent.opt_out(session, "+84987654321", channel="sms")
    send(client, key, "0987 654 321", reference="opted-out", essential=False)
    run_jobs(services)

    posted = {request.json["reference"]: request.json for request in receiver.received}
    assert posted["permanent"]["status"] == "failed"
    assert posted["permanent"]["failure_reason"] == "unreachable"
    assert posted["opted-out"]["status"] == "rejected"
    assert posted["opted-out"]["failure_reason"] == "opted_out"


def test_temporary_failures_send_one_callback_for_the_final_status_only(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    send(client, key_for(services, receiver.url), "0900 000 002")
    run_jobs(services)
    [request] = receiver.received
    assert request.json["status"] == "failed"
    assert request.json["failure_reason"] == "provider_unavailable"


def test_no_callback_without_a_callback_url(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    send(client, make_key(services, kind="test"))
    post_signed(client, dossier_event())  # not an API message at all
    run_jobs(services)
    assert receiver.received == []
    with services.db.session() as session:
        assert session.scalars(select(Callback)).all() == []


def test_sweep_delivers_a_callback_whose_job_was_lost_once(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    message_id = send(client, key_for(services, receiver.url))
    services.redis.flushdb()  # the send job is lost too: send by hand
    delivery.send_message(services, message_id)
    services.redis.flushdb()  # and now the callback job

    assert callbacks.sweep(services) == 0  # within the grace period
    later = utcnow() + timedelta(seconds=services.settings.SWEEP_GRACE_SECONDS + 1)
    assert callbacks.sweep(services, now=later) == 1
    assert callbacks.sweep(services, now=later) == 0  # its job is now in the queue
    run_jobs(services)
    run_jobs(services)

    assert len(receiver.received) == 1
    assert the_callback(services).state == "delivered"


def test_a_callback_job_run_twice_posts_once(
    client: FlaskClient, services: Services, receiver: Receiver
) -> None:
    send(client, key_for(services, receiver.url))
    run_jobs(services)
    callback = the_callback(services)
    assert callbacks.deliver(services, callback.id) == "delivered"
    assert len(receiver.received) == 1


def test_a_key_whose_callback_url_was_removed_stops_its_callbacks(
    make_app: Any, receiver: Receiver
) -> None:
    app: Flask = make_app(CALLBACK_RETRY_BASE_SECONDS=30.0)
    services: Services = app.extensions["notifier"]
    receiver.answer(500)
    send(app.test_client(), key_for(services, receiver.url))
    run_jobs(services)
    with services.db.transaction() as session:
        for key in session.scalars(select(ApiKey)):
            key.callback_url = None

    later = utcnow() + timedelta(minutes=5)
    assert callbacks.deliver(services, the_callback(services).id, now=later) == "failed"
    assert len(receiver.received) == 1
    assert "no longer" in (the_callback(services).last_error or "")
