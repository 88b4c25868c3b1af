"""The SLA slice without I/O: what a claimed timer does by the lead's state, stored policies
and hours, the clocks the scheduler sleeps on, and its settings."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from beckon_contracts.rules import BusinessHours
from leads.config import Settings
from leads.lead import Lead
from leads.sla.models import SiteHours, SitePolicy
from leads.sla.scheduler import ManualClock, SystemClock
from leads.sla.service import judge, plan_for
from leads.sla.store import DueTimer
from pydantic import ValidationError

T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
LEAD = Lead(
    lead_id=uuid.uuid4(),
    site_id="s",
    visitor_id="v",
    status="assigned",
    validation="ready_to_buy",
    team="sales",
    assignee="ann",
    name=None,
    company=None,
    email=None,
    email_key=None,
    phone=None,
    phone_key=None,
    country=None,
    language=None,
    source="chat",
    rule_id=None,
    campaign=None,
    score=None,
    segment=None,
    capture={},
    order_id=None,
    order_value=None,
    currency=None,
    lost_reason=None,
    merged_into=None,
    routing_version=None,
    created_at=T0,
    updated_at=T0,
    queued_at=None,
    assigned_at=T0,
    first_contact_at=None,
    closed_at=None,
    event_seq=0,
)


def _timer(kind: str, percent: int, due: timedelta, deadline: timedelta) -> DueTimer:
    return DueTimer(
        timer_id=1,
        timer_uuid=uuid.uuid4(),
        lead_id=LEAD.lead_id,
        site_id="s",
        kind=kind,  # type: ignore[arg-type]
        at_percent=percent,
        deadline_at=T0 + deadline,
        due_at=T0 + due,
    )


WARNING = _timer("warning", 50, timedelta(minutes=2), timedelta(minutes=5))
BREACH = _timer("breach", 100, timedelta(minutes=5), timedelta(minutes=5))


# ---- judge ----------------------------------------------------------------------------------
def test_a_due_timer_of_a_lead_awaiting_contact_fires():
    now = T0 + timedelta(minutes=3)
    assert judge(WARNING, LEAD, now=now) == ("warn", None)
    assert judge(WARNING, dataclasses.replace(LEAD, status="new", assignee=None), now=now) == (
        "warn",
        None,
    )
    assert judge(BREACH, LEAD, now=T0 + timedelta(minutes=5)) == ("breach", None)


def test_a_warning_whose_breach_is_due_too_is_stale():
    assert judge(WARNING, LEAD, now=T0 + timedelta(minutes=5)) == ("cancel", "stale")
    assert judge(WARNING, LEAD, now=T0 + timedelta(minutes=4, seconds=59)) == ("warn", None)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "contacted"}, "lead_contacted"),
        ({"status": "qualified"}, "lead_qualified"),
        ({"status": "won", "closed_at": T0}, "lead_won"),
        ({"merged_into": uuid.uuid4()}, "lead_merged"),
        ({"team": None, "assignee": None, "status": "new"}, "lead_unrouted"),
    ],
)
def test_a_lead_no_longer_awaiting_contact_cancels_its_timer(change, reason):
    lead = dataclasses.replace(LEAD, **change)
    assert judge(BREACH, lead, now=T0 + timedelta(minutes=5)) == ("cancel", reason)


# ---- stored policies and hours --------------------------------------------------------------
def test_a_stored_policy_is_whole_seconds_and_whole_percents():
    policy = SitePolicy(team="sales", validation="qualified", first_contact="5m", warn_at=[0.25])
    assert (policy.first_contact, policy.warn_at_percent) == (300, [25])
    for bad in ({"first_contact": 0.5}, {"first_contact": 90.5}, {"warn_at": [0.333]}):
        with pytest.raises(ValidationError):
            SitePolicy(**{"team": "sales", "validation": "qualified", "first_contact": 60, **bad})


def test_a_stored_policy_row_reads_back():
    row = {
        "team": "sales",
        "validation": "qualified",
        "first_contact_s": None,
        "warn_at_percent": [50, 80],
        "escalate": False,
        "reassign_on_breach": False,
        "max_reassignments": 2,
        "business_hours_only": False,
    }
    policy = SitePolicy.of_row(row)
    assert (policy.allowed, policy.warn_at, policy.escalate, policy.business_hours_only) == (
        None,
        (0.5, 0.8),
        False,
        False,
    )


def test_site_hours_read_either_range_form_and_nothing_means_around_the_clock():
    assert SiteHours.of_row("UTC", "{}", []) == SiteHours()
    pairs = SiteHours.of_row("Europe/Helsinki", '{"mon": [["09:00", "17:00"]]}', [date(2026, 1, 1)])
    texts = SiteHours.of_row("Europe/Helsinki", {"mon": ["09:00-17:00"]}, [date(2026, 1, 1)])
    assert pairs == texts
    assert pairs.hours is not None
    assert pairs.hours.mon == ["09:00-17:00"]
    assert pairs.holidays == [date(2026, 1, 1)]
    assert '"closed_dates"' not in pairs.weekly_json()
    assert SiteHours.of_row("UTC", pairs.weekly_json(), []).hours == BusinessHours(
        mon="09:00-17:00"
    )


def test_a_policy_around_the_clock_ignores_the_sites_hours():
    office = SiteHours("UTC", BusinessHours(mon="09:00-17:00"))
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    policy = SitePolicy(team="sales", validation="ready_to_buy", first_contact=300)
    in_hours = plan_for(policy, office, started_at=saturday)
    assert in_hours is not None
    assert in_hours.due_at == datetime(2026, 3, 9, 9, 5, tzinfo=UTC)
    around = plan_for(
        policy.model_copy(update={"business_hours_only": False}), office, started_at=saturday
    )
    assert around is not None
    assert around.due_at == saturday + timedelta(minutes=5)


# ---- clocks ---------------------------------------------------------------------------------
async def test_a_manual_clock_sleeps_until_it_is_moved_past_the_moment():
    clock = ManualClock(T0)
    wake = asyncio.Event()
    sleeper = asyncio.create_task(clock.sleep_until(T0 + timedelta(minutes=5), wake))
    clock.advance(timedelta(minutes=4))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(timedelta(minutes=1))
    await asyncio.wait_for(sleeper, 10)
    with pytest.raises(ValueError, match="does not go back"):
        clock.set(T0)


async def test_a_sleep_ends_when_woken():
    for clock in (ManualClock(T0), SystemClock()):
        wake = asyncio.Event()
        sleeper = asyncio.create_task(clock.sleep_until(clock.now() + timedelta(hours=1), wake))
        await asyncio.sleep(0)
        assert not sleeper.done()
        wake.set()
        await asyncio.wait_for(sleeper, 10)
    # a moment already past: no sleep at all
    await asyncio.wait_for(SystemClock().sleep_until(T0, asyncio.Event()), 10)


# ---- settings -------------------------------------------------------------------------------
def test_the_poll_cannot_outlast_the_wake_up_horizon():
    assert Settings(environment="test").sla_poll_s == 5.0
    with pytest.raises(ValidationError, match="sla_poll_s"):
        Settings(environment="test", sla_poll_s=61)
