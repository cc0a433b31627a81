"""The reception schedule through its API: sessions, numbers, bookings, cancel and move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from notifier import reception
from notifier.api import keys
from notifier.core.runtime import Services
from notifier.models import Booking, Message
from notifier.reminders import planner
from tests.support.conversation import make_session
from tests.support.helpers import run_jobs

TZ_OFFSET = "+07:00"


@pytest.fixture
def api_key(services: Services) -> str:
    with services.db.transaction() as session:
        _, key = keys.create_api_key(session, "reception-logbook")
    return key


@pytest.fixture
def api(client: FlaskClient, api_key: str) -> Any:
    class Api:
        def get(self, path: str) -> Any:
            return client.get(path, headers={"Authorization": f"Bearer {api_key}"})

        def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
            return client.post(
                path, json=body, headers={"Authorization": f"Bearer {api_key}"}, **kwargs
            )

        def patch(self, path: str, body: Any) -> Any:
            return client.patch(path, json=body, headers={"Authorization": f"Bearer {api_key}"})

    return Api()


def day(days_ahead: int, clock: str) -> str:
    date = (datetime.now(UTC) + timedelta(days=days_ahead)).date().isoformat()
    return f"{date}T{clock}:00{TZ_OFFSET}"


def new_session(api: Any, days_ahead: int = 2, **changes: Any) -> dict[str, Any]:
    body = {
        "starts_at": day(days_ahead, "08:00"),
        "ends_at": day(days_ahead, "11:00"),
        "host": "Chủ tịch UBND xã",
        "location": "Phòng tiếp công dân UBND xã",
        "capacity": 10,
        "slot_minutes": 15,
        **changes,
    }
    response = api.post("/api/v1/reception/sessions", body)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def book(api: Any, session_id: int, phone: str, **extra: Any) -> Any:
    return api.post(f"/api/v1/reception/sessions/{session_id}/bookings", {"phone": phone, **extra})


def notices(services: Services, template: str) -> list[Message]:
    with services.db.session() as session:
        return list(
            session.scalars(
                select(Message).where(Message.template == template).order_by(Message.phone)
            )
        )


# -- sessions ----------------------------------------------------------------------------------


def test_create_gives_the_next_free_number(api: Any) -> None:
    first = new_session(api)
    assert first["number"] == 1
    assert first["starts_at"] == day(2, "08:00")
    assert first["remaining"] == 10
    assert first["status"] == "open"
    assert new_session(api, days_ahead=3)["number"] == 2


def test_a_cancelled_or_finished_session_frees_its_number(api: Any, services: Services) -> None:
    first = new_session(api)
    new_session(api, days_ahead=3)
    api.post(f"/api/v1/reception/sessions/{first['id']}/cancel", {"reason": "Họp đột xuất"})
    assert new_session(api, days_ahead=4)["number"] == 1
    now = datetime.now(UTC)
    make_session(  # started two hours ago, ended an hour ago: its number is free again
        services,
        starts_at=now - timedelta(hours=2),
        ends_at=now - timedelta(hours=1),
        capacity=4,
        now=now - timedelta(hours=3),
    )
    assert new_session(api, days_ahead=5)["number"] == 3


def test_upcoming_lists_open_sessions_soonest_first(api: Any, services: Services) -> None:
    later = new_session(api, days_ahead=9)
    sooner = new_session(api, days_ahead=2)
    cancelled = new_session(api, days_ahead=3)
    api.post(f"/api/v1/reception/sessions/{cancelled['id']}/cancel", {"reason": "Nghỉ lễ"})
    book(api, sooner["id"], "0912345678")

    response = api.get("/api/v1/reception/sessions?upcoming=1")
    assert response.status_code == 200
    listed = response.get_json()["sessions"]
    assert [s["id"] for s in listed] == [sooner["id"], later["id"]]
    assert listed[0]["booked"] == 1
    assert listed[0]["remaining"] == 9
    everything = api.get("/api/v1/reception/sessions").get_json()["sessions"]
    assert len(everything) == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": day(2, "07:00")}, "ends_at"),
        ({"starts_at": day(-2, "08:00"), "ends_at": day(-2, "11:00")}, "starts_at"),
        ({"capacity": 0}, "capacity"),
        ({"capacity": "10"}, "capacity"),
        ({"capacity": 13}, "capacity"),  # 13 x 15 min do not fit in 3 hours
        ({"slot_minutes": None, "capacity": 181}, "capacity"),
        ({"starts_at": "2030-07-16T08:00:00"}, "starts_at"),  # no offset
        ({"host": "   "}, "host"),
        ({"room": "B"}, "room"),
    ],
)
def test_invalid_sessions_are_400_naming_the_field(
    api: Any, change: dict[str, Any], field: str
) -> None:
    body = {
        "starts_at": day(2, "08:00"),
        "ends_at": day(2, "11:00"),
        "host": "Chủ tịch UBND xã",
        "location": "Phòng tiếp công dân",
        "capacity": 10,
        "slot_minutes": 15,
        **change,
    }
    response = api.post("/api/v1/reception/sessions", body)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert field in {error["field"] for error in response.get_json()["errors"]}


def test_the_api_wants_a_key(client: FlaskClient) -> None:
    response = client.get("/api/v1/reception/sessions?upcoming=1")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_json_only(client: FlaskClient, api_key: str) -> None:
    response = client.post(
        "/api/v1/reception/sessions",
        data={"capacity": "1"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 415


def test_unknown_session_is_404(api: Any) -> None:
    assert api.get("/api/v1/reception/sessions/999999").status_code == 404
    assert api.get("/api/v1/reception/sessions/99999999999999/bookings").status_code == 404
    cancel = api.post("/api/v1/reception/sessions/424242/cancel", {"reason": "x"})
    assert cancel.status_code == 404


# -- bookings ----------------------------------------------------------------------------------


def test_staff_book_for_a_citizen_and_see_masked_phones(api: Any) -> None:
    session = new_session(api)
    first = book(api, session["id"], "0912 345 678", name="Nguyễn Văn An", topic="Đất đai")
    assert first.status_code == 201
    assert first.get_json()["status"] == "booked"
    again = book(api, session["id"], "+84912345678")
    assert again.status_code == 200
    assert again.get_json()["status"] == "already_booked"
    book(api, session["id"], "0987654321")

    listed = api.get(f"/api/v1/reception/sessions/{session['id']}/bookings").get_json()
    assert listed["session"]["booked"] == 2
    first_booking, second_booking = listed["bookings"]
    assert first_booking["phone"] == "+84 91x xxx 678"
    assert first_booking["name"] == "Nguyễn Văn An"
    assert first_booking["expected_at"] == day(2, "08:00")
    assert second_booking["expected_at"] == day(2, "08:15")
    assert first_booking["channel"] == "api"


def test_booking_refusals(api: Any, services: Services) -> None:
    session = new_session(api, capacity=1)
    book(api, session["id"], "0912345678")
    full = book(api, session["id"], "0987654321")
    assert full.status_code == 409
    assert full.get_json()["title"] == "Session full"
    landline = book(api, session["id"], "024 3825 1234")
    assert landline.status_code == 400
    assert landline.get_json()["errors"][0]["field"] == "phone"
    now = datetime.now(UTC)
    started = make_session(
        services, starts_at=now - timedelta(minutes=5), now=now - timedelta(hours=1)
    )
    assert book(api, started.id, "0912345678").get_json()["title"] == "Session started"


def test_times_shared_evenly_without_a_slot_length(services: Services) -> None:
    info = make_session(services, capacity=7, slot_minutes=None)
    desk = reception.Reception(services)
    times = [
        desk.book(session_id=info.id, phone=f"091234{n:04d}", channel="api").booking.expected_at  # type: ignore[union-attr]
        for n in range(7)
    ]
    minutes = [int((t - info.starts_at).total_seconds() // 60) for t in times]
    assert minutes == [0, 25, 51, 77, 102, 128, 154]
    full = desk.book(session_id=info.id, phone="0912349999", channel="api")
    assert full.status is reception.BookStatus.FULL


def test_attended_and_no_show(api: Any, services: Services) -> None:
    future = new_session(api)
    code = book(api, future["id"], "0912345678").get_json()["booking"]["code"]
    early = api.post(f"/api/v1/reception/bookings/{code}/state", {"state": "attended"})
    assert early.status_code == 409

    now = datetime.now(UTC)
    today = make_session(services, starts_at=now + timedelta(minutes=1), now=now)
    outcome = reception.Reception(services).book(
        session_id=today.id, phone="0912345678", channel="sms", now=now
    )
    assert outcome.booking is not None
    with services.db.transaction() as session:
        state = reception.set_booking_state(
            session,
            services.settings,
            outcome.booking.code.lower(),
            "no_show",
            now=now + timedelta(minutes=30),
        )
    assert state.state == "no_show"
    assert (
        api.get(f"/api/v1/reception/bookings/{outcome.booking.code}").get_json()["state"]
        == "no_show"
    )
    wrong = api.post(f"/api/v1/reception/bookings/{code}/state", {"state": "lost"})
    assert wrong.status_code == 400
    assert api.get("/api/v1/reception/bookings/NOSUCH").status_code == 404


def test_staff_cancel_a_booking_and_the_citizen_is_told(api: Any, services: Services) -> None:
    session = new_session(api)
    code = book(api, session["id"], "0912345678").get_json()["booking"]["code"]
    response = api.post(f"/api/v1/reception/bookings/{code}/state", {"state": "cancelled"})
    assert response.status_code == 200
    assert response.get_json()["state"] == "cancelled"
    run_jobs(services)
    [notice] = notices(services, "reception_booking_cancelled")
    assert notice.phone == "+84912345678"
    assert notice.status == "delivered"
    assert f"Lich tiep cong dan {code}" in (notice.body or "")


# -- cancel and move ---------------------------------------------------------------------------


def test_cancel_session_notifies_every_booked_citizen(api: Any, services: Services) -> None:
    session = new_session(api)
    for phone in ("0912345678", "0987654321", "0911111111"):
        book(api, session["id"], phone)
    self_cancelled = book(api, session["id"], "0922222222").get_json()["booking"]["code"]
    with services.db.transaction() as db:
        reception.cancel_for_phone(db, services.settings, "0922222222", code=self_cancelled)

    response = api.post(
        f"/api/v1/reception/sessions/{session['id']}/cancel", {"reason": "Chủ tịch đi họp tỉnh"}
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["changed"] is True
    assert body["notified"] == 3
    assert body["session"]["status"] == "cancelled"
    assert body["session"]["cancel_reason"] == "Chủ tịch đi họp tỉnh"
    run_jobs(services)
    sent = notices(services, "reception_session_cancelled")
    assert [m.phone for m in sent] == ["+84911111111", "+84912345678", "+84987654321"]
    assert all(m.status == "delivered" and m.essential for m in sent)
    assert "Ly do: Chu tich di hop tinh." in (sent[0].body or "")
    with services.db.session() as db:
        assert {b.state for b in db.scalars(select(Booking))} == {"cancelled"}

    again = api.post(f"/api/v1/reception/sessions/{session['id']}/cancel", {"reason": "lần nữa"})
    assert again.get_json() | {"session": None} == {
        "session": None,
        "changed": False,
        "notified": 0,
    }
    assert api.post(f"/api/v1/reception/sessions/{session['id']}/cancel", {}).status_code == 400


def test_move_session_gives_new_times_and_tells_the_booked(api: Any, services: Services) -> None:
    session = new_session(api)
    first = book(api, session["id"], "0912345678").get_json()["booking"]["code"]
    book(api, session["id"], "0987654321")

    response = api.post(
        f"/api/v1/reception/sessions/{session['id']}/move",
        {
            "starts_at": day(5, "13:30"),
            "ends_at": day(5, "16:30"),
            "location": "Hội trường UBND xã",
        },
    )
    assert response.status_code == 200
    moved = response.get_json()
    assert moved["notified"] == 2
    assert moved["session"]["number"] == session["number"]
    assert moved["session"]["location"] == "Hội trường UBND xã"
    bookings = api.get(f"/api/v1/reception/sessions/{session['id']}/bookings").get_json()[
        "bookings"
    ]
    assert [b["expected_at"] for b in bookings] == [day(5, "13:30"), day(5, "13:45")]
    run_jobs(services)
    sms = {m.phone: m.body for m in notices(services, "reception_session_moved")}
    assert f"(lich {first}) chuyen sang" in (sms["+84912345678"] or "")
    assert "moi den luc 13:45 tai Hoi truong UBND xa" in (sms["+84987654321"] or "")

    same = api.post(
        f"/api/v1/reception/sessions/{session['id']}/move",
        {"starts_at": day(5, "13:30"), "ends_at": day(5, "16:30")},
    )
    assert same.get_json()["changed"] is False
    past = api.post(
        f"/api/v1/reception/sessions/{session['id']}/move",
        {"starts_at": day(-1, "13:30"), "ends_at": day(-1, "16:30")},
    )
    assert past.status_code == 400


def test_capacity_cannot_drop_below_booked_places(api: Any) -> None:
    session = new_session(api)
    for phone in ("0912345678", "0987654321", "0911111111"):
        book(api, session["id"], phone)
    too_small = api.patch(f"/api/v1/reception/sessions/{session['id']}", {"capacity": 2})
    assert too_small.status_code == 409
    bigger = api.patch(
        f"/api/v1/reception/sessions/{session['id']}", {"capacity": 12, "host": "Phó Chủ tịch"}
    )
    assert bigger.status_code == 200
    assert bigger.get_json()["capacity"] == 12
    assert bigger.get_json()["host"] == "Phó Chủ tịch"


def test_every_change_resyncs_the_bookings_reminders(
    api: Any, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[tuple[str, str]] = []
    monkeypatch.setattr(
        planner,
        "sync_booking_reminders",
        lambda session, settings, booking: synced.append((booking.code, booking.state)),
    )
    session = new_session(api)
    code = book(api, session["id"], "0912345678").get_json()["booking"]["code"]
    api.post(
        f"/api/v1/reception/sessions/{session['id']}/move",
        {"starts_at": day(4, "08:00"), "ends_at": day(4, "11:00")},
    )
    api.post(f"/api/v1/reception/sessions/{session['id']}/cancel", {"reason": "Nghỉ lễ"})
    assert synced == [(code, "booked"), (code, "booked"), (code, "cancelled")]


def test_text_a_database_cannot_hold_is_cleaned_not_a_server_error(api: Any) -> None:
    session = new_session(api, host="Chủ tịch\u0000 UBND xã")
    assert session["host"] == "Chủ tịch UBND xã"
    surrogate = api.post(
        "/api/v1/reception/sessions",
        {
            "starts_at": day(2, "08:00"),
            "ends_at": day(2, "11:00"),
            "host": "A",
            "location": "Phòng \ud800",
            "capacity": 1,
        },
    )
    assert surrogate.status_code == 400
    booked = book(api, session["id"], "0912345678", topic="đất\u0000đai")
    assert booked.get_json()["booking"]["topic"] == "đấtđai"
    assert api.get("/api/v1/reception/bookings/AB%00CD").status_code == 404
