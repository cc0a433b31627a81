"""Booking under contention: simultaneous requests never overbook a session, never give two
citizens the same expected time, never book one phone twice (run on SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import requests
from sqlalchemy import select

from notifier import reception
from notifier.core.runtime import Services
from notifier.models import Booking, InboundMessage
from tests.support.conversation import make_session
from tests.support.fake_android_gateway import EVENTS_PATH, FakeAndroidGateway, signed
from tests.support.helpers import run_jobs
from tests.support.live import LiveServer

T = TypeVar("T")
CITIZENS = 50
CAPACITY = 10


@pytest.fixture
def settings_overrides(gateway_settings: dict[str, Any]) -> dict[str, Any]:
    return {**gateway_settings, "SMS_PROVIDER": "android_gateway"}


def all_at_once(count: int, action: Callable[[int], T]) -> list[T]:
    """Run `action(i)` for i < count on `count` threads released together."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        barrier.wait()
        return action(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_fifty_simultaneous_dat_for_ten_places(
    live_server: LiveServer, fake_gateway: FakeAndroidGateway, services: Services
) -> None:
    info = make_session(services, capacity=CAPACITY, slot_minutes=15)
    numbers = [f"0912{index:06d}" for index in range(CITIZENS)]
    requests_ready = [signed(fake_gateway.received(number, "DAT 1")) for number in numbers]

    def text(index: int) -> requests.Response:
        body, headers = requests_ready[index]
        return requests.post(live_server.url + EVENTS_PATH, data=body, headers=headers, timeout=120)

    responses = all_at_once(CITIZENS, text)

    assert [r.status_code for r in responses] == [200] * CITIZENS
    assert Counter(r.json()["outcome"] for r in responses) == {"booked": 10, "full": 40}
    with services.db.session() as session:
        booked = session.scalars(select(Booking).where(Booking.state == "booked")).all()
        stored = session.scalars(select(InboundMessage)).all()
    assert len(booked) == CAPACITY
    assert sorted(b.slot_index for b in booked) == list(range(CAPACITY))
    assert len({b.expected_at for b in booked}) == CAPACITY
    assert len({b.phone for b in booked}) == CAPACITY
    assert len(stored) == CITIZENS
    assert reception.Reception(services).session(info.id).booked == CAPACITY

    run_jobs(services)
    replies = [m.text for m in fake_gateway.messages]
    assert len(replies) == CITIZENS
    assert sum("Da dat lich tiep cong dan" in r for r in replies) == 10
    assert sum("da het cho" in r for r in replies) == 40


def test_one_phone_booking_twenty_times_at_once_gets_one_booking(services: Services) -> None:
    info = make_session(services, capacity=CAPACITY)
    desk = reception.Reception(services)
    outcomes = all_at_once(
        20, lambda _: desk.book(session_id=info.id, phone="0912345678", channel="api")
    )
    assert Counter(o.status for o in outcomes) == {
        reception.BookStatus.BOOKED: 1,
        reception.BookStatus.ALREADY_BOOKED: 19,
    }
    assert len({o.booking.code for o in outcomes if o.booking}) == 1
    assert desk.session(info.id).booked == 1


def test_sessions_created_at_once_get_distinct_numbers(services: Services) -> None:
    desk = reception.Reception(services)
    start = datetime.now(UTC) + timedelta(days=3)

    def create(index: int) -> reception.SessionInfo:
        return desk.create_session(
            starts_at=start + timedelta(hours=index),
            ends_at=start + timedelta(hours=index, minutes=50),
            host="Phó Chủ tịch UBND xã",
            location="Phòng tiếp công dân",
            capacity=5,
        )

    created = all_at_once(8, create)
    assert sorted(info.number for info in created) == list(range(1, 9))
