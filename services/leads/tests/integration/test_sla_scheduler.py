"""The SLA scheduler on real Postgres with a hand-driven clock: every timer fires exactly once
with two instances, a breach escalates and reassigns, stopped and contacted leads stay quiet,
timers outlive their scheduler, a failing firing is rolled back whole, a jump of the clock fires
what is due once and skips stale warnings, business hours carry a deadline over a weekend."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from beckon_contracts.leads import LeadReassigned
from leads.events import emit
from leads.lead import Lead, LeadStore
from leads.sla import service
from leads.sla.scheduler import ManualClock
from leads.uow import UnitOfWork
from leads.webhooks.store import WebhookStore
from leads_testing import unique
from prometheus_client import CollectorRegistry, Histogram
from sla_testing import (
    add_team,
    lead_events,
    make_pool_fixture,  # noqa: F401  (the fixture make_pool)
    new_lead,
    scheduler_on,
    settle,
    sla_database_fixture,  # noqa: F401  (the fixture sla_database)
    timers_of,
    uow_of,
)

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # a Wednesday
SLA_EVENTS = ("lead.sla_warning", "lead.sla_breached")


async def _plan(pool, lead: Lead, now: datetime) -> datetime | None:
    async with uow_of(pool)(lead.site_id) as tx:
        return await service.start_first_contact(tx, lead=lead, now=now)


async def test_two_instances_fire_each_timer_exactly_once(make_pool):
    first, second = await make_pool(), await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    leads = [await new_lead(first, site) for _ in range(120)]
    for lead in leads:  # ready_to_buy: 5 min, warned at 2:30 and 4:00
        assert await _plan(first, lead, T0) == T0 + timedelta(minutes=5)
    a = scheduler_on(first, clock, "leads-a", batch=7)
    b = scheduler_on(second, clock, "leads-b", batch=7)
    await a.start()
    await b.start()
    try:
        for step in (timedelta(seconds=150), timedelta(seconds=90), timedelta(seconds=60)):
            clock.advance(step)
            await settle(clock, a, b)
    finally:
        await a.stop()
        await b.stop()

    events = await lead_events(first, site, *SLA_EVENTS)
    per_timer = Counter(event.payload.timer_id for event in events)
    assert len(per_timer) == 3 * len(leads)  # two warnings and a breach each
    assert set(per_timer.values()) == {1}
    assert Counter(e.type for e in events) == {
        "lead.sla_warning": 2 * len(leads),
        "lead.sla_breached": len(leads),
    }
    assert len(await lead_events(first, site, "lead.escalated")) == len(leads)
    assert a.fired + b.fired == 3 * len(leads)
    unfired = await first.fetchval(
        "SELECT count(*) FROM leads.timers WHERE site_id = $1 AND fired_at IS NULL", site
    )
    assert unfired == 0
    # one lead's events are numbered 1, 2, 3... in firing order
    mine = [e for e in await lead_events(first, site) if e.lead_id == leads[0].lead_id]
    assert [e.payload.seq for e in mine] == [1, 2, 3, 4]
    assert [e.type for e in mine] == [
        "lead.sla_warning",
        "lead.sla_warning",
        "lead.sla_breached",
        "lead.escalated",
    ]
    assert [getattr(e.payload, "elapsed", None) for e in mine[:2]] == [0.5, 0.8]


async def test_a_breach_escalates_to_the_team_lead_and_reassigns_per_policy(make_pool):
    pool = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    await add_team(pool, site, "sales", "boss")
    await add_team(pool, site, "service", None)
    await pool.execute(
        """INSERT INTO leads.sla_policies (site_id, team, validation, first_contact_s,
               warn_at_percent, reassign_on_breach, max_reassignments)
           VALUES ($1, 'sales', 'qualified', 600, '{50}', true, 1)""",
        site,
    )
    sales = await new_lead(pool, site, validation="qualified")
    service_lead = await new_lead(pool, site, team="service", validation="ready_to_buy")
    calls: list[tuple[str, str | None, str]] = []

    async def fake_reassign(tx: UnitOfWork, *, lead: Lead, reason, now: datetime) -> Lead:
        """Stands in for assignment.service.reassign (the ASSIGN slice's): ann -> bob."""
        calls.append((tx.site_id, lead.assignee, reason))
        assert "sales" in tx.locked_teams
        await tx.conn.execute(
            "UPDATE leads.leads SET assignee = 'bob', assigned_at = $2 WHERE lead_id = $1",
            lead.lead_id,
            now,
        )
        after = await tx.store(LeadStore).get(lead.site_id, lead.lead_id)
        assert after is not None
        return after

    assert await _plan(pool, sales, T0) == T0 + timedelta(minutes=10)
    assert await _plan(pool, service_lead, T0) == T0 + timedelta(minutes=5)
    scheduler = scheduler_on(pool, clock, "leads-a", reassign=fake_reassign)
    await scheduler.start()
    try:
        clock.advance(timedelta(minutes=10))  # both breach (the service lead's warnings: stale)
        await settle(clock, scheduler)
        first_breach = clock.now()
        new_timers = [
            t
            for t in await timers_of(pool, sales.lead_id)
            if t["fired_at"] is None and t["cancelled_at"] is None
        ]
        assert [(t["kind"], t["assignee"], t["deadline_at"]) for t in new_timers] == [
            ("warning", "bob", first_breach + timedelta(minutes=10)),
            ("breach", "bob", first_breach + timedelta(minutes=10)),
        ]
        clock.advance(timedelta(minutes=10))  # bob breaches too: escalated, not handed on
        await settle(clock, scheduler)
    finally:
        await scheduler.stop()

    assert calls == [(site, "ann", "sla_breached")]  # once: max_reassignments 1; not service's
    escalated = await lead_events(pool, site, "lead.escalated")
    # in claim order: the service lead's deadline (5 min) came before the sales lead's (10 min)
    assert [(e.lead_id, e.payload.escalated_to, e.payload.agent_id) for e in escalated] == [
        (service_lead.lead_id, [], "ann"),  # a team without a team lead: nobody named
        (sales.lead_id, ["boss"], "ann"),
        (sales.lead_id, ["boss"], "bob"),
    ]
    breached = await lead_events(pool, site, "lead.sla_breached")
    assert [(e.lead_id, e.payload.agent_id) for e in breached if e.lead_id == sales.lead_id] == [
        (sales.lead_id, "ann"),
        (sales.lead_id, "bob"),
    ]
    reassigned = await pool.fetch(
        "SELECT lead_id FROM leads.timers WHERE site_id = $1 AND reassigned", site
    )
    assert [r["lead_id"] for r in reassigned] == [sales.lead_id]


async def test_a_stopped_or_contacted_lead_never_fires(make_pool):
    pool = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    stopped = await new_lead(pool, site)
    contacted = await new_lead(pool, site)
    for lead in (stopped, contacted):
        await _plan(pool, lead, T0)
    async with uow_of(pool)(site) as tx:
        assert await service.stop(tx, lead=stopped, now=T0) == 3
        assert await service.stop(tx, lead=stopped, now=T0) == 0
    # contacted without anyone stopping its timers: the scheduler's re-check cancels them
    await pool.execute(
        "UPDATE leads.leads SET status = 'contacted', first_contact_at = $2 WHERE lead_id = $1",
        contacted.lead_id,
        T0,
    )
    scheduler = scheduler_on(pool, clock, "leads-a")
    await scheduler.start()
    try:
        for _ in range(3):
            clock.advance(timedelta(minutes=2))
            await settle(clock, scheduler)
    finally:
        await scheduler.stop()

    assert await lead_events(pool, site) == []
    assert scheduler.fired == 0
    stopped_timers = await timers_of(pool, stopped.lead_id)
    assert {(t["fired_at"], t["cancel_reason"]) for t in stopped_timers} == {(None, "stopped")}
    contacted_timers = await timers_of(pool, contacted.lead_id)
    assert {(t["fired_at"], t["cancel_reason"]) for t in contacted_timers} == {
        (None, "lead_contacted")
    }


async def test_timers_survive_a_restart(make_pool):
    before = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    leads = [await new_lead(before, site) for _ in range(5)]
    old = scheduler_on(before, clock, "leads-old")
    await old.start()
    for lead in leads:
        await _plan(before, lead, T0)
    await old.stop()
    await before.close()  # the instance is gone; its timers are rows

    after = await make_pool()
    registry = CollectorRegistry()
    fire_lag = Histogram("leads_sla_fire_lag_seconds", "lag", registry=registry)
    new = scheduler_on(after, clock, "leads-new", fire_lag=fire_lag)
    await new.start()
    try:
        clock.advance(timedelta(minutes=3))  # the 50 % warnings
        await settle(clock, new)
        clock.advance(timedelta(minutes=3))  # the breach (the 80 % warnings are stale now)
        await settle(clock, new)
    finally:
        await new.stop()
    events = await lead_events(after, site, *SLA_EVENTS)
    assert Counter((e.type, getattr(e.payload, "elapsed", 1.0)) for e in events) == {
        ("lead.sla_warning", 0.5): 5,
        ("lead.sla_breached", 1.0): 5,
    }
    claimed_by = await after.fetch(
        "SELECT DISTINCT claimed_by FROM leads.timers WHERE site_id = $1", site
    )
    assert {r["claimed_by"] for r in claimed_by} == {"leads-new"}
    # each firing's lateness: the clock stood past each timer's due time when it fired
    assert registry.get_sample_value("leads_sla_fire_lag_seconds_count") == 10
    assert registry.get_sample_value("leads_sla_fire_lag_seconds_sum") > 0


async def test_a_failing_firing_rolls_back_whole_and_is_retried_alone(make_pool):
    pool = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    await pool.execute(
        """INSERT INTO leads.sla_policies (site_id, team, validation, first_contact_s,
               warn_at_percent, reassign_on_breach)
           VALUES ($1, 'sales', 'ready_to_buy', 300, '{}', true)""",
        site,
    )
    good = [await new_lead(pool, site) for _ in range(3)]
    bad = await new_lead(pool, site, assignee="broken")
    for lead in [*good, bad]:
        await _plan(pool, lead, T0)
    failing = {"on": True}

    async def flaky_reassign(tx: UnitOfWork, *, lead: Lead, reason, now: datetime) -> Lead:
        await tx.conn.execute(
            "UPDATE leads.leads SET assignee = 'bob' WHERE lead_id = $1", lead.lead_id
        )
        if failing["on"] and lead.assignee == "broken":
            raise RuntimeError("the assignment broke")
        after = await tx.store(LeadStore).get(lead.site_id, lead.lead_id)
        assert after is not None
        return after

    scheduler = scheduler_on(pool, clock, "leads-a", reassign=flaky_reassign, retry_s=60)
    await scheduler.start()
    try:
        clock.advance(timedelta(minutes=5))
        await settle(clock, scheduler)
        # nothing is left claimed but unfired; the bad lead's breach waits, untouched
        half_done = await pool.fetchval(
            """SELECT count(*) FROM leads.timers WHERE site_id = $1 AND claimed_at IS NOT NULL
                  AND fired_at IS NULL AND cancelled_at IS NULL""",
            site,
        )
        assert half_done == 0
        [waiting] = [
            t
            for t in await timers_of(pool, bad.lead_id)
            if t["fired_at"] is None and t["cancelled_at"] is None
        ]
        assert (waiting["failures"], waiting["due_at"]) == (1, clock.now() + timedelta(minutes=1))
        assert "the assignment broke" in waiting["last_error"]
        bad_now = await pool.fetchval(
            "SELECT assignee FROM leads.leads WHERE lead_id = $1", bad.lead_id
        )
        assert bad_now == "broken"  # its half-done reassignment was rolled back
        assert len(await lead_events(pool, site, "lead.sla_breached")) == 3

        failing["on"] = False
        clock.advance(timedelta(minutes=1))
        await settle(clock, scheduler)
    finally:
        await scheduler.stop()
    breached = await lead_events(pool, site, "lead.sla_breached")
    assert Counter(e.lead_id for e in breached) == {lead.lead_id: 1 for lead in [*good, bad]}


async def test_a_clock_jump_fires_what_is_due_once_and_skips_stale_warnings(make_pool):
    pool = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    hot = [await new_lead(pool, site) for _ in range(20)]  # 5 min
    warm = [await new_lead(pool, site, validation="interested") for _ in range(20)]  # 4 h
    for lead in [*hot, *warm]:
        await _plan(pool, lead, T0)
    scheduler = scheduler_on(pool, clock, "leads-a")
    await scheduler.start()
    try:
        clock.advance(timedelta(hours=3))  # e.g. every instance was down for 3 hours
        await settle(clock, scheduler)
        await settle(clock, scheduler)  # and nothing more on a second look
    finally:
        await scheduler.stop()
    events = await lead_events(pool, site, *SLA_EVENTS)
    hot_ids = {lead.lead_id for lead in hot}
    # hot leads: the breach only (both warnings were stale when it fired)
    assert Counter(e.type for e in events if e.lead_id in hot_ids) == {"lead.sla_breached": 20}
    # warm leads: 50 % (2 h) is due, 80 % (3 h 12 min) and the breach are not
    assert Counter((e.type, e.payload.elapsed) for e in events if e.lead_id not in hot_ids) == {
        ("lead.sla_warning", 0.5): 20
    }
    stale = await pool.fetchval(
        "SELECT count(*) FROM leads.timers WHERE site_id = $1 AND cancel_reason = 'stale'", site
    )
    assert stale == 40
    pending = await pool.fetchval(
        "SELECT count(*) FROM leads.timers WHERE site_id = $1 AND fired_at IS NULL"
        " AND cancelled_at IS NULL",
        site,
    )
    assert pending == 40  # the warm leads' 80 % warnings and breaches, still to come


async def test_a_timer_due_before_the_next_look_wakes_the_scheduler(make_pool):
    """The scheduler sleeps until its next look (the poll: 5 s of clock time, nothing being
    due); a timer committed meanwhile, due in 1 s, wakes it (NOTIFY), so it fires at 1 s."""
    pool = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    await pool.execute(
        """INSERT INTO leads.sla_policies (site_id, team, validation, first_contact_s,
               warn_at_percent) VALUES ($1, 'sales', 'ready_to_buy', 1, '{}')""",
        site,
    )
    scheduler = scheduler_on(pool, clock, "leads-a")
    await scheduler.start()
    try:
        await settle(clock, scheduler)  # asleep until T0 + 5 s
        await _plan(pool, await new_lead(pool, site), T0)
        clock.advance(timedelta(seconds=1))
        async with asyncio.timeout(60):  # a bound for a broken scheduler, not a speed target
            while not await lead_events(pool, site, "lead.sla_breached"):
                await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    assert clock.now() == T0 + timedelta(seconds=1)


async def test_a_breach_and_its_reassignment_are_queued_for_the_sites_webhooks(make_pool):
    """The breach (published by the scheduler, which numbers its events itself) and the
    hand-over (a unit of the lead's site on the scheduler's transaction, whose stores hold
    back webhook deliveries and event numbers) both reach the subscribed endpoint."""
    pool = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    await add_team(pool, site, "sales", "boss")
    await pool.execute(
        """INSERT INTO leads.sla_policies (site_id, team, validation, first_contact_s,
               warn_at_percent, reassign_on_breach, max_reassignments)
           VALUES ($1, 'sales', 'qualified', 600, '{}', true, 1)""",
        site,
    )
    async with uow_of(pool)(site) as tx:
        await tx.store(WebhookStore).add_endpoint(
            site_id=site,
            endpoint_id=uuid.uuid4(),
            url="https://crm.example.com/hook",
            description="",
            event_types=("lead.sla_breached", "lead.reassigned"),
            secret="whsec_" + "A" * 43 + "=",
            now=T0,
        )
    lead = await new_lead(pool, site, validation="qualified")

    async def hand_to_bob(tx: UnitOfWork, *, lead: Lead, reason, now: datetime) -> Lead:
        """Stands in for assignment.service.reassign: ann -> bob, published as it does."""
        await tx.conn.execute(
            "UPDATE leads.leads SET assignee = 'bob' WHERE lead_id = $1", lead.lead_id
        )
        after = await tx.store(LeadStore).get(lead.site_id, lead.lead_id)
        assert after is not None
        for _ in range(2):  # the second number is counted in the unit, written at its end
            await emit(
                tx,
                LeadReassigned,
                after,
                now=now,
                team="sales",
                from_agent_id=lead.assignee,
                to_agent_id="bob",
                reason=reason,
            )
        return after

    assert await _plan(pool, lead, T0) is not None
    scheduler = scheduler_on(pool, clock, "leads-a", reassign=hand_to_bob)
    await scheduler.start()
    try:
        clock.advance(timedelta(minutes=10))
        await settle(clock, scheduler)
    finally:
        await scheduler.stop()

    reassigned = await lead_events(pool, site, "lead.reassigned")
    assert len(reassigned) == 2
    queued = await pool.fetch(
        "SELECT event_type FROM leads.webhook_deliveries WHERE site_id = $1", site
    )
    assert sorted(row["event_type"] for row in queued) == [
        "lead.reassigned",
        "lead.reassigned",
        "lead.sla_breached",
    ]
    last_seq = await pool.fetchval(
        "SELECT event_seq FROM leads.leads WHERE lead_id = $1", lead.lead_id
    )
    assert last_seq == max(event.payload.seq for event in reassigned)


async def test_the_scheduler_fires_again_after_its_listening_connection_was_lost(make_pool):
    """Postgres restarted (or the link to it cut) under a running scheduler: its LISTEN
    connection is gone, and the pool has taken it back. The scheduler listens again on a new
    one and fires what comes due (the chaos battery saw both instances stop firing for good
    after a Postgres restart: every pass failed asking the released connection is_closed())."""
    pool = await make_pool()
    clock = ManualClock(T0)
    site = unique("site")
    await pool.execute(
        """INSERT INTO leads.sla_policies (site_id, team, validation, first_contact_s,
               warn_at_percent) VALUES ($1, 'sales', 'ready_to_buy', 1, '{}')""",
        site,
    )
    scheduler = scheduler_on(pool, clock, "leads-a")
    await scheduler.start()
    try:
        await settle(clock, scheduler)
        listener = scheduler._listener
        assert listener is not None
        pid = listener.get_server_pid()
        await pool.execute("SELECT pg_terminate_backend($1)", pid)
        await _plan(pool, await new_lead(pool, site), T0)
        clock.advance(timedelta(seconds=5))  # the next look, whether or not NOTIFY is heard
        async with asyncio.timeout(60):  # a bound for a broken scheduler, not a speed target
            while not await lead_events(pool, site, "lead.sla_breached"):
                await asyncio.sleep(0.05)
                scheduler.wake()
    finally:
        await scheduler.stop()
    assert scheduler._listener is None
