"""A citizen's phone texting the commune through SMS Gateway for Android, over real HTTP.

`Phone.text("DAT 2")` posts a signed `sms:received` event to the running app, runs the queued
jobs (the reply goes out through the fake gateway's API) and returns what the phone received.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import requests
from sqlalchemy import select

from notifier import reception
from notifier.core.runtime import Services
from notifier.models import Booking
from tests.support.fake_android_gateway import FakeAndroidGateway, post_event_http
from tests.support.helpers import run_jobs


@dataclass
class Phone:
    number: str  # as the gateway reports the sender: local format, no +
    e164: str
    base_url: str
    gateway: FakeAndroidGateway
    services: Services
    http: requests.Session = field(default_factory=requests.Session)

    def send(self, text: str, event_id: str | None = None) -> requests.Response:
        """Post the event only (no jobs run): the app's answer to the gateway."""
        envelope = self.gateway.received(self.number, text, event_id)
        response = post_event_http(self.base_url, envelope, session=self.http)
        assert response.status_code == 200, response.text
        return response

    def text(self, text: str) -> str | None:
        """Send `text`; the reply this phone got for it, or None when nothing came back."""
        before = len(self.gateway.texts_to(self.e164))
        self.send(text)
        run_jobs(self.services)
        received = self.gateway.texts_to(self.e164)[before:]
        assert len(received) <= 1, received
        return received[0] if received else None


def local(day: datetime, hour: int, minute: int = 0, tz: Any = None) -> datetime:
    return datetime.combine(day.date(), time(hour, minute), tzinfo=tz)


def make_session(
    services: Services,
    *,
    days_ahead: int = 2,
    capacity: int = 10,
    slot_minutes: int | None = 15,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    now: datetime | None = None,
    host: str = "Chủ tịch UBND xã",
    location: str = "Phòng tiếp công dân UBND xã",
) -> reception.SessionInfo:
    """An open session at 08:00-11:00 local, `days_ahead` days from today, unless told otherwise."""
    tz = services.settings.tz
    day = datetime.now(tz) + timedelta(days=days_ahead)
    starts_at = starts_at or local(day, 8, tz=tz)
    ends_at = ends_at or starts_at + timedelta(hours=3)
    with services.db.transaction() as session:
        row = reception.create_session(
            session,
            services.settings,
            starts_at=starts_at,
            ends_at=ends_at,
            host=host,
            location=location,
            capacity=capacity,
            slot_minutes=slot_minutes,
            now=now or min(datetime.now(UTC), starts_at - timedelta(minutes=1)),
        )
        return reception.SessionInfo.from_row(row)


def day_and_month(services: Services, info: reception.SessionInfo) -> tuple[str, str, str]:
    """A session's start as citizens read it: weekday (folded), dd/mm, dd/mm/yyyy."""
    local = info.starts_at.astimezone(services.settings.tz)
    weekday = ("Thu 2", "Thu 3", "Thu 4", "Thu 5", "Thu 6", "Thu 7", "Chu nhat")[local.weekday()]
    return weekday, local.strftime("%d/%m"), local.strftime("%d/%m/%Y")


def bookings(services: Services) -> list[Booking]:
    with services.db.session() as session:
        return list(session.scalars(select(Booking).order_by(Booking.id)))
