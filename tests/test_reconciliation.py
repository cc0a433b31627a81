"""A worker that dies mid-send: the provider's own record decides, so nothing is sent twice."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from notifier.core.db import utcnow
from notifier.core.runtime import Services
from notifier.messaging import delivery
from notifier.messaging.outbox import claim_for_sending
from notifier.models import Message
from notifier.providers import OutboundSms
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import dossier_event, post_signed, run_jobs

CITIZEN = "+84912345678"


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return {**twilio_settings, "SENDING_STALE_SECONDS": 120}


def load(services: Services, message_id: str) -> Message:
    with services.db.session() as session:
        return session.scalars(
            select(Message).where(Message.id == message_id).options(selectinload(Message.history))
        ).one()


def queue_notice(client: FlaskClient, event_id: str = "ev-1", **changes: Any) -> str:
    response = post_signed(client, dossier_event(event_id=event_id, **changes))
    assert response.status_code == 202
    return str(response.get_json()["messages"][0]["id"])


def die_mid_send(services: Services, message_id: str, *, provider_accepts: bool) -> None:
    """What a worker killed between its claim and its commit leaves behind."""
    with services.db.transaction() as session:
        message = claim_for_sending(session, message_id)
        assert message is not None
        outbound = OutboundSms(message.id, message.phone, message.body or "", message.segments)
    if provider_accepts:
        services.provider().send(outbound)


def later(services: Services) -> Any:
    return utcnow() + timedelta(seconds=services.settings.SENDING_STALE_SECONDS + 1)


def test_killed_after_the_provider_accepted_is_adopted_not_resent(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    message_id = queue_notice(client)
    die_mid_send(services, message_id, provider_accepts=True)
    posts_before = fake_twilio.requests

    result = delivery.sweep(services, now=later(services))
    run_jobs(services)

    assert (result.adopted, result.retried) == (1, 0)
    [sms] = fake_twilio.sent_to(CITIZEN)
    assert fake_twilio.requests == posts_before  # no second POST
    message = load(services, message_id)
    assert message.status == "sent"
    assert message.provider_message_id == sms.sid
    assert message.history[-1].source == "reconciled"


def test_killed_before_the_provider_had_it_is_sent_once(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    message_id = queue_notice(client)
    die_mid_send(services, message_id, provider_accepts=False)

    result = delivery.sweep(services, now=later(services))
    run_jobs(services)

    assert (result.adopted, result.retried) == (0, 1)
    assert len(fake_twilio.sent_to(CITIZEN)) == 1
    message = load(services, message_id)
    assert message.status == "sent"
    assert [h.status for h in message.history] == ["queued", "sending", "queued", "sending", "sent"]


def test_a_send_still_in_progress_is_left_alone(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    message_id = queue_notice(client)
    die_mid_send(services, message_id, provider_accepts=False)
    result = delivery.sweep(services, now=utcnow() + timedelta(seconds=30))
    assert (result.adopted, result.retried) == (0, 0)
    assert load(services, message_id).status == "sending"


def test_two_identical_texts_each_adopt_their_own_record(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    # The same notice for the same citizen twice (a resent event under a new id).
    first = queue_notice(client, "ev-1")
    second = queue_notice(client, "ev-2", occurred_at="2025-07-14T08:31:00+07:00")
    die_mid_send(services, first, provider_accepts=True)
    die_mid_send(services, second, provider_accepts=True)

    delivery.sweep(services, now=later(services))

    sids = {load(services, first).provider_message_id, load(services, second).provider_message_id}
    assert sids == {m.sid for m in fake_twilio.sent_to(CITIZEN)}
    assert len(fake_twilio.sent_to(CITIZEN)) == 2


def test_an_earlier_message_to_the_same_number_is_not_mistaken_for_the_stuck_one(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    queue_notice(client, "ev-1")
    run_jobs(services)  # the "received" notice, sent normally
    stuck = queue_notice(
        client, "ev-2", occurred_at="2025-07-16T08:00:00+07:00", **{"dossier.status": "ready"}
    )
    die_mid_send(services, stuck, provider_accepts=False)

    result = delivery.sweep(services, now=later(services))
    run_jobs(services)

    assert result.retried == 1
    bodies = [m.body for m in fake_twilio.sent_to(CITIZEN)]
    assert len(bodies) == 2
    assert "da xu ly xong" in bodies[1]


def test_a_second_scheduler_finds_the_stuck_message_already_settled(
    client: FlaskClient, services: Services, make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    other: Services = make_app(**twilio_settings).extensions["notifier"]
    message_id = queue_notice(client)
    die_mid_send(services, message_id, provider_accepts=False)
    when = later(services)

    first = delivery.sweep(services, now=when)
    second = delivery.sweep(other, now=when)

    assert first.retried + second.retried == 1
    assert len(load(services, message_id).history) == 3


def test_provider_answering_after_the_client_gave_up_is_not_sent_twice(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    app = make_app(**twilio_settings, PROVIDER_TIMEOUT_SECONDS=0.3)
    services: Services = app.extensions["notifier"]
    message_id = queue_notice(app.test_client())
    fake_twilio.hang_for(5, delay=0.6)  # accepted, but only after the client timed out

    assert delivery.send_message(services, message_id) == "sending"
    deadline = time.monotonic() + 10
    while not fake_twilio.sent_to(CITIZEN) and time.monotonic() < deadline:
        time.sleep(0.05)  # the provider finishes accepting it
    result = delivery.sweep(services, now=later(services))
    run_jobs(services)

    assert (result.adopted, result.retried) == (1, 0)
    assert len(fake_twilio.sent_to(CITIZEN)) == 1
    assert load(services, message_id).status == "sent"


def test_a_refused_connection_is_retried_at_once_not_reconciled(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> None:
    from tests.support.processes import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    app = make_app(**{**twilio_settings, "TWILIO_API_BASE_URL": closed, "SEND_MAX_ATTEMPTS": 2})
    services: Services = app.extensions["notifier"]
    message_id = queue_notice(app.test_client())
    run_jobs(services)
    message = load(services, message_id)
    assert message.status == "failed"
    assert message.failure_reason == "provider_unavailable"
    assert message.attempts == 2
