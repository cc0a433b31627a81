"""The USSD menu through POST /ussd, as an aggregator calls it: every path, what goes wrong.

SMS go out through the twilio SDK to the fake Twilio server, so "sent by SMS" means a real HTTP
request reached a provider.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import TestResponse

from notifier import reception
from notifier.core.runtime import Services
from notifier.inbound import conversation
from notifier.models import ConsentEvent, Contact, Message
from notifier.text import sms
from notifier.ussd.menu import MAX_SCREEN, TEXTS
from tests.support.conversation import bookings, day_and_month, make_session
from tests.support.fake_twilio import FakeTwilio
from tests.support.helpers import dossier_event, post_signed, run_jobs

PHONE = "+84912345678"
OFFICE = "UBND xa Dai Thanh"
MAIN = (
    f"CON {OFFICE}\n1. Tra cuu ho so\n2. Dat lich tiep cong dan\n3. Huy lich da dat\n"
    "4. Nhan/ngung nhan tin nhac\n9. English"
)
INVALID = "Lua chon khong hop le."
ENDED = "END Phien lam viec da ket thuc. Xin Ong/Ba quay so lai."
DOSSIER = "000.00.31.H26-250714-0001"
REFUSED = (
    "END Khong tra cuu duoc ho so nay tu so dien thoai cua Ong/Ba. "
    "Xin kiem tra lai ma ho so hoac lien he Bo phan Mot cua."
)
_SESSION_IDS = count(1)


@pytest.fixture
def settings_overrides(twilio_settings: dict[str, Any]) -> dict[str, Any]:
    return twilio_settings


@dataclass
class Dialer:
    """One phone dialling the service code: each `press` sends the whole path so far."""

    client: FlaskClient
    phone: str = "0912345678"
    session_id: str = field(default_factory=lambda: f"ATUid_{next(_SESSION_IDS)}")
    path: list[str] = field(default_factory=list)

    def post(self, text: str | None, **extra: str) -> TestResponse:
        form = {"sessionId": self.session_id, "serviceCode": "*384*99#", "phoneNumber": self.phone}
        if text is not None:
            form["text"] = text
        return self.client.post("/ussd", data={**form, **extra})

    def dial(self) -> str:
        self.path = []
        return self._screen("")

    def press(self, *inputs: str) -> str:
        self.path.extend(inputs)
        return self._screen("*".join(self.path))

    def _screen(self, text: str) -> str:
        response = self.post(text)
        assert response.status_code == 200, response.text
        assert response.mimetype == "text/plain"
        assert_screen(response.text)
        return response.text


def assert_screen(reply: str) -> None:
    assert reply.startswith(("CON ", "END ")), reply
    assert len(reply) <= MAX_SCREEN, (len(reply), reply)
    assert reply.isascii(), reply


def walk(client: FlaskClient, path: str, phone: str = "0912345678") -> str:
    """A fresh session: dial, then every prefix of `path`, as the aggregator would send them."""
    dialer = Dialer(client, phone)
    reply = dialer.dial()
    for part in path.split("*") if path else []:
        reply = dialer.press(part)
    return reply


def only_code(services: Services) -> str:
    [booking] = bookings(services)
    return booking.code


# -- the main menu and moving around ------------------------------------------------------------


def test_first_request_shows_the_main_menu(client: FlaskClient) -> None:
    assert Dialer(client).dial() == MAIN
    # Some aggregators leave `text` out of the first request.
    response = Dialer(client).post(None)
    assert response.status_code == 200
    assert response.text == MAIN


def test_zero_goes_back_and_double_zero_to_the_main_menu(
    client: FlaskClient, services: Services
) -> None:
    make_session(services)
    dialer = Dialer(client)
    dialer.dial()
    sessions = dialer.press("2")
    assert sessions.startswith("CON Chon buoi tiep cong dan:\n1. ")
    confirm = dialer.press("1")
    assert confirm.endswith("\n1. Dong y dat lich\n0. Quay lai\n00. Menu chinh")
    assert dialer.press("0") == sessions
    assert dialer.press("1") == confirm
    assert dialer.press("00") == MAIN
    assert dialer.press("1").startswith("CON Nhap ma ho so")
    assert dialer.press("0") == MAIN
    assert dialer.press("4").startswith("CON Tin nhac lich")
    assert dialer.press("0") == MAIN
    assert bookings(services) == []


def test_wrong_digits_and_letters_show_the_same_screen_again(
    client: FlaskClient, services: Services
) -> None:
    make_session(services)
    dialer = Dialer(client)
    dialer.dial()
    assert dialer.press("7") == MAIN.replace("CON ", f"CON {INVALID}\n", 1)
    assert dialer.press("abc") == MAIN.replace("CON ", f"CON {INVALID}\n", 1)
    assert dialer.press("0") == MAIN.replace("CON ", f"CON {INVALID}\n", 1)
    sessions = dialer.press("2")
    for wrong in ("5", "99999999999999999999", "x", "", " ", "-1", "１"):
        assert dialer.press(wrong) == sessions.replace("CON ", f"CON {INVALID}\n", 1)
    # Then a right digit still works.
    assert dialer.press("1").endswith("1. Dong y dat lich\n0. Quay lai\n00. Menu chinh")


def test_empty_parts_in_the_path_are_wrong_inputs_not_errors(
    client: FlaskClient, services: Services
) -> None:
    make_session(services)
    dialer = Dialer(client)
    dialer.dial()
    dialer.press("2")
    # The aggregator sends "2**1": an empty answer, then a choice from the list already shown.
    assert dialer.press("", "1").endswith("1. Dong y dat lich\n0. Quay lai\n00. Menu chinh")
    assert Dialer(client).post("**").text == MAIN.replace("CON ", f"CON {INVALID}\n", 1)


def test_the_menu_in_english(client: FlaskClient, services: Services) -> None:
    dialer = Dialer(client)
    dialer.dial()
    english = dialer.press("9")
    assert english == (
        f"CON {OFFICE}\n1. Dossier status\n2. Book citizen reception\n3. Cancel a booking\n"
        "4. Reminders on/off\n9. Tieng Viet"
    )
    assert dialer.press("3") == "END You have no upcoming booking to cancel."
    assert walk(client, "9*9") == MAIN


# -- dossier status -----------------------------------------------------------------------------


def test_the_owner_gets_the_status_in_plain_words(client: FlaskClient) -> None:
    assert post_signed(client, dossier_event()).status_code == 202
    dialer = Dialer(client)
    dialer.dial()
    assert dialer.press("1") == (
        "CON Nhap ma ho so (vi du 000.00.31.H26-250714-0001):\n0. Quay lai"
    )
    # Typed in lower case, as a keypad gives it.
    assert dialer.press(DOSSIER.lower()) == (
        f"END Ho so {DOSSIER} da duoc tiep nhan, dang cho xu ly. Ngay hen tra: 16/07/2025. "
        "Ho so da qua han, chung toi xin loi Ong/Ba."
    )


def test_a_stranger_asking_about_someone_elses_dossier_learns_nothing(
    client: FlaskClient,
) -> None:
    assert post_signed(client, dossier_event()).status_code == 202
    stranger = walk(client, f"1*{DOSSIER}", phone="0987654321")
    unknown = walk(client, "1*000.00.31.H26-250714-9999", phone="0987654321")
    assert stranger == unknown == REFUSED


def test_a_very_long_dossier_code_is_refused_on_one_screen(client: FlaskClient) -> None:
    assert walk(client, "1*" + "7" * 1900) == REFUSED


# -- booking ------------------------------------------------------------------------------------


def test_booking_shows_the_code_and_sends_it_by_sms(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    info = make_session(services)
    later = make_session(services, days_ahead=5)
    weekday, day, date = day_and_month(services, info)
    later_weekday, later_day, _ = day_and_month(services, later)
    dialer = Dialer(client)
    dialer.dial()
    assert dialer.press("2") == (
        f"CON Chon buoi tiep cong dan:\n1. {weekday} {day} 08:00\n"
        f"2. {later_weekday} {later_day} 08:00\n0. Quay lai"
    )
    assert dialer.press("1") == (
        f"CON Buoi tiep cong dan {weekday} {date} luc 08:00, Chu tich UBND xa, tai Phong tiep "
        "cong dan UBND xa. Con 10 cho.\n1. Dong y dat lich\n0. Quay lai\n00. Menu chinh"
    )
    done = dialer.press("1")

    [booking] = bookings(services)
    assert done == (
        f"END Da dat lich. Ma: {booking.code}. Moi Ong/Ba den luc 08:00, {weekday} {date}, tai "
        "Phong tiep cong dan UBND xa. Ma da duoc gui qua SMS."
    )
    assert (booking.session_id, booking.phone, booking.channel) == (info.id, PHONE, "ussd")
    run_jobs(services)
    [texted] = fake_twilio.sent_to(PHONE)
    assert texted.body == (
        f"{OFFICE}: Da dat lich tiep cong dan {weekday} {date}, moi Ong/Ba den luc 08:00 tai "
        f"Phong tiep cong dan UBND xa. Ma: {booking.code}. Huy: HUY {booking.code}"
    )
    with services.db.session() as session:
        message = session.scalars(select(Message)).one()
    assert (message.booking_id, message.status, message.template) == (
        booking.id,
        "sent",
        "reply_booked",
    )


def test_the_choice_is_the_session_the_caller_saw(client: FlaskClient, services: Services) -> None:
    """A session added before the first listed one between two requests does not shift digits."""
    listed = make_session(services, days_ahead=5)
    dialer = Dialer(client)
    dialer.dial()
    dialer.press("2")
    make_session(services, days_ahead=2)  # now the soonest
    dialer.press("1")
    assert dialer.press("1").startswith("END Da dat lich.")
    [booking] = bookings(services)
    assert booking.session_id == listed.id


def test_a_full_session_is_marked_and_refused(client: FlaskClient, services: Services) -> None:
    info = make_session(services, capacity=1)
    reception.Reception(services).book(session_id=info.id, phone="0900000001", channel="api")
    weekday, day, date = day_and_month(services, info)
    dialer = Dialer(client)
    dialer.dial()
    assert dialer.press("2") == (
        f"CON Chon buoi tiep cong dan:\n1. {weekday} {day} 08:00 (het cho)\n0. Quay lai"
    )
    assert "Con 0 cho." in dialer.press("1")
    assert dialer.press("1") == (
        f"END Buoi {weekday} {date} da het cho. Xin Ong/Ba chon buoi khac."
    )
    assert len(bookings(services)) == 1


def test_booking_twice_keeps_one_booking_and_one_sms(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    info = make_session(services)
    weekday, _, date = day_and_month(services, info)
    walk(client, "2*1*1")
    again = walk(client, "2*1*1")
    code = only_code(services)
    assert again == (
        f"END Ong/Ba da co lich buoi nay. Ma: {code}, den luc 08:00, {weekday} {date}."
    )
    run_jobs(services)
    assert len(fake_twilio.sent_to(PHONE)) == 1


def test_a_repeated_request_gets_the_same_answer_and_acts_once(
    client: FlaskClient, services: Services, fake_twilio: FakeTwilio
) -> None:
    make_session(services)
    dialer = Dialer(client)
    dialer.dial()
    dialer.press("2")
    dialer.press("1")
    first = dialer.press("1")
    # The aggregator retries the same step (a timeout on its side).
    assert dialer.post("2*1*1").text == first
    assert first.startswith("END Da dat lich.")
    assert len(bookings(services)) == 1
    run_jobs(services)
    assert len(fake_twilio.sent_to(PHONE)) == 1


def test_input_after_a_final_screen_ends_the_session_without_acting_again(
    client: FlaskClient, services: Services
) -> None:
    make_session(services)
    walk(client, "2*1*1")
    dialer = Dialer(client)
    assert dialer.post("2*1*1*1").text == ENDED
    assert dialer.post("4*2*1").text == ENDED
    assert len(bookings(services)) == 1
    with services.db.session() as session:
        assert session.scalars(select(ConsentEvent)).all() == []


def test_a_choice_from_a_list_never_shown_ends_the_session(
    client: FlaskClient, services: Services
) -> None:
    """A stale request (its list forgotten) or a path typed ahead: no booking on a guess."""
    make_session(services)
    assert Dialer(client).post("2*1*1").text == ENDED
    assert bookings(services) == []


def test_ussd_and_sms_bookings_from_one_phone_are_one_booking(
    client: FlaskClient, services: Services
) -> None:
    info = make_session(services)
    text = conversation.handle(services, conversation.InboundSms("console", "0912345678", "DAT 1"))
    code = only_code(services)
    assert text.reply_text is not None
    assert code in text.reply_text
    weekday, _, date = day_and_month(services, info)
    assert walk(client, "2*1*1") == (
        f"END Ong/Ba da co lich buoi nay. Ma: {code}, den luc 08:00, {weekday} {date}."
    )
    # And the other way round, on another session.
    make_session(services, days_ahead=4)
    walk(client, "2*2*1")
    second = bookings(services)[1]
    reply = conversation.handle(
        services, conversation.InboundSms("console", "84912345678", "DAT 2")
    )
    assert reply.outcome == "already_booked"
    assert reply.reply_text is not None
    assert second.code in reply.reply_text
    assert len(bookings(services)) == 2


def test_a_number_that_cannot_book_is_told_so(client: FlaskClient, services: Services) -> None:
    make_session(services)
    # A foreign number may dial while roaming; without ALLOW_INTERNATIONAL_SMS it cannot book.
    assert walk(client, "2*1*1", phone="+4915123456789") == (
        "END So dien thoai nay khong dat lich duoc. Xin Ong/Ba lien he Bo phan Mot cua."
    )
    assert bookings(services) == []


def test_with_no_open_session_the_menu_says_so(client: FlaskClient) -> None:
    assert walk(client, "2") == (
        "END Hien chua co buoi tiep cong dan nao nhan dat lich. Xin Ong/Ba quay lai sau."
    )


def test_long_host_and_place_are_cut_and_the_options_kept(
    client: FlaskClient, services: Services
) -> None:
    make_session(services, host="Phó Chủ tịch " * 15, location="Phòng tiếp công dân " * 14)
    confirm = walk(client, "2*1")
    assert confirm.endswith("..\n1. Dong y dat lich\n0. Quay lai\n00. Menu chinh")
    assert walk(client, "2*1*1").startswith("END Da dat lich. Ma: ")


# -- cancelling ---------------------------------------------------------------------------------


def test_cancelling_a_booking(client: FlaskClient, services: Services) -> None:
    info = make_session(services)
    walk(client, "2*1*1")
    code = only_code(services)
    weekday, day, date = day_and_month(services, info)
    dialer = Dialer(client)
    dialer.dial()
    listed = dialer.press("3")
    assert listed == f"CON Chon lich can huy:\n1. {code} {weekday} {day} 08:00\n0. Quay lai"
    confirm = dialer.press("1")
    assert confirm == (
        f"CON Huy lich {code}, {weekday} {date} luc 08:00?\n1. Dong y huy\n0. Quay lai\n"
        "00. Menu chinh"
    )
    assert dialer.press("0") == listed
    dialer.press("1")
    assert dialer.press("1") == f"END Da huy lich {code}. Cam on Ong/Ba da bao truoc."
    [booking] = bookings(services)
    assert booking.state == "cancelled"
    assert walk(client, "3") == "END Ong/Ba khong co lich nao sap toi de huy."


def test_nobody_cancels_another_phones_booking(client: FlaskClient, services: Services) -> None:
    make_session(services)
    walk(client, "2*1*1")
    assert walk(client, "3", phone="0987654321") == ("END Ong/Ba khong co lich nao sap toi de huy.")
    assert bookings(services)[0].state == "booked"


# -- reminders on and off -----------------------------------------------------------------------


def test_opting_out_and_back_in(client: FlaskClient, services: Services) -> None:
    consent_screen = (
        "CON Tin nhac lich va thong bao chung: Ong/Ba {state}.\n1. Nhan tin nhac\n"
        "2. Ngung nhan tin nhac\n0. Quay lai"
    )
    assert walk(client, "4") == consent_screen.format(state="dang nhan")
    assert walk(client, "4*2") == (
        "END Ong/Ba da ngung nhan tin nhac lich va thong bao chung. Ket qua ho so van duoc gui."
    )
    with services.db.session() as session:
        assert session.get_one(Contact, PHONE).opted_out is True
    assert walk(client, "4") == consent_screen.format(state="da ngung nhan")
    assert walk(client, "4*1") == "END Ong/Ba se nhan lai tin nhac lich va thong bao chung."
    with services.db.session() as session:
        assert session.get_one(Contact, PHONE).opted_out is False
        events = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)).all()
    assert [(e.action, e.channel) for e in events] == [("opt_out", "ussd"), ("opt_in", "ussd")]


# -- what gateways send -------------------------------------------------------------------------


def test_missing_fields_are_a_clear_400(client: FlaskClient) -> None:
    response = client.post("/ussd", data={"text": "1"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    fields = {error["field"] for error in response.get_json()["errors"]}
    assert fields == {"sessionId", "serviceCode", "phoneNumber"}
    blank = Dialer(client, phone="  ").post("")
    assert blank.status_code == 400
    assert [e["field"] for e in blank.get_json()["errors"]] == ["phoneNumber"]


def test_a_text_beyond_any_session_is_a_400_and_a_json_body_a_415(client: FlaskClient) -> None:
    response = Dialer(client).post("1*" * 1500)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "text"
    as_json = client.post("/ussd", json={"sessionId": "a", "phoneNumber": PHONE})
    assert as_json.status_code == 415


def test_phone_numbers_in_any_format_are_one_caller(
    client: FlaskClient, services: Services
) -> None:
    make_session(services)
    walk(client, "2*1*1", phone="84912345678")
    code = only_code(services)
    for number in ("0912 345 678", "+84 912 345 678", "0084912345678", "(+84) 912-345-678"):
        assert code in walk(client, "3", phone=number)


def test_an_unusable_phone_number_gets_a_polite_end(client: FlaskClient) -> None:
    for number in ("abc", "191", "024 3825 1234", "+"):
        reply = Dialer(client, phone=number).post("").text
        assert reply == (
            "END Xin loi, so dien thoai nay khong dung duoc dich vu. Xin lien he Bo phan Mot cua."
        )


def test_a_path_longer_than_any_session_ends_it(client: FlaskClient) -> None:
    assert Dialer(client).post("*".join(["1", "0"] * 30)).text == ENDED


class TestSharedSecret:
    @pytest.fixture
    def settings_overrides(self, twilio_settings: dict[str, Any]) -> dict[str, Any]:
        return {**twilio_settings, "USSD_SHARED_SECRET": "gateway-secret"}

    def test_calls_without_the_secret_are_refused(self, client: FlaskClient) -> None:
        dialer = Dialer(client)
        assert dialer.post("").status_code == 403
        wrong = dialer.client.post(
            "/ussd",
            data={"sessionId": "s", "serviceCode": "*1#", "phoneNumber": PHONE, "text": ""},
            headers={"X-USSD-Secret": "guess"},
        )
        assert wrong.status_code == 403
        assert wrong.mimetype == "application/problem+json"

    def test_the_secret_in_a_header_or_the_query(self, client: FlaskClient) -> None:
        form = {"sessionId": "s", "serviceCode": "*1#", "phoneNumber": PHONE, "text": ""}
        header = client.post("/ussd", data=form, headers={"X-USSD-Secret": "gateway-secret"})
        query = client.post("/ussd?secret=gateway-secret", data=form)
        assert header.status_code == query.status_code == 200
        assert header.text == query.text == MAIN


class TestPhoneLimit:
    @pytest.fixture
    def settings_overrides(self, twilio_settings: dict[str, Any]) -> dict[str, Any]:
        return {**twilio_settings, "RATE_LIMIT_PER_PHONE": "2/minute"}

    def test_sessions_are_counted_not_steps(self, client: FlaskClient, services: Services) -> None:
        make_session(services)
        walk(client, "2*1*0*0*4*0*1*0")  # many steps, one session
        walk(client, "4")
        refused = Dialer(client).post("")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        # Another phone is not affected.
        assert Dialer(client, phone="0987654321").post("").status_code == 200


def test_every_screen_text_is_in_the_docs() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "ussd.md").read_text()
    for language, texts in TEXTS.items():
        for key, text in texts.items():
            for line in text.split("\n"):
                assert sms.fold(line, ascii_only=True) in docs, (language, key, line)


# -- fuzzing ------------------------------------------------------------------------------------

_INPUTS = st.one_of(
    st.sampled_from(["", "0", "00", "1", "2", "3", "4", "9", "1", "11", "007"]),
    st.text(max_size=40),
    st.text(alphabet="0123456789*# ", max_size=30),
)
_FIELD = st.one_of(st.none(), st.text(max_size=80))


class TestFuzz:
    @pytest.fixture
    def settings_overrides(self, twilio_settings: dict[str, Any]) -> dict[str, Any]:
        # Hundreds of requests from one address and a few phones: limits would answer 429 only.
        return {**twilio_settings, "RATE_LIMIT_PER_PHONE": "off", "RATE_LIMIT_PER_IP": "off"}

    @given(
        session_id=st.one_of(_FIELD, st.sampled_from(["s1", "s2"])),
        service_code=st.one_of(_FIELD, st.just("*384*99#")),
        phone=st.one_of(
            _FIELD,
            st.sampled_from(["0912345678", "+84987654321", "84 91 234 5678", "0243825123"]),
        ),
        text=st.one_of(
            st.none(), st.text(max_size=200), st.lists(_INPUTS, max_size=12).map("*".join)
        ),
    )
    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    def test_fuzzed_requests_never_break_a_screen(
        self,
        client: FlaskClient,
        open_sessions: list[reception.SessionInfo],
        session_id: str | None,
        service_code: str | None,
        phone: str | None,
        text: str | None,
    ) -> None:
        form = {
            name: value
            for name, value in (
                ("sessionId", session_id),
                ("serviceCode", service_code),
                ("phoneNumber", phone),
                ("text", text),
            )
            if value is not None
        }
        response = client.post("/ussd", data=form)
        assert response.status_code < 500, response.text
        if response.status_code == 200:
            assert response.mimetype == "text/plain"
            assert_screen(response.text)
        else:
            assert response.status_code == 400, response.text
            assert response.mimetype == "application/problem+json"


@pytest.fixture
def open_sessions(services: Services) -> list[reception.SessionInfo]:
    """One session with room, one full: the fuzzer can reach every booking outcome."""
    full = make_session(services, days_ahead=3, capacity=1)
    reception.Reception(services).book(session_id=full.id, phone="0900000001", channel="api")
    return [make_session(services), full]
