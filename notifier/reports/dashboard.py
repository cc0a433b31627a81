"""Figures for the staff dashboard over a period of local dates. A fixed number of queries.

A dossier counts in the period when it was received in it. "Resolved" is ready or returned,
"on time" is resolved no later than its due date (local), "overdue" is still open after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Interval, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from notifier.core.config import Settings
from notifier.messaging import statuses
from notifier.models import Booking, Dossier, Message, ReceptionSession

RESOLVED = ("ready", "returned")
IN_PROGRESS = ("registered", "received", "processing")
WAITING_ON_CITIZEN = ("supplement_requested", "fee_required")
CLOSED_UNRESOLVED = ("not_accepted", "withdrawn", "stopped")
SESSIONS_AHEAD = timedelta(days=14)


@dataclass(frozen=True)
class Period:
    """Local dates, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("the period ends before it starts")
        if (self.end - self.start).days > 366:
            raise ValueError("the period is longer than a year")

    @classmethod
    def last_days(cls, today: date, days: int = 30) -> Period:
        return cls(today - timedelta(days=days), today)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """[start, end) in UTC."""
        start = datetime.combine(self.start, time(0), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        return start, end

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass(frozen=True)
class Ratio:
    part: int
    whole: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.part / self.whole, 1) if self.whole else None

    def __str__(self) -> str:
        if not self.whole:
            return f"{self.part}/{self.whole}"
        return f"{self.part}/{self.whole}, {self.percent:.1f}%"


@dataclass(frozen=True)
class DossierFigures:
    received: int
    resolved: int
    on_time: int
    in_progress: int
    waiting_on_citizen: int
    closed_unresolved: int
    overdue: int

    @property
    def resolved_rate(self) -> Ratio:
        return Ratio(self.resolved, self.received)

    @property
    def on_time_rate(self) -> Ratio:
        return Ratio(self.on_time, self.resolved)


@dataclass(frozen=True)
class MessageFigures:
    created: int
    sent: int  # left for the provider: sent, delivered or failed after sending
    delivered: int
    failed: int
    rejected: int
    pending: int
    segments: int
    cost_vnd: int


@dataclass(frozen=True)
class SessionFigures:
    id: int
    number: int
    starts_at: datetime
    host: str
    status: str
    capacity: int
    booked: int
    attended: int
    no_show: int
    cancelled: int


@dataclass(frozen=True)
class DayCount:
    day: date
    sent: int
    failed: int


@dataclass
class Dashboard:
    period: Period
    dossiers: DossierFigures
    messages: MessageFigures
    sessions: list[SessionFigures] = field(default_factory=list)
    per_day: list[DayCount] = field(default_factory=list)


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def dossier_figures(session: Session, period: Period, tz: ZoneInfo, today: date) -> DossierFigures:
    start, end = period.bounds(tz)
    received_at = func.coalesce(Dossier.received_at, Dossier.created_at)
    resolved = Dossier.status.in_(RESOLVED)
    open_ = Dossier.status.in_(IN_PROGRESS + WAITING_ON_CITIZEN)
    # Resolved on the due date (local) or before: resolved_at < the start of the next day.
    offset = _utc_offset(tz, period)
    row = session.execute(
        select(
            func.count(),
            _count(resolved),
            _count(
                and_(
                    resolved, _local_date(session, Dossier.resolved_at, offset) <= Dossier.due_date
                )
            ),
            _count(Dossier.status.in_(IN_PROGRESS)),
            _count(Dossier.status.in_(WAITING_ON_CITIZEN)),
            _count(Dossier.status.in_(CLOSED_UNRESOLVED)),
            _count(and_(open_, Dossier.due_date < today)),
        ).where(received_at >= start, received_at < end)
    ).one()
    return DossierFigures(*(int(value) for value in row))


