"""POST /twilio/inbound: a citizen's text over Twilio, answered in the TwiML itself."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from notifier.core.runtime import Services
from notifier.models import InboundMessage, Message
from tests.support.conversation import make_session
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import run_jobs
from tests.support.live import LiveServer

SIGNED_URL = "https://notifier.example.test/twilio/inbound"


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return twilio_settings


def text_in(
    live: LiveServer,
    fake: FakeTwilio,
    body: str,
    *,
    sender: str = "+84912345678",
    sid: str = "SM" + "1" * 32,
    signature: str | None = None,
) -> requests.Response:
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": fake.account_sid,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }
    signature = signature or fake.status_callback_signature(SIGNED_URL, form)
    return requests.post(
        f"{live.url}/twilio/inbound",
        data=form,
        headers={"X-Twilio-Signature": signature},
        timeout=10,
    )


def twiml_messages(response: requests.Response) -> list[str]:
    root = ET.fromstring(response.content)  # noqa: S314 - our own answer
    assert root.tag == "Response"
    return [element.text or "" for element in root.iter("Message")]


def test_booking_is_answered_in_the_twiml_and_not_sent_again(
    live_server: LiveServer, fake_twilio: FakeTwilio, services: Services
) -> None:
    make_session(services)
    response = text_in(live_server, fake_twilio, "Đặt 1")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    [reply] = twiml_messages(response)
    assert reply.startswith("UBND xa Dai Thanh: Da dat lich tiep cong dan")
    run_jobs(services)
    assert fake_twilio.messages == []
    with services.db.session() as session:
        message = session.scalars(select(Message).options(selectinload(Message.history))).one()
        inbound = session.scalars(select(InboundMessage)).one()
    assert message.provider == "twilio"
    assert message.kind == "reply"
    assert message.status == "sent"
    assert [h.status for h in message.history] == ["queued", "sent"]
    assert inbound.channel == "twilio"
    assert inbound.reply_text == reply
    assert inbound.reply_message_id == message.id


def test_a_retried_webhook_gets_the_same_answer_once_stored(
    live_server: LiveServer, fake_twilio: FakeTwilio, services: Services
) -> None:
    make_session(services)
    first = twiml_messages(text_in(live_server, fake_twilio, "DAT 1"))
    again = twiml_messages(text_in(live_server, fake_twilio, "DAT 1"))
    assert first == again
    with services.db.session() as session:
        assert len(session.scalars(select(InboundMessage)).all()) == 1
        assert len(session.scalars(select(Message)).all()) == 1


def test_suppressed_help_is_an_empty_twiml(
    live_server: LiveServer, fake_twilio: FakeTwilio
) -> None:
    assert len(twiml_messages(text_in(live_server, fake_twilio, "hello", sid="SM" + "a" * 32))) == 1
    assert twiml_messages(text_in(live_server, fake_twilio, "hello?", sid="SM" + "b" * 32)) == []


def test_bad_signature_is_403_stores_nothing_logs_no_text(
    live_server: LiveServer,
    fake_twilio: FakeTwilio,
    services: Services,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        response = text_in(live_server, fake_twilio, "HS bí mật", signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/problem+json"
    with services.db.session() as session:
        assert session.scalars(select(InboundMessage)).all() == []
    assert "twilio webhook /twilio/inbound refused" in caplog.text
    assert "bí mật" not in caplog.text


def test_missing_sender_is_400(live_server: LiveServer, fake_twilio: FakeTwilio) -> None:
    form = {"MessageSid": "SM" + "2" * 32, "Body": "LICH"}
    signature = fake_twilio.status_callback_signature(SIGNED_URL, form)
    response = requests.post(
        f"{live_server.url}/twilio/inbound",
        data=form,
        headers={"X-Twilio-Signature": signature},
        timeout=10,
    )
    assert response.status_code == 400
