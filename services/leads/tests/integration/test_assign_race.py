"""Race-free assignment: 100 leads routed at once by several "instances" (units of work on
separate pools) over 3 online agents with a cap of 5 never put an agent above the cap, and the
85 that nobody can take wait in the team's queue in arrival order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from assign_testing import events, factory, holders, new_lead, queue, route, set_cap, set_presence
from leads_testing import unique

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEADS = 100
CAP = 5
INSTANCES = 3


async def test_100_leads_at_once_over_3_agents_with_a_cap_of_5(leads_pool, leads_database):
    site = unique("site")
    agents = ("ann", "bob", "cy")
    await set_presence(leads_pool, site, "sales", dict.fromkeys(agents, "online"), as_of=T0)
    for agent in agents:
        await set_cap(leads_pool, site, agent, CAP)
    # arrival order: lead i arrives i milliseconds after T0 (its `now` when routed)
    lead_ids = [await new_lead(leads_pool, site, created_at=T0) for _ in range(LEADS)]
    arrival = {lead_id: T0 + timedelta(milliseconds=i) for i, lead_id in enumerate(lead_ids)}
    pools = [
        await asyncpg.create_pool(leads_database, min_size=1, max_size=8) for _ in range(INSTANCES)
    ]
    try:
        uows = [factory(pool) for pool in pools]
        routed = await asyncio.gather(
            *(
                route(uows[i % INSTANCES], site, lead_id, now=arrival[lead_id])
                for i, lead_id in enumerate(reversed(lead_ids))  # not in arrival order
            )
        )
    finally:
        for pool in pools:
            await pool.close()

    assert await holders(leads_pool, site) == dict.fromkeys(agents, CAP)
    assigned = [lead for lead in routed if lead.assignee is not None]
    assert len(assigned) == CAP * len(agents)
    assert all(lead.status == "assigned" and lead.queued_at is None for lead in assigned)
    waiting = [lead for lead in routed if lead.assignee is None]
    assert all(lead.status == "new" and lead.queued_at is not None for lead in waiting)
    # the queue holds the rest in arrival order, each at the time it arrived
    expected = sorted((lead.lead_id for lead in waiting), key=arrival.__getitem__)
    assert await queue(leads_pool, site, "sales") == expected
    assert all(lead.queued_at == arrival[lead.lead_id] for lead in waiting)

    kinds = {}
    for lead_id in lead_ids:
        published = await events(leads_pool, lead_id)
        kinds[lead_id] = [(e["type"], e["payload"].get("how")) for e in published]
        assert published[0]["payload"]["team"] == "sales"
        assert published[0]["payload"]["routing_rule_id"] is None  # no rules: the default
    assert (
        sum(k == [("lead.routed", None), ("lead.assigned", "auto")] for k in kinds.values()) == 15
    )
    assert sum(k == [("lead.routed", None)] for k in kinds.values()) == LEADS - 15


async def test_an_agent_of_two_teams_stays_within_the_cap_when_both_teams_assign_at_once(
    leads_pool, leads_database
):
    """Two teams' locks do not exclude each other: the agent's row lock keeps the cap."""
    from leads.domain.routing import parse_routing
    from leads.routing.store import RoutingStore

    site = unique("site")
    for team in ("sales", "service"):
        await set_presence(leads_pool, site, team, {"ann": "online"}, as_of=T0)
    await set_cap(leads_pool, site, "ann", 3)
    rules = parse_routing(
        {
            "default_team": "sales",
            "rules": [
                {"id": "svc", "name": "Service", "conditions": [{"tags": "svc"}], "team": "service"}
            ],
        }
    )
    async with factory(leads_pool)(site) as tx:
        await tx.store(RoutingStore).save(site, rules, by="admin", now=T0)
    lead_ids = [await new_lead(leads_pool, site, created_at=T0) for _ in range(40)]
    pools = [
        await asyncpg.create_pool(leads_database, min_size=1, max_size=8) for _ in range(INSTANCES)
    ]
    try:
        uows = [factory(pool) for pool in pools]
        routed = await asyncio.gather(
            *(
                route(uows[i % INSTANCES], site, lead_id, now=T0, tags=["svc"] if i % 2 else [])
                for i, lead_id in enumerate(lead_ids)
            )
        )
    finally:
        for pool in pools:
            await pool.close()
    assert {lead.team for lead in routed} == {"sales", "service"}
    assert await holders(leads_pool, site) == {"ann": 3}
