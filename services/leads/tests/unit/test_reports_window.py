"""A report's window: whole days [from, to) on the site's clock, checked and defaulted."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from leads.reports.window import MAX_DAYS, WindowError, today_in, window_of, zone_name


def test_a_window_is_local_midnight_to_local_midnight_as_instants():
    window = window_of(
        date(2025, 3, 10), date(2025, 3, 17), timezone="Europe/Helsinki", today=date(2025, 3, 1)
    )
    assert window.start == datetime(2025, 3, 9, 22, 0, tzinfo=UTC)
    assert window.end == datetime(2025, 3, 16, 22, 0, tzinfo=UTC)  # exclusive
    assert window.days == 7


def test_a_window_across_a_dst_change_ends_at_summer_midnight():
    window = window_of(
        date(2025, 3, 24), date(2025, 4, 1), timezone="Europe/Helsinki", today=date(2025, 3, 1)
    )
    assert window.start == datetime(2025, 3, 23, 22, 0, tzinfo=UTC)  # UTC+2
    assert window.end == datetime(2025, 3, 31, 21, 0, tzinfo=UTC)  # UTC+3 from 30 March


def test_without_dates_the_window_is_the_last_30_days_up_to_and_including_today():
    window = window_of(None, None, timezone="UTC", today=date(2025, 3, 31))
    assert (window.first_day, window.end_day) == (date(2025, 3, 2), date(2025, 4, 1))


def test_only_from_runs_to_the_end_of_today_and_only_to_starts_30_days_earlier():
    assert window_of(date(2025, 3, 1), None, timezone="UTC", today=date(2025, 3, 5)).end_day == (
        date(2025, 3, 6)
    )
    assert window_of(None, date(2025, 3, 31), timezone="UTC", today=date(2025, 6, 1)).first_day == (
        date(2025, 3, 1)
    )


@pytest.mark.parametrize(
    ("first", "end", "field"),
    [
        (date(2025, 3, 10), date(2025, 3, 10), "to"),  # empty: to is exclusive
        (date(2025, 3, 10), date(2025, 3, 1), "to"),
        (date(2025, 4, 1), None, "from"),  # from after today, to defaulted
        (date(2024, 1, 1), date(2025, 1, 2), "to"),  # 367 days
    ],
)
def test_a_bad_window_names_the_parameter_to_fix(first, end, field):
    with pytest.raises(WindowError) as refused:
        window_of(first, end, timezone="UTC", today=date(2025, 3, 20))
    assert refused.value.field == field


def test_a_window_of_exactly_the_maximum_is_accepted():
    window = window_of(date(2024, 1, 1), date(2025, 1, 1), timezone="UTC", today=date(2025, 1, 1))
    assert window.days == MAX_DAYS


def test_a_site_without_a_known_timezone_counts_in_utc():
    assert zone_name(None) == "UTC"
    assert zone_name("Mars/Olympus_Mons") == "UTC"
    assert zone_name("Europe/Helsinki") == "Europe/Helsinki"


def test_today_is_the_sites_date():
    late = datetime(2025, 3, 16, 23, 30, tzinfo=UTC)
    assert today_in("UTC", late) == date(2025, 3, 16)
    assert today_in("Europe/Helsinki", late) == date(2025, 3, 17)
