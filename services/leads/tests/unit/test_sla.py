"""SLA policies, business-time deadlines (Helsinki across DST and weekends), timers, breaches."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from beckon_contracts.rules import BusinessHours
from hypothesis import given, settings
from hypothesis import strategies as st
from leads.domain.sla import (
    DEFAULT_FIRST_CONTACT,
    BusinessCalendar,
    ScheduleError,
    SlaPolicy,
    SlaTimer,
    check_policies,
    due_timers,
    is_stale_warning,
    on_breach,
    plan_first_contact,
    policy_for,
)
from pydantic import ValidationError
from triggers.domain.schedule import is_open as triggers_is_open

HEL = ZoneInfo("Europe/Helsinki")
WEEKDAYS_9_17 = BusinessHours(
    mon="09:00-17:00", tue="09:00-17:00", wed="09:00-17:00", thu="09:00-17:00", fri="09:00-17:00"
)
OFFICE = BusinessCalendar(WEEKDAYS_9_17, "Europe/Helsinki")


def hel(*args: int) -> datetime:
    return datetime(*args, tzinfo=HEL)  # type: ignore[misc]


# ---- policies -------------------------------------------------------------------------------
def test_defaults_per_validation_level() -> None:
    got = {
        level: policy_for([], team="sales", validation=level).allowed
        for level in ("ready_to_buy", "qualified", "interested", "contact_only")
    }
    assert got == {
        "ready_to_buy": timedelta(minutes=5),
        "qualified": timedelta(minutes=30),
        "interested": timedelta(hours=4),
        "contact_only": timedelta(hours=24),
    }
    assert dict(DEFAULT_FIRST_CONTACT) == got
    default = policy_for([], team="sales", validation="qualified")
    assert (default.warn_at, default.escalate, default.reassign) == ((0.5, 0.8), True, False)


def test_a_teams_own_policy_wins_for_that_team_and_level_only() -> None:
    mine = SlaPolicy(team="service", validation="qualified", first_contact="2h", reassign=True)
    assert policy_for([mine], team="service", validation="qualified") is mine
    assert policy_for([mine], team="sales", validation="qualified").allowed == timedelta(minutes=30)
    assert policy_for([mine], team="service", validation="interested").allowed == timedelta(hours=4)


def test_policy_durations_read_like_the_rules_ones() -> None:
    assert SlaPolicy(team="t", validation="interested", first_contact="1h30m").allowed == (
        timedelta(minutes=90)
    )
    assert SlaPolicy(team="t", validation="interested", first_contact=None).allowed is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first_contact": 0}, "greater than 0"),
        ({"first_contact": "31d"}, "longer than 30 days"),
        ({"first_contact": "soon"}, "invalid duration"),
        ({"warn_at": (0.5, 1.0)}, "strictly between 0 and 1"),
        ({"warn_at": (0.0,)}, "strictly between 0 and 1"),
        ({"warn_at": (0.8, 0.5)}, "increasing and distinct"),
        ({"warn_at": (0.5, 0.5)}, "increasing and distinct"),
        ({"reassign": True, "max_reassignments": 0}, "allow at least 1"),
        ({"validation": "hot"}, "validation"),
        ({"escalate_to": "x"}, "Extra inputs"),
    ],
)
def test_bad_policies_are_refused_with_a_reason(fields: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"team": "sales", "validation": "qualified", "first_contact": "30m"}
    with pytest.raises(ValidationError, match=message):
        SlaPolicy.model_validate(data | fields)


def test_check_policies_names_a_duplicate_team_and_level() -> None:
    policies = [
        SlaPolicy(team="sales", validation="qualified", first_contact="20m"),
        SlaPolicy(team="sales", validation="interested", first_contact="2h"),
        SlaPolicy(team="sales", validation="qualified", first_contact="10m"),
    ]
    assert check_policies(policies) == [
        {"loc": "[2]", "msg": "team 'sales' already has a qualified policy at [0]; keep one"}
    ]
    assert check_policies(policies[:2]) == []


# ---- business time --------------------------------------------------------------------------
def test_always_open_counts_real_time() -> None:
    always = BusinessCalendar(None, "Europe/Helsinki")
    start = hel(2025, 3, 30, 2, 30)  # the spring-forward night: 02:30 +02:00 is 00:30 UTC
    # two real hours later is 05:30 +03:00 (wall-clock `start + 2h` would say 04:30)
    assert always.add(start, timedelta(hours=2)) == datetime(2025, 3, 30, 2, 30, tzinfo=UTC)
    assert always.add(start, timedelta(hours=2)) == hel(2025, 3, 30, 5, 30)
    assert always.elapsed(start, start + timedelta(days=3)) == timedelta(days=3)
    assert always.is_open(start)


def test_friday_evening_lead_is_due_on_monday_morning() -> None:
    friday = hel(2025, 1, 10, 16, 50)
    assert OFFICE.add(friday, timedelta(minutes=30)) == hel(2025, 1, 13, 9, 20)
    # counted from the weekend, the clock starts at Monday's opening
    assert OFFICE.add(hel(2025, 1, 11, 10, 0), timedelta(minutes=5)) == hel(2025, 1, 13, 9, 5)
    assert OFFICE.elapsed(friday, hel(2025, 1, 13, 10, 0)) == timedelta(minutes=70)


def test_a_deadline_that_uses_up_the_day_falls_on_closing_time() -> None:
    assert OFFICE.add(hel(2025, 1, 10, 16, 55), timedelta(minutes=5)) == hel(2025, 1, 10, 17, 0)


def test_spring_forward_weekend_neither_adds_nor_loses_business_time() -> None:
    # Helsinki moves from +02:00 to +03:00 at 03:00 on Sunday 30 March 2025.
    friday = hel(2025, 3, 28, 16, 0)
    due = OFFICE.add(friday, timedelta(hours=4))
    assert due.astimezone(HEL) == hel(2025, 3, 31, 12, 0)
    assert due.astimezone(HEL).utcoffset() == timedelta(hours=3)
    assert due - friday == timedelta(days=2, hours=19)  # 3 days less the lost hour
    assert OFFICE.elapsed(friday, due) == timedelta(hours=4)


def test_fall_back_weekend_neither_adds_nor_loses_business_time() -> None:
    # Helsinki moves from +03:00 back to +02:00 at 04:00 on Sunday 26 October 2025.
    friday = hel(2025, 10, 24, 15, 0)
    due = OFFICE.add(friday, timedelta(hours=8))
    assert due.astimezone(HEL) == hel(2025, 10, 27, 15, 0)
    assert due - friday == timedelta(days=3, hours=1)


def test_open_hours_spanning_the_switch_count_the_real_hours() -> None:
    night = BusinessHours(sun="02:00-06:00")
    calendar = BusinessCalendar(night, "Europe/Helsinki")
    spring = hel(2025, 3, 30, 0, 0)
    autumn = hel(2025, 10, 26, 0, 0)
    # 02:00-06:00 holds 3 real hours in spring (03:00-04:00 never happens), 5 in autumn
    assert calendar.elapsed(spring, spring + timedelta(days=1)) == timedelta(hours=3)
    assert calendar.elapsed(autumn, autumn + timedelta(days=1)) == timedelta(hours=5)
    assert calendar.add(spring, timedelta(hours=2)) == datetime(2025, 3, 30, 2, 0, tzinfo=UTC)
    assert calendar.add(autumn, timedelta(hours=4, minutes=30)) == datetime(
        2025, 10, 26, 3, 30, tzinfo=UTC
    )
    intervals = list(itertools.islice(calendar.open_intervals(spring), 2))
    assert intervals[0] == (
        datetime(2025, 3, 30, 0, 0, tzinfo=UTC),
        datetime(2025, 3, 30, 3, 0, tzinfo=UTC),
    )
    assert intervals[1][0] == hel(2025, 4, 6, 2, 0)  # a week later, in summer time


def test_a_day_open_around_the_clock_is_23_or_25_hours_long_at_the_switch() -> None:
    sundays = BusinessCalendar(BusinessHours(sun="00:00-24:00"), "Europe/Helsinki")
    (spring,) = itertools.islice(sundays.open_intervals(hel(2025, 3, 29)), 1)
    (autumn,) = itertools.islice(sundays.open_intervals(hel(2025, 10, 25)), 1)
    assert spring[1] - spring[0] == timedelta(hours=23)
    assert autumn[1] - autumn[0] == timedelta(hours=25)


def test_adjacent_ranges_and_days_merge_into_one_interval() -> None:
    split = BusinessHours(mon=["09:00-12:00", "12:00-24:00"], tue="00:00-10:00", wed="09:00-10:00")
    calendar = BusinessCalendar(split, "Europe/Helsinki")
    first, second = itertools.islice(calendar.open_intervals(hel(2025, 1, 6)), 2)
    assert first == (hel(2025, 1, 6, 9, 0), hel(2025, 1, 7, 10, 0))
    assert second == (hel(2025, 1, 8, 9, 0), hel(2025, 1, 8, 10, 0))


def test_a_wall_time_in_a_dst_gap_is_read_as_its_instant() -> None:
    # 00:30 on 4 Nov 2018 never happened in Sao Paulo (midnight became 01:00); Python reads it
    # with the old offset, i.e. as 01:30 -02:00, which the schedule below has open.
    calendar = BusinessCalendar(BusinessHours(sun="01:00-02:00"), "America/Sao_Paulo")
    gap = datetime(2018, 11, 4, 0, 30, tzinfo=ZoneInfo("America/Sao_Paulo"))
    assert gap.astimezone(UTC) == datetime(2018, 11, 4, 3, 30, tzinfo=UTC)
    assert calendar.is_open(gap)
    assert calendar.is_open(gap.astimezone(UTC))


def test_closed_dates_are_skipped() -> None:
    holidays = BusinessHours.model_validate(
        WEEKDAYS_9_17.model_dump() | {"closed_dates": [date(2025, 12, 24), date(2025, 12, 25)]}
    )
    calendar = BusinessCalendar(holidays, "Europe/Helsinki")
    tuesday_evening = hel(2025, 12, 23, 16, 30)
    assert calendar.add(tuesday_evening, timedelta(hours=1)) == hel(2025, 12, 26, 9, 30)
    assert not calendar.is_open(hel(2025, 12, 24, 12, 0))


EVERY_DAY = ["00:00-01:30", "02:00-03:00", "09:00-17:00", "23:00-24:00"]


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Helsinki", datetime(2025, 3, 28)),  # 03:00 -> 04:00
        ("Europe/Helsinki", datetime(2025, 10, 24)),  # 04:00 -> 03:00
        ("Australia/Lord_Howe", datetime(2025, 4, 4)),  # half an hour back at 02:00
        ("Australia/Lord_Howe", datetime(2025, 10, 3)),  # half an hour on at 02:00
        ("America/Sao_Paulo", datetime(2018, 11, 2)),  # midnight -> 01:00: a day without 00:xx
        ("America/Sao_Paulo", datetime(2019, 2, 15)),  # midnight -> 23:00 the day before
        ("UTC", datetime(2025, 3, 28)),
    ],
)
def test_open_intervals_agree_with_the_triggers_open_now(zone: str, start: datetime) -> None:
    """Every 7 minutes over a switch weekend, `is_open` and the intervals say the same."""
    schedule = BusinessHours(
        mon=EVERY_DAY,
        tue=EVERY_DAY,
        wed=EVERY_DAY,
        thu=EVERY_DAY,
        fri=EVERY_DAY,
        sat=EVERY_DAY,
        sun=["01:00-05:00", "22:00-24:00"],
    )
    calendar = BusinessCalendar(schedule, zone)
    first = start.replace(tzinfo=ZoneInfo(zone))
    end = first + timedelta(days=4)
    intervals = []
    for interval in calendar.open_intervals(first):
        if interval[0] >= end:
            break
        intervals.append(interval)
    moment = first.astimezone(UTC)  # real steps: wall-clock `+` in the zone would skip or repeat
    while moment < end:
        inside = any(low <= moment < high for low, high in intervals)
        expected = triggers_is_open(schedule, zone, moment.timestamp())
        assert (inside, calendar.is_open(moment)) == (expected, expected), moment
        moment += timedelta(minutes=7)
    total = sum((min(high, end) - low for low, high in intervals), timedelta(0))
    assert calendar.elapsed(first, end) == total


@settings(max_examples=200, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=60 * 24 * 30),
)
def test_elapsed_undoes_add(start: datetime, minutes: int) -> None:
    due = OFFICE.add(start, timedelta(minutes=minutes))
    assert OFFICE.elapsed(start, due) == timedelta(minutes=minutes)
    assert due > start
    # the deadline is an open instant or a closing time, never inside a closed stretch
    assert OFFICE.is_open(due) or OFFICE.is_open(due - timedelta(microseconds=1))


def test_a_schedule_with_no_open_time_left_is_an_error_not_a_loop() -> None:
    mondays = [date(2025, 1, 6) + timedelta(weeks=n) for n in range(1000)]
    shut = BusinessCalendar(
        BusinessHours(mon="09:00-17:00", closed_dates=mondays), "Europe/Helsinki"
    )
    with pytest.raises(ScheduleError, match="no open time"):
        shut.add(hel(2025, 1, 1), timedelta(minutes=5))
    with pytest.raises(ValueError, match="timezone-aware"):
        OFFICE.add(datetime(2025, 1, 1, 12, 0), timedelta(minutes=5))
    with pytest.raises(ValueError, match="must be positive"):
        OFFICE.add(hel(2025, 1, 1), timedelta(0))
    with pytest.raises(ValueError, match="unknown timezone"):
        BusinessCalendar(None, "Europe/Helsinky")


# ---- timers and breaches --------------------------------------------------------------------
def test_plan_puts_warnings_at_shares_of_business_time() -> None:
    policy = SlaPolicy(team="sales", validation="interested", first_contact="4h")
    plan = plan_first_contact(policy, OFFICE, started_at=hel(2025, 3, 28, 15, 0))
    assert plan is not None
    assert plan.due_at == hel(2025, 3, 31, 11, 0)
    assert [(t.kind, t.due_at, t.elapsed) for t in plan.timers] == [
        ("warning", hel(2025, 3, 28, 17, 0), 0.5),  # 2 h in: Friday's closing time
        ("warning", hel(2025, 3, 31, 10, 12), 0.8),
        ("breach", hel(2025, 3, 31, 11, 0), 1.0),
    ]
    assert plan.started_at.tzinfo is UTC
    assert all(t.due_at.utcoffset() == timedelta(0) for t in plan.timers)


def test_warning_at_an_exact_closing_time_stays_there() -> None:
    policy = SlaPolicy(team="sales", validation="interested", first_contact="4h", warn_at=(0.5,))
    plan = plan_first_contact(policy, OFFICE, started_at=hel(2025, 1, 10, 15, 0))
    assert plan is not None
    assert plan.timers[0] == SlaTimer("warning", hel(2025, 1, 10, 17, 0), 0.5)


def test_no_sla_no_plan() -> None:
    policy = SlaPolicy(team="service", validation="contact_only", first_contact=None)
    assert plan_first_contact(policy, OFFICE, started_at=hel(2025, 1, 10, 15, 0)) is None


def test_due_timers_fire_in_order_and_a_due_breach_supersedes_warnings() -> None:
    start = hel(2025, 1, 13, 9, 0)
    plan = plan_first_contact(
        SlaPolicy(team="sales", validation="qualified", first_contact="30m"),
        OFFICE,
        started_at=start,
    )
    assert plan is not None
    warn50, warn80, breach = plan.timers
    assert due_timers(plan.timers, now=start + timedelta(minutes=14)) == []
    assert due_timers(plan.timers, now=start + timedelta(minutes=15)) == [warn50]
    assert due_timers(plan.timers, now=start + timedelta(minutes=25)) == [warn50, warn80]
    assert due_timers(plan.timers, now=start + timedelta(hours=5)) == [breach]
    assert is_stale_warning(warn50, breach_due_at=breach.due_at, now=breach.due_at)
    assert not is_stale_warning(warn50, breach_due_at=breach.due_at, now=warn80.due_at)
    assert not is_stale_warning(breach, breach_due_at=breach.due_at, now=breach.due_at)


def test_breach_escalates_and_reassigns_per_policy() -> None:
    both = SlaPolicy(
        team="sales",
        validation="ready_to_buy",
        first_contact="5m",
        reassign=True,
        max_reassignments=2,
    )
    assert on_breach(both, reassignments_so_far=0, assigned=True).reassign
    assert on_breach(both, reassignments_so_far=1, assigned=True).reassign
    assert not on_breach(both, reassignments_so_far=2, assigned=True).reassign
    assert not on_breach(both, reassignments_so_far=0, assigned=False).reassign  # still queued
    assert on_breach(both, reassignments_so_far=2, assigned=True).escalate
    quiet = SlaPolicy(team="sales", validation="ready_to_buy", first_contact="5m", escalate=False)
    plan = on_breach(quiet, reassignments_so_far=0, assigned=True)
    assert (plan.escalate, plan.reassign) == (False, False)
