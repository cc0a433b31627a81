"""Quiet hours: non-urgent messages due inside them wait until they end."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def quiet_until(now: datetime, window: tuple[time, time] | None, tz: ZoneInfo) -> datetime | None:
    """When `now` falls inside the (local) quiet window, the aware UTC-comparable end of it."""
    if window is None:
        return None
    start, end = window
    local = now.astimezone(tz)
    clock = local.time()
    if start == end:
        return None
    if start < end:  # e.g. 12:00-13:00, within one day
        inside = start <= clock < end
        end_day = local.date()
    else:  # e.g. 21:00-07:00, across midnight
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=tz)