def message_figures(session: Session, settings: Settings, period: Period) -> MessageFigures:
    start, end = period.bounds(settings.tz)
    went_out = Message.sent_at.is_not(None)
    row = session.execute(
        select(
            func.count(),
            _count(went_out),
            _count(Message.status == statuses.DELIVERED),
            _count(Message.status == statuses.FAILED),
            _count(Message.status == statuses.REJECTED),
            _count(Message.status.in_(statuses.PENDING)),
            func.coalesce(func.sum(case((went_out, Message.segments), else_=0)), 0),
        ).where(Message.created_at >= start, Message.created_at < end)
    ).one()
    created, sent, delivered, failed, rejected, pending, segments = (int(v) for v in row)
    return MessageFigures(
        created,
        sent,
        delivered,
        failed,
        rejected,
        pending,
        segments,
        segments * settings.SMS_COST_PER_SEGMENT_VND,
    )


def session_figures(
    session: Session, period: Period, tz: ZoneInfo, ahead: timedelta = timedelta(0)
) -> list[SessionFigures]:
    """Sessions starting in the period, and in the `ahead` days after it."""
    start, end = period.bounds(tz)
    end += ahead
    rows = session.execute(
        select(
            ReceptionSession.id,
            ReceptionSession.number,
            ReceptionSession.starts_at,
            ReceptionSession.host,
            ReceptionSession.status,
            ReceptionSession.capacity,
            _count(Booking.state == "booked"),
            _count(Booking.state == "attended"),
            _count(Booking.state == "no_show"),
            _count(Booking.state == "cancelled"),
        )
        .outerjoin(Booking, Booking.session_id == ReceptionSession.id)
        .where(ReceptionSession.starts_at >= start, ReceptionSession.starts_at < end)
        .group_by(ReceptionSession.id)
        .order_by(ReceptionSession.starts_at)
        .limit(200)
    ).all()
    return [
        SessionFigures(row[0], row[1], row[2], row[3], row[4], row[5], *(int(v) for v in row[6:]))
        for row in rows
    ]


def messages_per_day(session: Session, settings: Settings, period: Period) -> list[DayCount]:
    """Messages created per local day: sent without failing, and failed or refused."""
    start, end = period.bounds(settings.tz)
    day = _local_date(session, Message.created_at, _utc_offset(settings.tz, period)).label("day")
    rows = session.execute(
        select(
            day,
            _count(and_(Message.sent_at.is_not(None), Message.status != statuses.FAILED)),
            _count(Message.status.in_((statuses.FAILED, statuses.REJECTED))),
        )
        .where(Message.created_at >= start, Message.created_at < end)
        .group_by(day)
    ).all()
    found = {_as_date(row[0]): (int(row[1]), int(row[2])) for row in rows}
    return [DayCount(d, *found.get(d, (0, 0))) for d in period.days]


def dashboard(session: Session, settings: Settings, period: Period, today: date) -> Dashboard:
    tz = settings.tz
    return Dashboard(
        period=period,
        dossiers=dossier_figures(session, period, tz, today),
        messages=message_figures(session, settings, period),
        # A period ending today would otherwise never show the sessions people are booking.
        sessions=session_figures(
            session, period, tz, SESSIONS_AHEAD if period.end >= today else timedelta(0)
        ),
        per_day=messages_per_day(session, settings, period),
    )


def _utc_offset(tz: ZoneInfo, period: Period) -> timedelta:
    # Vietnam has no daylight saving time; elsewhere days near a change may shift by an hour.
    middle = datetime.combine(period.start, time(12), tzinfo=tz)
    return middle.utcoffset() or timedelta(0)


def _local_date(session: Session, column: Any, offset: timedelta) -> Any:
    """The local calendar date of a stored (naive UTC) timestamp, computed in SQL."""
    if session.get_bind().dialect.name == "sqlite":
        seconds = int(offset.total_seconds())
        return func.date(column, f"{seconds:+d} seconds")
    # Typed explicitly: left to inference, the offset would be bound as a UTC timestamp.
    return cast(column + literal(offset, Interval()), Date)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
