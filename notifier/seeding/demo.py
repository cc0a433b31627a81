"""Demo data for `make run`: a commune's first month after the 2025 reform, and its reception days."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from notifier import reception
from notifier.core.runtime import Services
from notifier.models import Dossier, StaffUser
from notifier.staff import accounts

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - printed on purpose; demo data only
PROCEDURES = [
    "Chứng thực bản sao từ bản chính",
    "Đăng ký khai sinh",
    "Đăng ký kết hôn",
    "Cấp giấy chứng nhận quyền sử dụng đất lần đầu",
    "Xác nhận tình trạng hôn nhân",
    "Đăng ký thường trú",
]
NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em"]


def seed(services: Services, today: date | None = None) -> str:
    """Idempotent: does nothing when demo data is already there."""
    today = today or datetime.now(services.settings.tz).date()
    tz = services.settings.tz
    with services.db.transaction() as session:
        if session.scalar(select(func.count()).select_from(Dossier)):
            return "demo data already present"
        rng = random.Random(2025)
        # 292 received, 227 resolved (on time or not), 15 in progress, the rest waiting on citizens.
        states = ["resolved"] * 227 + ["processing"] * 15 + ["supplement_requested"] * 50
        for index, state in enumerate(states, start=1):
            received_day = today - timedelta(days=rng.randint(1, 30))
            received_at = datetime.combine(received_day, time(8, 30), tzinfo=tz).astimezone(UTC)
            due = received_day + timedelta(days=rng.choice([1, 2, 3, 5, 10]))
            resolved_at = None
            status = state
            if state == "resolved":
                late = rng.random() < 0.2
                resolved_day = due + timedelta(days=rng.randint(1, 3)) if late else due
                resolved_at = datetime.combine(resolved_day, time(15), tzinfo=tz).astimezone(UTC)
                status = "returned" if rng.random() < 0.7 else "ready"
            session.add(
                Dossier(
                    code=f"000.00.31.H26-{received_day:%y%m%d}-{index:04d}",
                    procedure=rng.choice(PROCEDURES),
                    status=status,
                    status_changed_at=resolved_at or received_at,
                    due_date=due,
                    citizen_name=rng.choice(NAMES),
                    phone=f"+849{rng.randint(10_000_000, 99_999_999)}",
                    received_at=received_at,
                    resolved_at=resolved_at,
                    created_at=received_at,
                )
            )
        # Through the reception domain, so public numbers are assigned as for any new session.
        for days_ahead in _next_wednesdays(today, 3):
            day = today + timedelta(days=days_ahead)
            reception.create_session(
                session,
                services.settings,
                starts_at=datetime.combine(day, time(8), tzinfo=tz),
                ends_at=datetime.combine(day, time(11), tzinfo=tz),
                host="Chủ tịch UBND xã",
                location="Phòng tiếp công dân, UBND xã",
                capacity=10,
                slot_minutes=15,
            )
        if not session.scalar(select(StaffUser).where(StaffUser.username == DEMO_USER)):
            accounts.create_user(session, DEMO_USER, DEMO_PASSWORD, "admin")
    return (
        f"demo data: 292 dossiers, 3 reception sessions, staff user "
        f"{DEMO_USER!r} / password {DEMO_PASSWORD!r}"
    )


def _next_wednesdays(today: date, count: int) -> list[int]:
    first = (2 - today.weekday()) % 7 or 7
    return [first + 7 * week for week in range(count)]
