"""The office's working days and the reminder settings that describe them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifier.core.config import Settings
from notifier.text.workdays import WorkingCalendar, calendar_for


def test_weekends_and_configured_holidays_are_skipped() -> None:
    calendar = calendar_for(Settings(HOLIDAY_CALENDAR="", PUBLIC_HOLIDAYS="--09-02,2025-07-15"))
    # Friday 11 July 2025 + 3: Mon 14, (Tue 15 off), Wed 16, Thu 17.
    assert calendar.add_working_days(date(2025, 7, 11), 3) == date(2025, 7, 17)
    assert not calendar.is_working_day(date(2026, 9, 2))  # yearly
    assert calendar.is_working_day(date(2026, 7, 15))  # that date was for 2025 only


def test_vietnams_calendar_knows_tet_and_the_swapped_days() -> None:
    calendar = calendar_for(Settings())
    # Tết 2026: Mon 16 to Fri 20 February.
    assert [calendar.is_working_day(date(2026, 2, d)) for d in range(16, 21)] == [False] * 5
    assert calendar.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 23)
    # 2025: Saturday 26 April was worked in exchange for Friday 2 May.
    assert calendar.is_working_day(date(2025, 4, 26))
    assert not calendar.is_working_day(date(2025, 5, 2))


def test_default_holidays_are_vietnams_fixed_dates_without_a_country_calendar() -> None:
    calendar = calendar_for(Settings(HOLIDAY_CALENDAR=""))
    assert [
        calendar.is_working_day(date(2027, m, d)) for m, d in [(1, 1), (4, 30), (5, 3), (9, 2)]
    ] == [False, False, True, False]


@given(start=st.dates(date(2024, 1, 1), date(2027, 12, 31)), count=st.integers(1, 30))
def test_adding_working_days_lands_on_a_working_day_past_exactly_that_many(
    start: date, count: int
) -> None:
    calendar = calendar_for(Settings())
    end = calendar.add_working_days(start, count)
    assert calendar.is_working_day(end)
    between = [start + timedelta(days=n) for n in range(1, (end - start).days + 1)]
    assert sum(calendar.is_working_day(day) for day in between) == count


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("PUBLIC_HOLIDAYS", "2025-13-01", "PUBLIC_HOLIDAYS: '2025-13-01'"),
        ("PUBLIC_HOLIDAYS", "--02-30", "PUBLIC_HOLIDAYS: '--02-30'"),
        ("PUBLIC_HOLIDAYS", "Tet", "PUBLIC_HOLIDAYS: 'Tet'"),
        ("REMINDER_DAY_BEFORE_AT", "5pm", "REMINDER_DAY_BEFORE_AT: '5pm'"),
        ("DOSSIER_REMINDER_AT", "off", "DOSSIER_REMINDER_AT: 'off'"),
        ("DOSSIER_REMINDER_REPEATS", -1, "DOSSIER_REMINDER_REPEATS must be 0 or more"),
        ("TIMEZONE", "Asia/Hanoi_City", "Asia/Hanoi_City"),
    ],
)
def test_bad_reminder_settings_are_refused_with_the_variable_named(
    setting: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings.from_env({setting: value})


def test_unknown_holiday_calendar_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="HOLIDAY_CALENDAR: 'XX'"):
        WorkingCalendar(country="XX")


def test_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        environ={"PUBLIC_HOLIDAYS": "2026-02-16, --09-02", "DOSSIER_REMINDER_REPEATS": "1"}
    )
    assert settings.public_holidays == (frozenset({date(2026, 2, 16)}), frozenset({(9, 2)}))
    assert settings.DOSSIER_REMINDER_REPEATS == 1
