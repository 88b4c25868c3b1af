"""Business hours, read in the site's timezone."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from beckon_contracts.rules import BusinessHours
from triggers.domain.schedule import compile_schedule, is_open

WEEKDAYS_9_TO_5 = BusinessHours.model_validate(
    {day: ["09:00-12:30", "13:30-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
)


def at(text: str, tz: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def test_no_business_hours_means_always_open():
    assert is_open(None, "UTC", at("2024-01-06 03:00"))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ("2024-01-01 09:00", True),  # Monday, opening minute
        ("2024-01-01 08:59:59", False),
        ("2024-01-01 12:30", False),  # lunch: ranges are [start, end)
        ("2024-01-01 13:30", True),
        ("2024-01-01 16:59:59", True),
        ("2024-01-01 17:00", False),
        ("2024-01-06 10:00", False),  # Saturday is left out: closed
    ],
)
def test_weekly_ranges(moment, expected):
    assert is_open(WEEKDAYS_9_TO_5, "UTC", at(moment)) is expected


def test_hours_are_read_in_the_site_timezone():
    # 08:30 UTC is 09:30 in Paris (winter, UTC+1) and 03:30 in New York
    instant = at("2024-01-02 08:30")
    assert is_open(WEEKDAYS_9_TO_5, "Europe/Paris", instant)
    assert not is_open(WEEKDAYS_9_TO_5, "America/New_York", instant)
    assert not is_open(WEEKDAYS_9_TO_5, "UTC", instant)


def test_the_weekday_is_the_local_one():
    # Monday 02:00 in Tokyo is still Sunday 17:00 UTC
    hours = BusinessHours.model_validate({"mon": ["00:00-06:00"]})
    instant = at("2024-01-01 02:00", "Asia/Tokyo")
    assert is_open(hours, "Asia/Tokyo", instant)
    assert not is_open(hours, "UTC", instant)


def test_daylight_saving_time_follows_the_zone():
    # Paris in summer is UTC+2: 07:30 UTC is 09:30 local
    assert is_open(WEEKDAYS_9_TO_5, "Europe/Paris", at("2024-07-02 07:30"))
    assert not is_open(WEEKDAYS_9_TO_5, "Europe/Paris", at("2024-01-02 07:30"))


def test_closed_dates_are_local_dates():
    hours = BusinessHours.model_validate(
        {"mon": ["00:00-24:00"], "tue": ["00:00-24:00"], "closed_dates": ["2024-12-24"]}
    )
    assert not is_open(hours, "Europe/Paris", at("2024-12-24 12:00", "Europe/Paris"))
    assert is_open(hours, "Europe/Paris", at("2024-12-23 23:59", "Europe/Paris"))
    # 23:30 UTC on the 23rd is already the 24th in Paris
    assert not is_open(hours, "Europe/Paris", at("2024-12-23 23:30"))


def test_until_midnight():
    hours = BusinessHours.model_validate({"fri": "18:00-24:00"})
    open_at = compile_schedule(hours, "UTC")
    assert open_at(at("2024-01-05 23:59:59"))
    assert not open_at(at("2024-01-06 00:00"))
