"""Every way to forge or abuse an inbound webhook is refused, and nothing is stored when it is."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from notifier.core import signing
from notifier.core.runtime import Services
from notifier.models import DossierEvent, Message
from tests.support.fake_twilio import FakeTwilio, SharedKey
from tests.support.helpers import WEBHOOK_SECRET, dossier_event, post_signed, run_jobs

PATH = "/api/v1/dossier-events"
STATUS_URL = "https://notifier.example.test/twilio/status"


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return twilio_settings


def body_of(event: dict[str, Any] | None = None) -> bytes:
    return json.dumps(event or dossier_event()).encode()


def post_raw(
    client: FlaskClient,
    body: bytes,
    headers: dict[str, str],
    content_type: str = "application/json",
    ip: str = "127.0.0.1",
) -> Any:
    return client.post(
        PATH,
        data=body,
        headers=headers,
        content_type=content_type,
        environ_base={"REMOTE_ADDR": ip},
    )


def stored(services: Services) -> tuple[int, int]:
    with services.db.session() as session:
        events = session.scalar(select(func.count()).select_from(DossierEvent)) or 0
        messages = session.scalar(select(func.count()).select_from(Message)) or 0
    return int(events), int(messages)


def hex_signature(timestamp: int, body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    return signing.signature(secret, timestamp, body).removeprefix("v1=")


# -- the dossier webhook -----------------------------------------------------------------------


def test_signature_made_for_another_timestamp_is_refused(
    client: FlaskClient, services: Services
) -> None:
    body = body_of()
    now = int(time.time())
    headers = {
        "X-Notifier-Timestamp": str(now),
        "X-Notifier-Signature": "v1=" + hex_signature(now - 60, body),
    }
    response = post_raw(client, body, headers)
    assert response.status_code == 401
    assert stored(services) == (0, 0)


def test_old_signature_replayed_outside_the_window_is_refused(
    client: FlaskClient, services: Services
) -> None:
    body = body_of()
    old = int(time.time()) - 301
    headers = signing.signed_headers(WEBHOOK_SECRET, body, old)
    response = post_raw(client, body, headers)
    assert response.status_code == 401
    assert "300 s" in response.get_json()["detail"]
    assert stored(services) == (0, 0)


def test_replay_inside_the_window_is_answered_as_a_duplicate_and_sends_once(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    body = body_of()
    headers = signing.signed_headers(WEBHOOK_SECRET, body)
    assert post_raw(client, body, headers).status_code == 202
    replay = post_raw(client, body, headers)
    run_jobs(services)
    assert replay.status_code == 200
    assert replay.get_json()["duplicate"] is True
    assert len(fake_twilio.messages) == 1


@pytest.mark.parametrize(
    "make_header",
    [
        pytest.param(lambda sig: "v0=" + sig, id="scheme v0"),
        pytest.param(lambda sig: "V1=" + sig, id="scheme upper case"),
        pytest.param(lambda sig: "sha256=" + sig, id="scheme sha256"),
        pytest.param(lambda sig: sig, id="no scheme"),
        pytest.param(lambda sig: "v1=" + sig.upper(), id="upper-case hex"),
        pytest.param(lambda sig: "v1= " + sig, id="space inside"),
        pytest.param(lambda sig: "v1=" + sig[:-1], id="truncated"),
        pytest.param(lambda sig: "v1=" + sig + "00", id="extended"),
        pytest.param(lambda sig: "v1=" + sig + "\u00e9", id="non-ascii tail"),
        pytest.param(lambda sig: "v1=" + sig + ";v2=x", id="other separator"),
        pytest.param(lambda sig: "v1=" + "0" * 64, id="zeros"),
        pytest.param(lambda sig: "v1=", id="empty digest"),
        pytest.param(lambda sig: ", ".join(["v1=" + "0" * 64] * 200), id="huge list"),
        pytest.param(lambda sig: "v1=" + sig + "," + "x" * 100_000, id="huge header"),
    ],
)
def test_malformed_signature_headers_are_refused(
    client: FlaskClient, services: Services, make_header: Any
) -> None:
    body = body_of()
    now = int(time.time())
    headers = {
        "X-Notifier-Timestamp": str(now),
        "X-Notifier-Signature": make_header(hex_signature(now, body)),
    }
    response = post_raw(client, body, headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert stored(services) == (0, 0)


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("+{now}", id="plus sign"),
        pytest.param("{now}.0", id="decimal"),
        pytest.param("{now_underscored}", id="underscores"),
        pytest.param("{now_arabic}", id="arabic-indic digits"),
        pytest.param("0x{now_hex}", id="hex"),
        pytest.param("{now}{now}{now}", id="huge number"),
        pytest.param("9" * 5000, id="five thousand digits"),
        pytest.param("", id="empty"),
    ],
)
def test_timestamps_in_any_but_plain_digits_are_refused(
    client: FlaskClient, services: Services, timestamp: str
) -> None:
    body = body_of()
    now = int(time.time())
    text = timestamp.format(
        now=now,
        now_underscored=f"{now:_}",
        now_arabic=str(now).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        now_hex=f"{now:x}",
    )
    headers = {
        "X-Notifier-Timestamp": text,
        "X-Notifier-Signature": signing.signature(WEBHOOK_SECRET, now, body),
    }
    response = post_raw(client, body, headers)
    assert response.status_code == 401
    assert stored(services) == (0, 0)


def test_surrounding_whitespace_in_headers_is_tolerated(client: FlaskClient) -> None:
    body = body_of()
    headers = {k: f"  {v} " for k, v in signing.signed_headers(WEBHOOK_SECRET, body).items()}
    assert post_raw(client, body, headers).status_code == 202


def test_header_injection_does_not_smuggle_a_signature(
    client: FlaskClient, services: Services
) -> None:
    body = body_of()
    now = int(time.time())
    good = signing.signature(WEBHOOK_SECRET, now, body)
    headers = {
        "X-Notifier-Timestamp": f"{now}\r\nX-Notifier-Signature: {good}",
        "X-Notifier-Signature": "v1=" + "0" * 64,
    }
    try:
        response = post_raw(client, body, headers)
    except ValueError:  # the HTTP layer itself refuses a header with a line break
        return
    assert response.status_code == 401
    assert stored(services) == (0, 0)


def test_a_rotated_secret_may_be_sent_alongside_the_current_one(client: FlaskClient) -> None:
    body = body_of()
    now = int(time.time())
    header = f"{signing.signature('old-secret', now, body)}, {signing.signature(WEBHOOK_SECRET, now, body)}"
    response = post_raw(
        client, body, {"X-Notifier-Timestamp": str(now), "X-Notifier-Signature": header}
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "application/jsonx",
        "",
    ],
)
def test_signed_body_with_another_content_type_is_415(
    client: FlaskClient, services: Services, content_type: str
) -> None:
    body = body_of()
    response = post_raw(client, body, signing.signed_headers(WEBHOOK_SECRET, body), content_type)
    assert response.status_code == 415
    assert stored(services) == (0, 0)


def test_json_with_a_charset_parameter_is_accepted(client: FlaskClient) -> None:
    response = post_signed(client, dossier_event(), content_type="application/json; charset=utf-8")
    assert response.status_code == 202


def lockout_client(make_app: Any, twilio_settings: dict[str, Any], **settings: Any) -> FlaskClient:
    """A client of an app that locks an address out after 5 failed signatures a minute."""
    app: Flask = make_app(**twilio_settings, RATE_LIMIT_AUTH_FAILURES_PER_IP="5/minute", **settings)
    return app.test_client()


def post_from(client: FlaskClient, ip: str, *, secret: str, forwarded_for: str = "") -> Any:
    """A signed event from `ip`, naming `forwarded_for` as the client when given."""
    body = body_of()
    headers = signing.signed_headers(secret, body)
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return post_raw(client, body, headers, ip=ip)


def test_an_address_that_keeps_failing_is_locked_out_but_others_are_not(
    make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    client = lockout_client(make_app, twilio_settings)
    for _ in range(5):
        assert post_from(client, "203.0.113.9", secret="guess").status_code == 401
    locked = post_from(client, "203.0.113.9", secret=WEBHOOK_SECRET)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) >= 1
    assert post_from(client, "198.51.100.7", secret=WEBHOOK_SECRET).status_code == 202


def test_behind_a_trusted_proxy_each_client_is_locked_out_on_its_own(
    make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    client = lockout_client(make_app, twilio_settings, TRUSTED_PROXIES=1)
    proxy = "10.0.0.2"  # every request reaches us from the proxy
    for _ in range(5):
        failed = post_from(client, proxy, secret="guess", forwarded_for="203.0.113.9")
        assert failed.status_code == 401
    locked = post_from(client, proxy, secret=WEBHOOK_SECRET, forwarded_for="203.0.113.9")
    assert locked.status_code == 429
    other = post_from(client, proxy, secret=WEBHOOK_SECRET, forwarded_for="198.51.100.7")
    assert other.status_code == 202


def test_without_a_trusted_proxy_a_forwarded_address_is_not_believed(
    make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    client = lockout_client(make_app, twilio_settings)
    for n in range(5):  # a guesser inventing a new address each time
        failed = post_from(client, "203.0.113.9", secret="guess", forwarded_for=f"192.0.2.{n}")
        assert failed.status_code == 401
    locked = post_from(client, "203.0.113.9", secret=WEBHOOK_SECRET, forwarded_for="192.0.2.99")
    assert locked.status_code == 429


def test_a_sender_whose_requests_authenticate_is_never_limited(
    make_app: Any, twilio_settings: dict[str, Any]
) -> None:
    app: Flask = make_app(**twilio_settings, RATE_LIMIT_AUTH_FAILURES_PER_IP="2/minute")
    client = app.test_client()
    for number in range(10):
        response = post_signed(client, dossier_event(event_id=f"burst-{number}"))
        assert response.status_code == 202


# -- the Twilio status callback ----------------------------------------------------------------

# A webhook SharedKey, as Twilio's webhooks configuration applies it to our URLs.
SHARED_KEY = SharedKey("webhooks_sharedkey_01jz8xq0f6e3d0v9k2m4n7p5rs", "shared-key-secret")
ROTATED_IN = SharedKey("webhooks_sharedkey_01jzb3r7s8t9v0w1x2y3z4a5bc", "next-secret")


def sent_sid(client: FlaskClient, services: Services, fake: FakeTwilio) -> str:
    assert post_signed(client, dossier_event()).status_code == 202
    run_jobs(services)
    return fake.messages[0].sid


def message_status(services: Services) -> str:
    with services.db.session() as session:
        return session.scalars(select(Message.status)).one()


def post_status(
    client: FlaskClient, form: dict[str, str], signature: str | None, **kwargs: Any
) -> Any:
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    return client.post("/twilio/status", data=form, headers=headers, **kwargs)


def test_status_callback_signed_with_another_token_is_403(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    form = {"MessageSid": sent_sid(client, services, fake_twilio), "MessageStatus": "delivered"}
    forged = FakeTwilio(auth_token="someone-elses-token").status_callback_signature(
        STATUS_URL, form
    )
    assert post_status(client, form, forged).status_code == 403
    assert message_status(services) == "sent"


def test_status_callback_without_signature_is_403(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    form = {"MessageSid": sent_sid(client, services, fake_twilio), "MessageStatus": "delivered"}
    assert post_status(client, form, None).status_code == 403
    assert message_status(services) == "sent"


def test_status_callback_with_a_changed_field_is_403(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    sid = sent_sid(client, services, fake_twilio)
    signed = {"MessageSid": sid, "MessageStatus": "sent"}
    signature = fake_twilio.status_callback_signature(STATUS_URL, signed)
    tampered = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    assert post_status(client, tampered, signature).status_code == 403
    assert message_status(services) == "sent"


def test_status_callback_signed_with_an_extra_query_is_403(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    form = {"MessageSid": sent_sid(client, services, fake_twilio), "MessageStatus": "delivered"}
    signature = fake_twilio.status_callback_signature(STATUS_URL + "?x=1", form)
    assert post_status(client, form, signature).status_code == 403


def test_status_callback_as_json_is_415(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    form = {"MessageSid": sent_sid(client, services, fake_twilio), "MessageStatus": "delivered"}
    signature = fake_twilio.status_callback_signature(STATUS_URL, {})
    response = client.post("/twilio/status", json=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 415
    assert message_status(services) == "sent"


def test_oversized_status_callback_is_413(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    form = {
        "MessageSid": sent_sid(client, services, fake_twilio),
        "MessageStatus": "delivered",
        "Padding": "x" * 70_000,
    }
    signature = fake_twilio.status_callback_signature(STATUS_URL, form)
    response = post_status(client, form, signature)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    assert message_status(services) == "sent"


# -- inbound text is stored in one canonical form -----------------------------------------------


def test_inbound_text_is_normalised_before_it_is_stored_or_sent(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    from notifier.models import Dossier

    decomposed = "Chu\u031b\u0301ng thu\u031b\u0323c ba\u0309n sao\u200b\x00 tu\u031b\u0300  ba\u0309n chi\u0301nh"
    event = dossier_event(
        **{
            "dossier.procedure": decomposed,
            "citizen.name": "Nguye\u0302\u0303n\tVa\u0306n\u202e An",
            "dossier.note": "line one\r\n\r\nline\x07 two",
        }
    )
    response = post_signed(client, event)
    assert response.status_code == 202
    [summary] = response.get_json()["messages"]
    assert summary["segments"] == 1
    run_jobs(services)
    with services.db.session() as session:
        dossier = session.scalars(select(Dossier)).one()
        note = session.scalars(select(DossierEvent.note)).one()
    assert dossier.procedure == "Chứng thực bản sao từ bản chính"
    assert dossier.citizen_name == "Nguyễn Văn An"
    assert note == "line one\nline two"
    assert "Chung thuc ban sao tu ban chinh" in fake_twilio.messages[0].body


# -- Twilio webhooks signed with a SharedKey ----------------------------------------------------


@dataclass
class SharedKeyApp:
    """An app with shared keys configured, and the form of a status callback for its SMS."""

    client: FlaskClient
    services: Services
    form: dict[str, str]

    def post(self, headers: dict[str, str]) -> int:
        return int(self.client.post("/twilio/status", data=self.form, headers=headers).status_code)


@pytest.fixture
def shared_key_app(
    make_app: Any, twilio_settings: dict[str, Any], fake_twilio: FakeTwilio
) -> SharedKeyApp:
    keys = f"{SHARED_KEY.id}:{SHARED_KEY.secret}, {ROTATED_IN.id}:{ROTATED_IN.secret}"
    app: Flask = make_app(**twilio_settings, TWILIO_WEBHOOK_SHARED_KEYS=keys)
    client, services = app.test_client(), app.extensions["notifier"]
    form = {"MessageSid": sent_sid(client, services, fake_twilio), "MessageStatus": "delivered"}
    return SharedKeyApp(client, services, form)


@pytest.mark.parametrize(
    "key",
    [SHARED_KEY, ROTATED_IN, SharedKey(SHARED_KEY.id, SHARED_KEY.secret, "HMAC_SHA1"), None],
    ids=["sha256", "the-key-rotated-in", "sha1", "auth-token-without-the-header"],
)
def test_a_status_callback_signed_with_a_shared_key_is_accepted(
    shared_key_app: SharedKeyApp, fake_twilio: FakeTwilio, key: SharedKey | None
) -> None:
    headers = fake_twilio.webhook_headers(STATUS_URL, shared_key_app.form, key)
    assert shared_key_app.post(headers) == 204
    assert message_status(shared_key_app.services) == "delivered"


@pytest.mark.parametrize(
    ("signed_with", "named"),
    [
        (SharedKey(SHARED_KEY.id, "a-guessed-secret"), SHARED_KEY),
        (SHARED_KEY, SharedKey("webhooks_sharedkey_unknown", SHARED_KEY.secret)),
        (SHARED_KEY, SharedKey(SHARED_KEY.id, SHARED_KEY.secret, "HMAC_MD5")),
        # The header says a shared key signed: the auth token's signature under it is forged.
        (None, SharedKey(SHARED_KEY.id, SHARED_KEY.secret, "HMAC_SHA1")),
    ],
    ids=["wrong-secret", "unknown-key", "unsupported-algorithm", "auth-token-under-the-header"],
)
def test_a_bad_shared_key_signature_is_403(
    shared_key_app: SharedKeyApp,
    fake_twilio: FakeTwilio,
    signed_with: SharedKey | None,
    named: SharedKey,
) -> None:
    headers = fake_twilio.webhook_headers(STATUS_URL, shared_key_app.form, signed_with)
    headers["X-Twilio-Webhooks-Signature-Settings"] = f"key={named.id},algorithm={named.algorithm}"
    assert shared_key_app.post(headers) == 403
    assert message_status(shared_key_app.services) == "sent"


def test_without_shared_keys_configured_a_shared_key_signature_is_403(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    form = {"MessageSid": sent_sid(client, services, fake_twilio), "MessageStatus": "delivered"}
    headers = fake_twilio.webhook_headers(STATUS_URL, form, SHARED_KEY)
    assert client.post("/twilio/status", data=form, headers=headers).status_code == 403


def test_shared_keys_must_be_id_and_secret(make_app: Any) -> None:
    with pytest.raises(ValueError, match="TWILIO_WEBHOOK_SHARED_KEYS"):
        make_app(TWILIO_WEBHOOK_SHARED_KEYS="just-a-secret")
