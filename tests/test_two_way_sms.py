"""Citizens texting the commune through SMS Gateway for Android, everything over real HTTP.

The app runs on a threaded HTTP server on 127.0.0.1; each text is a signed `sms:received`
webhook; the reply goes out through the fake gateway's API, where the test reads it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select, update

from notifier import reception
from notifier.api import keys
from notifier.core.runtime import Services
from notifier.messaging import outbox
from notifier.models import Booking, ConsentEvent, Contact, InboundMessage, Message
from notifier.text import sms
from tests.support.conversation import Phone, bookings, day_and_month, make_session
from tests.support.fake_android_gateway import FakeAndroidGateway, post_event_http
from tests.support.helpers import dossier_event, post_signed, run_jobs
from tests.support.live import LiveServer

OFFICE = "UBND xa Dai Thanh"
HELP = (
    f"{OFFICE}: Soan LICH xem lich tiep dan; DAT <so> dat lich; HUY huy lich; "
    "HS <ma ho so> tra cuu ho so; TC ngung nhan tin nhac; DK nhan lai."
)


@pytest.fixture
def settings_overrides(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    return {**gateway_settings, "SMS_PROVIDER": "android_gateway"}


@pytest.fixture
def phone(live_server: LiveServer, fake_gateway: FakeAndroidGateway, services: Services) -> Phone:
    return Phone("0912345678", "+84912345678", live_server.url, fake_gateway, services)


@pytest.fixture
def neighbour(
    live_server: LiveServer, fake_gateway: FakeAndroidGateway, services: Services
) -> Phone:
    return Phone("84987654321", "+84987654321", live_server.url, fake_gateway, services)


def inbound_rows(services: Services) -> list[InboundMessage]:
    with services.db.session() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


# -- the schedule ------------------------------------------------------------------------------


def test_lich_lists_the_next_sessions_with_their_numbers(phone: Phone, services: Services) -> None:
    first = make_session(services, days_ahead=2)
    second = make_session(services, days_ahead=9, capacity=1)
    reception.Reception(services).book(session_id=second.id, phone="0900000001", channel="api")

    reply = phone.text("Lịch")

    w1, d1, _ = day_and_month(services, first)
    w2, d2, _ = day_and_month(services, second)
    assert reply == (
        f"{OFFICE}: Lich tiep cong dan: 1) {w1} {d1} 08:00; 2) {w2} {d2} 08:00 (het cho). "
        "Soan DAT <so> de dat lich."
    )


def test_lich_with_nothing_open_says_so(phone: Phone, services: Services) -> None:
    make_session(
        services,
        starts_at=datetime.now(UTC) - timedelta(hours=1),
        now=datetime.now(UTC) - timedelta(hours=2),
    )
    assert phone.text("LICH") == (
        f"{OFFICE}: Hien chua co buoi tiep cong dan nao nhan dat lich. Xin Ong/Ba nhan LICH lai sau."
    )


# -- booking -----------------------------------------------------------------------------------


def test_dat_books_the_first_place_and_replies_with_code_and_time(
    phone: Phone, services: Services
) -> None:
    info = make_session(services)
    reply = phone.text("DAT 1")

    [booking] = bookings(services)
    weekday, _, date = day_and_month(services, info)
    assert reply == (
        f"{OFFICE}: Da dat lich tiep cong dan {weekday} {date}, moi Ong/Ba den luc 08:00 tai "
        f"Phong tiep cong dan UBND xa. Ma: {booking.code}. Huy: HUY {booking.code}"
    )
    assert sms.analyze(reply).segments == 1
    assert booking.phone == "+84912345678"
    assert booking.channel == "android"
    assert booking.expected_at == info.starts_at
    with services.db.session() as session:
        message = session.scalars(select(Message).where(Message.kind == "reply")).one()
    assert message.provider == "android_gateway"
    assert message.status == "sent"
    assert message.booking_id == booking.id


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("dat1", None),
        ("Đặt 1", None),
        ("DAT  1 dat dai", "dat dai"),
        ("Đặt 1 tranh chấp đất đai", "tranh chấp đất đai"),
        ("datt 1", None),
        ("  dat so 1 ", None),
    ],
)
def test_dat_is_understood_however_it_is_typed(
    phone: Phone, services: Services, text: str, topic: str | None
) -> None:
    make_session(services)
    reply = phone.text(text)
    assert reply is not None
    assert reply.startswith(f"{OFFICE}: Da dat lich")
    [booking] = bookings(services)
    assert booking.topic == topic


def test_citizens_get_consecutive_times(phone: Phone, neighbour: Phone, services: Services) -> None:
    make_session(services, capacity=5, slot_minutes=20)
    assert "luc 08:00" in (phone.text("DAT 1") or "")
    assert "luc 08:20" in (neighbour.text("DAT 1") or "")


def test_second_dat_returns_the_existing_booking(phone: Phone, services: Services) -> None:
    make_session(services)
    phone.text("DAT 1")
    again = phone.text("dat 1 hoi them")

    [booking] = bookings(services)
    assert again is not None
    assert again.startswith(f"{OFFICE}: Ong/Ba da co lich")
    assert f"ma {booking.code}" in again


def test_full_session_is_refused_politely(
    phone: Phone, neighbour: Phone, services: Services
) -> None:
    info = make_session(services, capacity=1)
    neighbour.text("DAT 1")
    weekday, _, date = day_and_month(services, info)
    assert phone.text("DAT 1") == (
        f"{OFFICE}: Buoi tiep cong dan so 1 ({weekday} {date}) da het cho. "
        "Xin Ong/Ba soan LICH de chon buoi khac."
    )
    assert len(bookings(services)) == 1


def test_session_already_started_cannot_be_booked(phone: Phone, services: Services) -> None:
    now = datetime.now(UTC)
    make_session(services, starts_at=now - timedelta(hours=1), now=now - timedelta(hours=2))
    reply = phone.text("DAT 1")
    assert reply == (
        f"{OFFICE}: Buoi tiep cong dan so 1 da bat dau hoac da dien ra, khong nhan dat lich. "
        "Xin Ong/Ba soan LICH de chon buoi khac."
    )
    assert bookings(services) == []


def test_cancelled_session_cannot_be_booked(phone: Phone, services: Services) -> None:
    info = make_session(services)
    reception.Reception(services).cancel_session(info.id, "Chủ tịch đi công tác")
    assert phone.text("DAT 1") == (
        f"{OFFICE}: Buoi tiep cong dan so 1 da bi huy. Xin Ong/Ba soan LICH de chon buoi khac."
    )


def test_unknown_number_points_to_lich(phone: Phone, services: Services) -> None:
    make_session(services)
    assert phone.text("DAT 7") == (
        f"{OFFICE}: Khong co buoi tiep cong dan so 7. "
        "Xin Ong/Ba soan LICH de xem cac buoi dang nhan dat lich."
    )


def test_dat_without_a_number_explains_how(phone: Phone, services: Services) -> None:
    reply = phone.text("DAT")
    assert reply is not None
    assert "soan DAT <so buoi>, vi du DAT 1" in reply


# -- cancelling --------------------------------------------------------------------------------


def test_huy_cancels_the_upcoming_booking_and_frees_its_time(
    phone: Phone, neighbour: Phone, services: Services
) -> None:
    info = make_session(services)
    phone.text("DAT 1")
    reply = phone.text("huy")

    [booking] = bookings(services)
    weekday, _, date = day_and_month(services, info)
    assert reply == (
        f"{OFFICE}: Da huy lich {booking.code} ({weekday} {date} luc 08:00). "
        "Cam on Ong/Ba da bao truoc."
    )
    assert booking.state == "cancelled"
    assert "luc 08:00" in (neighbour.text("DAT 1") or "")
    assert reception.Reception(services).session(info.id).booked == 1


def test_huy_with_a_code(phone: Phone, services: Services) -> None:
    make_session(services)
    make_session(services, days_ahead=3)
    phone.text("DAT 1")
    phone.text("DAT 2")
    _first, second = bookings(services)
    reply = phone.text(f"HỦY {second.code.lower()}")
    assert reply is not None
    assert reply.startswith(f"{OFFICE}: Da huy lich {second.code}")
    assert [b.state for b in bookings(services)] == ["booked", "cancelled"]


def test_huy_with_two_bookings_asks_which(phone: Phone, services: Services) -> None:
    make_session(services)
    make_session(services, days_ahead=3)
    phone.text("DAT 1")
    phone.text("DAT 2")
    first, _second = bookings(services)
    reply = phone.text("HUY")
    assert reply is not None
    assert f"Ong/Ba co 2 lich: {first.code} (" in reply
    assert reply.endswith("Soan HUY <ma> de huy mot lich.")
    assert [b.state for b in bookings(services)] == ["booked", "booked"]


def test_huy_with_nothing_booked(phone: Phone, services: Services) -> None:
    make_session(services)
    assert phone.text("HUY") == (
        f"{OFFICE}: Ong/Ba khong co lich tiep cong dan nao sap toi de huy."
    )


def test_huy_with_someone_elses_code_cancels_nothing(
    phone: Phone, neighbour: Phone, services: Services
) -> None:
    make_session(services)
    neighbour.text("DAT 1")
    [theirs] = bookings(services)
    reply = phone.text(f"HUY {theirs.code}")
    assert reply is not None
    assert reply.startswith(f"{OFFICE}: Khong tim thay lich co ma nay")
    assert bookings(services)[0].state == "booked"


# -- dossier lookup ----------------------------------------------------------------------------


def test_hs_tells_the_owner_the_status(app: Flask, phone: Phone, services: Services) -> None:
    event = dossier_event(**{"dossier.due_date": "2099-07-16"})
    assert post_signed(app.test_client(), event).status_code == 202
    run_jobs(services)

    reply = phone.text("hs 000.00.31.h26-250714-0001")
    assert reply == (
        f"{OFFICE}: Ho so 000.00.31.H26-250714-0001 da duoc tiep nhan, dang cho xu ly. "
        "Ngay hen tra: 16/07/2099."
    )


def test_hs_says_when_a_dossier_is_overdue(app: Flask, phone: Phone, services: Services) -> None:
    post_signed(app.test_client(), dossier_event(**{"dossier.status": "received"}))
    run_jobs(services)
    reply = phone.text("TRA CUU 000.00.31.H26-250714-0001")
    assert reply is not None
    assert reply.endswith("Ho so da qua han, chung toi xin loi Ong/Ba.")


def test_hs_from_a_stranger_reveals_nothing(
    app: Flask, phone: Phone, neighbour: Phone, services: Services
) -> None:
    post_signed(app.test_client(), dossier_event())
    refused = neighbour.text("HS 000.00.31.H26-250714-0001")
    unknown = neighbour.text("HS 000.00.31.H26-250714-9999")
    assert refused == unknown
    assert refused is not None
    assert "000.00.31" not in refused
    assert "tiep nhan" not in refused


# -- consent -----------------------------------------------------------------------------------


def reminder(services: Services, phone: str) -> Message:
    """A non-essential reminder, composed as the reminder sweep does."""
    with services.db.transaction() as session:
        message = outbox.compose(
            session,
            services.settings,
            phone=phone,
            template="reply_opted_in",
            personalisation={},
            urgent=False,
            essential=False,
            kind="reminder",
        )
    from notifier.messaging import delivery

    delivery.enqueue_committed(services, [message])
    run_jobs(services)
    return message


def test_tc_stops_reminders_but_not_dossier_results_and_dk_restarts_them(
    app: Flask, phone: Phone, services: Services, fake_gateway: FakeAndroidGateway
) -> None:
    assert phone.text("TC") == (
        f"{OFFICE}: Ong/Ba da ngung nhan tin nhac lich va thong bao chung. "
        "Ket qua ho so van duoc gui. Soan DK de nhan lai."
    )
    with services.db.session() as session:
        contact = session.get(Contact, "+84912345678")
        assert contact is not None
        assert contact.opted_out is True
        assert contact.channel == "android"
    sent_before = len(fake_gateway.texts_to(phone.e164))

    refused = reminder(services, phone.e164)
    assert refused.status == "rejected"
    assert refused.failure_reason == "opted_out"
    post_signed(app.test_client(), dossier_event())
    run_jobs(services)
    [result_notice] = fake_gateway.texts_to(phone.e164)[sent_before:]
    assert "da duoc tiep nhan" in result_notice

    assert phone.text("dong y") is not None
    assert reminder(services, phone.e164).status == "queued"
    assert len(fake_gateway.texts_to(phone.e164)) == sent_before + 3
    with services.db.session() as session:
        actions = session.scalars(select(ConsentEvent.action).order_by(ConsentEvent.id)).all()
    assert actions == ["opt_out", "opt_in"]


# -- help, junk, loops -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["HD", "hd", "?", "Hướng dẫn"])
def test_help(phone: Phone, text: str) -> None:
    assert phone.text(text) == HELP
    assert sms.analyze(HELP).segments == 1


def test_an_english_keyword_is_answered_in_english(phone: Phone) -> None:
    assert phone.text("HELP") == (
        f"{OFFICE}: Text LICH for the reception schedule; DAT <no.> to book; HUY to cancel; "
        "HS <dossier code> for a dossier; TC to stop reminders; DK to resume."
    )


def test_explicit_help_is_always_answered(phone: Phone) -> None:
    assert phone.text("HD") == HELP
    assert phone.text("HD") == HELP


def test_junk_gets_help_at_most_once_an_hour(phone: Phone, services: Services) -> None:
    assert phone.text("xin chào, cho hỏi") == HELP
    assert phone.text("Tin nhắn tự động: tôi đang bận") is None
    assert phone.text("😀🎉 \u200b\x00") is None
    rows = inbound_rows(services)
    assert [row.outcome for row in rows] == ["help", "help_suppressed", "help_suppressed"]
    assert rows[1].text == "Tin nhắn tự động: tôi đang bận"

    with services.db.transaction() as session:
        session.execute(
            update(Contact).values(last_help_sent_at=datetime.now(UTC) - timedelta(minutes=61))
        )
    assert phone.text("alo") == HELP


def test_replies_stop_at_the_hourly_limit(
    make_app: Any, gateway_settings: dict[str, Any], fake_gateway: FakeAndroidGateway
) -> None:
    app: Flask = make_app(**gateway_settings, INBOUND_REPLY_LIMIT_PER_HOUR=3)
    services: Services = app.extensions["notifier"]
    from tests.support.live import serve

    live = serve(app)
    try:
        robot = Phone("0912345678", "+84912345678", live.url, fake_gateway, services)
        replies = [robot.text("LICH") for _ in range(5)]
    finally:
        live.stop()
    assert [reply is not None for reply in replies] == [True, True, True, False, False]
    assert [row.outcome for row in inbound_rows(services)][-1] == "reply_limit"


def test_short_codes_and_sender_names_are_stored_but_not_answered(
    live_server: LiveServer, fake_gateway: FakeAndroidGateway, services: Services
) -> None:
    for sender in ("Viettel", "191"):
        envelope = fake_gateway.received(sender, "Tai khoan cua quy khach con 5.000d. HD")
        assert post_event_http(live_server.url, envelope).status_code == 200
    run_jobs(services)
    assert fake_gateway.messages == []
    assert [row.outcome for row in inbound_rows(services)] == ["unknown_sender"] * 2


def test_a_redelivered_event_is_answered_once(phone: Phone, services: Services) -> None:
    make_session(services)
    first = phone.send("DAT 1", event_id="Ey6ECgOkVVFjz3CL48B8C").json()
    again = phone.send("DAT 1", event_id="Ey6ECgOkVVFjz3CL48B8C").json()
    run_jobs(services)

    assert first["duplicate"] is False
    assert again["duplicate"] is True
    assert again["reply_message_id"] == first["reply_message_id"]
    assert len(phone.gateway.texts_to(phone.e164)) == 1
    assert len(inbound_rows(services)) == 1
    assert len(bookings(services)) == 1


def test_every_text_is_kept_for_staff(app: Flask, phone: Phone, services: Services) -> None:
    make_session(services)
    phone.text("Đặt 1 đất đai")
    phone.text("xin chao")
    with services.db.transaction() as session:
        _, key = keys.create_api_key(session, "console")

    response = requests.get(
        f"{phone.base_url}/api/v1/inbound-messages",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200
    newest, oldest = response.json()["messages"]
    assert oldest["text"] == "Đặt 1 đất đai"
    assert oldest["intent"] == "book"
    assert oldest["outcome"] == "booked"
    assert oldest["reply_text"].startswith(f"{OFFICE}: Da dat lich")
    assert oldest["phone"] == "+84 91x xxx 678"
    assert oldest["channel"] == "android"
    assert newest["intent"] == "unknown"
    assert newest["reply_text"] == HELP


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "age", "expected"),
    [
        ("not-the-key", 0, "signature does not match"),
        ("fake-gateway-webhook-key", 360, "300 s"),
        ("fake-gateway-webhook-key", -360, "300 s"),
    ],
)
def test_bad_signatures_are_401_stored_nowhere_and_not_logged(
    live_server: LiveServer,
    fake_gateway: FakeAndroidGateway,
    services: Services,
    caplog: pytest.LogCaptureFixture,
    key: str,
    age: int,
    expected: str,
) -> None:
    make_session(services)
    envelope = fake_gateway.received("0912345678", "DAT 1 bí mật đất đai")
    timestamp = int(datetime.now(UTC).timestamp()) - age
    with caplog.at_level(logging.INFO):
        response = post_event_http(live_server.url, envelope, key, timestamp=timestamp)

    assert response.status_code == 401
    assert response.headers["Content-Type"] == "application/problem+json"
    assert expected in response.json()["detail"]
    assert inbound_rows(services) == []
    assert bookings(services) == []
    assert "android gateway webhook refused" in caplog.text
    assert "bí mật" not in caplog.text
    assert "0912345678" not in caplog.text


def test_unsigned_event_is_401(live_server: LiveServer, fake_gateway: FakeAndroidGateway) -> None:
    envelope = fake_gateway.received("0912345678", "LICH")
    response = requests.post(
        f"{live_server.url}/gateways/android/events", json=envelope, timeout=10
    )
    assert response.status_code == 401
    assert "missing X-Timestamp or X-Signature" in response.json()["detail"]


def test_without_a_configured_key_every_event_is_refused(
    make_app: Any, gateway_settings: dict[str, Any], fake_gateway: FakeAndroidGateway
) -> None:
    app: Flask = make_app(**{**gateway_settings, "ANDROID_GATEWAY_WEBHOOK_KEY": ""})
    from tests.support.fake_android_gateway import post_event

    response = post_event(app.test_client(), fake_gateway.received("0912345678", "LICH"))
    assert response.status_code == 401
    assert "not configured" in response.get_json()["detail"]


def test_counts_stay_right_after_many_texts(phone: Phone, services: Services) -> None:
    make_session(services, capacity=3)
    for text in ("DAT 1", "HUY", "DAT 1", "DAT 1", "HUY", "DAT 1"):
        phone.text(text)
    with services.db.session() as session:
        active = session.scalar(
            select(func.count()).select_from(Booking).where(Booking.state == "booked")
        )
    assert active == 1
    assert reception.Reception(services).upcoming()[0].booked == 1
