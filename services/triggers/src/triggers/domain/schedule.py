"""Business hours: is a team answering at a given instant, in the site's own timezone?

An invitation made while nobody answers is a promise the team can't keep, so every rule is
gated by its (or its site's) weekly schedule. `compile_schedule` parses the schedule once,
for the per-event path; `is_open` is the one-off form.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from beckon_contracts.rules import WEEKDAYS, BusinessHours, parse_time_range

OpenAt = Callable[[float], bool]


def _always_open(epoch_s: float) -> bool:
    return True


def compile_schedule(business_hours: BusinessHours | None, tz_name: str) -> OpenAt:
    """A function `epoch seconds -> open?` for one schedule (None: always open)."""
    if business_hours is None:
        return _always_open
    zone = ZoneInfo(tz_name)
    # weekday() index -> [(start_minute, end_minute)]
    week = [tuple(parse_time_range(text) for text in business_hours.day(name)) for name in WEEKDAYS]
    closed = frozenset(business_hours.closed_dates)

    def open_at(epoch_s: float) -> bool:
        local = datetime.fromtimestamp(epoch_s, zone)
        if closed and local.date() in closed:
            return False
        minute = local.hour * 60 + local.minute + local.second / 60
        return any(start <= minute < end for start, end in week[local.weekday()])

    return open_at


def is_open(business_hours: BusinessHours | None, tz_name: str, epoch_s: float) -> bool:
    """Whether `epoch_s` falls in the opening hours, read in the timezone `tz_name`."""
    return compile_schedule(business_hours, tz_name)(epoch_s)
