"""A report's window, pure: whole days `[from, to)` in the site's timezone, as instants.

`to` is exclusive (the day after the last one counted), so `from=2025-03-01&to=2025-03-02`
is 1 March on the site's clock: in Helsinki `[28 Feb 22:00 UTC, 1 Mar 22:00 UTC)`. Without
`to` a window ends with today (the site's); without `from` it starts `DEFAULT_DAYS` earlier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_DAYS = 366
DEFAULT_DAYS = 30


class WindowError(ValueError):
    """A window the API refuses (a 422 naming `field`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Window:
    """Days `[first_day, end_day)` on `timezone`'s clock, and the instants they span."""

    first_day: date
    end_day: date  # exclusive
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        """The first day's local midnight, as an instant (UTC)."""
        return _midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        """The end day's local midnight (exclusive), as an instant (UTC)."""
        return _midnight(self.end_day, self.zone)

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def zone_name(timezone: str | None) -> str:
    """The site's timezone if Python knows it, else UTC (a site without settings has none)."""
    if not timezone:
        return "UTC"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return timezone


def today_in(timezone: str, now: datetime) -> date:
    """The date on the site's clock at `now`."""
    return now.astimezone(ZoneInfo(timezone)).date()


def window_of(from_day: date | None, to_day: date | None, *, timezone: str, today: date) -> Window:
    """The window asked for (defaults: the `DEFAULT_DAYS` up to and including `today`), or a
    `WindowError` naming the parameter that is wrong."""
    end_day = to_day if to_day is not None else today + timedelta(days=1)
    first_day = from_day if from_day is not None else end_day - timedelta(days=DEFAULT_DAYS)
    if first_day >= end_day:
        field = "to" if to_day is not None else "from"
        raise WindowError(
            field, f"to ({end_day}) must be later than from ({first_day}): to is exclusive"
        )
    window = Window(first_day, end_day, timezone)
    if window.days > MAX_DAYS:
        raise WindowError("to", f"the window spans {window.days} days; at most {MAX_DAYS}")
    return window
