"""Working days of the commune office: Monday to Friday, less public holidays.

Holidays come from two places: `PUBLIC_HOLIDAYS` (dates and yearly dates staff configure) and,
unless `HOLIDAY_CALENDAR` is empty, the `holidays` package's calendar for that country. For
Vietnam the package knows the lunar holidays (Tết, the Hùng Kings' day) and the government's
announced swaps, including the Saturdays worked in exchange, which count as working days.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

from notifier.core.config import Settings


class WorkingCalendar:
    def __init__(
        self,
        dates: frozenset[date] = frozenset(),
        yearly: frozenset[tuple[int, int]] = frozenset(),
        country: str = "",
    ) -> None:
        self.dates = dates
        self.yearly = yearly
        self.country: holidays.HolidayBase | None = None
        if country:
            try:
                self.country = holidays.country_holidays(country)
            except NotImplementedError:
                raise ValueError(
                    f"HOLIDAY_CALENDAR: {country!r} is not a country code the holidays "
                    "package knows (e.g. VN); leave it empty to use PUBLIC_HOLIDAYS alone"
                ) from None

    def is_holiday(self, day: date) -> bool:
        """A configured or national holiday (weekends aside)."""
        if day in self.dates or (day.month, day.day) in self.yearly:
            return True
        return self.country is not None and day in self.country

    def is_working_day(self, day: date) -> bool:
        if day in self.dates or (day.month, day.day) in self.yearly:
            return False
        if self.country is not None:
            return bool(self.country.is_working_day(day))
        return day.weekday() < 5

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (`day` itself does not count)."""
        if count < 1:
            raise ValueError("count must be 1 or more")
        found = 0
        while found < count:
            day += timedelta(days=1)
            if self.is_working_day(day):
                found += 1
        return day


def calendar_for(settings: Settings) -> WorkingCalendar:
    """The working calendar these settings describe (built once per distinct settings)."""
    dates, yearly = settings.public_holidays
    return _calendar(dates, yearly, settings.HOLIDAY_CALENDAR.strip().upper())


@lru_cache(maxsize=8)
def _calendar(
    dates: frozenset[date], yearly: frozenset[tuple[int, int]], country: str
) -> WorkingCalendar:
    return WorkingCalendar(dates, yearly, country)
