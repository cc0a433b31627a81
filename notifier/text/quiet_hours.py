"""Quiet hours: non-urgent messages due inside them wait until they end.

The window is local wall-clock time (`QUIET_HOURS`, e.g. 21:00-07:00) and may cross midnight.
Every answer is worked out from the instant asked about, never from a remembered deadline, so a
process that sleeps through a whole window (a laptop lid, a paused VM, a scheduler that was
down) still finds itself inside the next window when it wakes in one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Window = tuple[time, time]


def is_quiet(now: datetime, window: Window | None, tz: ZoneInfo) -> bool:
    """Whether the aware instant `now` falls inside the local quiet window."""
    return quiet_until(now, window, tz) is not None


def quiet_until(now: datetime, window: Window | None, tz: ZoneInfo) -> datetime | None:
    """When `now` falls inside the (local) quiet window, the end of it (aware, UTC); else None."""
    if window is None:
        return None
    start, end = window
    if start == end:  # an empty window, not a whole day
        return None
    local = now.astimezone(tz)
    clock = local.time().replace(tzinfo=None)
    if start < end:  # e.g. 12:00-13:00, within one day
        inside = start <= clock < end
        end_day = local.date()
    else:  # e.g. 21:00-07:00, across midnight
        inside = clock >= start or clock < end
        end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
    if not inside:
        return None
    return max(first_instant_at(end_day, end, tz), now.astimezone(UTC))


def outside(moment: datetime, window: Window | None, tz: ZoneInfo) -> datetime:
    """`moment` itself, or the end of the quiet window it falls in."""
    return quiet_until(moment, window, tz) or moment


def first_instant_at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the local wall clock of `day` reads `clock` or later.

    Usually just that wall time; when a daylight-saving jump skips it, the instant of the jump.
    """
    earlier = datetime.combine(day, clock, tzinfo=tz).astimezone(UTC)  # fold=0
    if _wall(earlier, tz) == datetime.combine(day, clock):
        return earlier
    # `clock` does not exist that day: the clocks jumped over it. Search for the jump between
    # the two readings of the gap (fold=1 lands before it, fold=0 after it).
    low = datetime.combine(day, clock, tzinfo=tz).replace(fold=1).astimezone(UTC)
    high = max(earlier, low)
    low = min(earlier, low)
    target = datetime.combine(day, clock)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _wall(middle, tz) >= target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)
