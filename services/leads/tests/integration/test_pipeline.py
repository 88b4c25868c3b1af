"""The slices together, on a real Postgres, with no fakes: a lead marked in a chat is captured,
routed, assigned to an online agent with its SLA timers; the breach escalates to the team lead
and hands the lead to the other agent; the contact stops the timers (nothing fires after it);
an order by the visitor wins the lead with its value."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from assign_testing import set_presence
from beckon_contracts.leads import parse_lead_event
from capture_testing import T0, lead_marked, order_completed, record
from leads import changes
from leads.capture.consumer import Backoff, CaptureHandler, handle_until_done
from leads.capture.visitors import VisitorStates
from leads.domain import lifecycle
from leads.lead import LeadStore
from leads.sla.scheduler import ManualClock
from leads.uow import UnitOfWorkFactory
from leads_testing import unique
from sla_testing import add_team, scheduler_on, settle

pytestmark = pytest.mark.integration
FAST = Backoff(initial_s=0.01, max_s=0.2, max_attempts=3)


async def _events(pool, site: str) -> list:
    rows = await pool.fetch(
        "SELECT value FROM leads.outbox WHERE topic = 'leads.events' ORDER BY id"
    )
    return [e for e in (parse_lead_event(r["value"]) for r in rows) if e.site_id == site]


async def test_a_lead_from_mark_to_breach_contact_and_order(leads_pool):
    pool = leads_pool
    site = unique("site")
    uow = UnitOfWorkFactory(pool, on_commit=lambda: None)
    await add_team(pool, site, "sales", "boss")
    await set_presence(pool, site, "sales", {"ann": "online", "bob": "online"}, as_of=T0)
    await pool.execute(
        """INSERT INTO leads.sla_policies (site_id, team, validation, first_contact_s,
               warn_at_percent, reassign_on_breach, business_hours_only)
           VALUES ($1, 'sales', 'ready_to_buy', 60, '{}', true, false)""",
        site,
    )
    handler = CaptureHandler(uow, VisitorStates(100), clock=lambda: T0)
    mark = lead_marked(site, "v-1", email="Buyer@Example.com", validation="ready_to_buy")
    assert await handle_until_done(handler, record(mark), backoff=FAST) == "done"

    events = await _events(pool, site)
    assert [e.type for e in events] == ["lead.created", "lead.routed", "lead.assigned"]
    assigned = events[-1].payload
    first = assigned.agent_id
    assert first in ("ann", "bob")
    assert assigned.first_contact_due_at == T0 + timedelta(seconds=60)
    lead_id = events[0].lead_id

    # the breach: escalated to the team lead, handed to the other agent, a new deadline
    clock = ManualClock(T0 + timedelta(seconds=61))
    scheduler = scheduler_on(pool, clock, unique("sched"))
    await scheduler.start()
    try:
        await settle(clock, scheduler)
        after_breach = [e.type for e in await _events(pool, site)][3:]
        assert after_breach == ["lead.sla_breached", "lead.escalated", "lead.reassigned"]
        escalated, reassigned = (await _events(pool, site))[4:6]
        assert escalated.payload.escalated_to == ["boss"]
        other = "bob" if first == "ann" else "ann"
        assert (reassigned.payload.from_agent_id, reassigned.payload.to_agent_id) == (first, other)

        # the new holder calls: the timers stop, and nothing fires however late it gets
        async with uow(site) as tx:
            lead = await tx.store(LeadStore).lock(site, lead_id)
            assert lead is not None
            assert lead.assignee == other
            await changes.apply_change(
                tx, lead=lead, change=lifecycle.contact(other), now=clock.now(), channel="phone"
            )
        pending = await pool.fetchval(
            """SELECT count(*) FROM leads.timers WHERE lead_id = $1
               AND fired_at IS NULL AND cancelled_at IS NULL""",
            lead_id,
        )
        assert pending == 0
        clock.advance(timedelta(days=2))
        await settle(clock, scheduler)
    finally:
        await scheduler.stop()
    types = [e.type for e in await _events(pool, site)]
    assert types[6:] == ["lead.contacted"]

    # an order by the visitor wins the lead with its value
    order = order_completed(site, "v-1", value="129.90")
    assert await handle_until_done(handler, record(order), backoff=FAST) == "done"
    won = (await _events(pool, site))[-1]
    assert won.type == "lead.won"
    assert (won.payload.value, won.payload.currency) == (Decimal("129.90"), "EUR")
    row = await pool.fetchrow(
        "SELECT status, order_value FROM leads.leads WHERE lead_id = $1", lead_id
    )
    assert (row["status"], row["order_value"]) == ("won", Decimal("129.90"))
    seqs = [e.payload.seq for e in await _events(pool, site)]
    assert seqs == list(range(1, len(seqs) + 1))
