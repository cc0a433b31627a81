"""No log line, at DEBUG and from any library, carries a full phone number or a secret."""

from __future__ import annotations

import base64
import io
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from rq.worker import SimpleWorker

from notifier.core.db import utcnow
from notifier.core.logs import JsonFormatter
from notifier.core.runtime import Services
from notifier.messaging import delivery
from notifier.messaging.outbox import claim_for_sending
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import WEBHOOK_SECRET, dossier_event, post_signed

# The citizen's number in any form a line might hold it: +84912345678, 0912345678,
# 0912 345 678, 091.234.5678, 84912345678, %2B84912345678…
FULL_NUMBER = re.compile(r"9\D{0,3}1\D{0,3}2\D{0,3}3\D{0,3}4\D{0,3}5\D{0,3}6\D{0,3}7\D{0,3}8")


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def run_jobs_logged(services: Services) -> None:
    SimpleWorker(list(services.queues.values()), connection=services.redis).work(
        burst=True, logging_level="DEBUG"
    )


def status_callback(app: Flask, fake: FakeTwilio, sid: str, status: str, **extra: str) -> None:
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": fake.account_sid, **extra}
    signature = fake.status_callback_signature("https://notifier.example.test/twilio/status", form)
    response = app.test_client().post(
        "/twilio/status", data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code in (204, 403)


def test_full_flow_at_debug_logs_no_phone_number_and_no_secret(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio, log_lines: io.StringIO
) -> None:
    app: Flask = make_app(**twilio_settings, LOG_LEVEL="DEBUG")
    services: Services = app.extensions["notifier"]
    client = app.test_client()
    api_key = app.test_cli_runner().invoke(args=["notifier", "create-api-key", "one-stop"])
    plaintext_key = api_key.output.strip()

    # A first attempt that fails and is retried, a send, then receipts.
    fake_twilio.fail_next(1, status=500, message="Upstream error for +84912345678")
    assert post_signed(client, dossier_event()).status_code == 202
    run_jobs_logged(services)
    sid = fake_twilio.messages[0].sid
    status_callback(app, fake_twilio, sid, "sent")
    status_callback(app, fake_twilio, sid, "delivered")
    # A number the provider refuses, with the number in its error text, as Twilio words it.
    fake_twilio.fail_next(
        1, status=400, code=21211, message="The 'To' number 0912 345 678 is not valid"
    )
    post_signed(client, dossier_event(event_id="second", **{"dossier.status": "ready"}))
    run_jobs_logged(services)
    # A worker that died mid-send, settled against the provider's record (a GET by number).
    stuck = post_signed(
        client, dossier_event(event_id="third", occurred_at="2025-07-17T08:00:00+07:00")
    ).get_json()["messages"][0]["id"]
    with services.db.transaction() as session:
        claim_for_sending(session, stuck)
    stale = timedelta(seconds=services.settings.SENDING_STALE_SECONDS + 1)
    assert delivery.sweep(services, now=utcnow() + stale).retried == 1
    run_jobs_logged(services)
    # Refusals: a forged webhook and a forged callback.
    post_signed(client, dossier_event(event_id="forged"), secret="guess")
    app.test_client().post("/twilio/status", data={"MessageSid": sid, "MessageStatus": "failed"})

    lines = log_lines.getvalue().splitlines()
    assert len(lines) > 10  # DEBUG really was on
    secrets = {
        "webhook secret": WEBHOOK_SECRET,
        "Twilio token": fake_twilio.auth_token,
        "Twilio basic auth": base64.b64encode(
            f"{fake_twilio.account_sid}:{fake_twilio.auth_token}".encode()
        ).decode(),
        "session key": "test-secret-key",
        "API key": plaintext_key,
    }
    leaks = [line for line in lines if FULL_NUMBER.search(line)]
    leaks += [f"{name}: {line}" for line in lines for name, s in secrets.items() if s in line]
    assert leaks == []
