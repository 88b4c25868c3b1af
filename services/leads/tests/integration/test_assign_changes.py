"""Claims, reassignments, the SLA deadline on `lead.assigned` and an admin's cap change, on
the real schema: every refusal has its code, every change its event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from assign_testing import (
    events,
    factory,
    get_lead,
    holders,
    new_lead,
    queue,
    route,
    set_cap,
    set_presence,
)
from beckon_edge.refusals import Conflict, Forbidden, Invalid, NotFound
from leads.assignment import service
from leads.domain.routing import LeadFacts
from leads.lead import LeadStore
from leads.routing import service as routing_service
from leads_testing import unique

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def _site(pool, agents: dict[str, str], cap: int = 2) -> str:
    site = unique("site")
    await set_presence(pool, site, "sales", agents, as_of=T0)
    for agent in agents:
        await set_cap(pool, site, agent, cap)
    return site


async def _routed(pool, site: str, count: int) -> list:
    uow = factory(pool)
    found = []
    for i in range(count):
        lead_id = await new_lead(pool, site, created_at=T0 + timedelta(seconds=i))
        found.append(await route(uow, site, lead_id, now=T0 + timedelta(seconds=i)))
    return found


async def _claim(pool, site, lead, agent_id):
    async with factory(pool)(site) as tx:
        return await service.claim(tx, lead=lead, agent_id=agent_id, now=T0 + timedelta(hours=1))


async def _reassign(pool, site, lead, **values):
    async with factory(pool)(site) as tx:
        return await service.reassign(tx, lead=lead, now=T0 + timedelta(hours=1), **values)


async def test_claim_takes_a_queued_lead_but_never_above_the_cap(leads_pool):
    site = await _site(leads_pool, {"ann": "away", "bob": "offline"}, cap=1)
    first, second = await _routed(leads_pool, site, 2)
    assert first.assignee is None  # nobody online: both wait
    claimed = await _claim(leads_pool, site, second, "ann")  # an agent may pick any
    assert (claimed.status, claimed.assignee, claimed.queued_at) == ("assigned", "ann", None)
    last = (await events(leads_pool, second.lead_id))[-1]
    assert last["type"] == "lead.assigned"
    assert (last["payload"]["how"], last["payload"]["by_agent_id"]) == ("claim", "ann")

    with pytest.raises(Conflict) as refused:
        await _claim(leads_pool, site, first, "ann")
    assert refused.value.code == "at_cap"
    with pytest.raises(Conflict) as taken:  # held already
        await _claim(leads_pool, site, second, "bob")
    assert taken.value.code == "already_assigned"
    with pytest.raises(Invalid) as stranger:
        await _claim(leads_pool, site, first, "zed")
    assert stranger.value.code == "not_in_team"
    assert await holders(leads_pool, site) == {"ann": 1}
    assert await queue(leads_pool, site, "sales") == [first.lead_id]


async def test_a_deactivated_agent_cannot_claim(leads_pool):
    site = await _site(leads_pool, {"ann": "online", "bob": "online"}, cap=0)
    (lead,) = await _routed(leads_pool, site, 1)
    async with factory(leads_pool)(site) as tx:
        await service.update_agent(tx, agent_id="bob", max_open_leads=3, deactivated=True, now=T0)
    with pytest.raises(Forbidden) as refused:
        await _claim(leads_pool, site, lead, "bob")
    assert refused.value.code == "agent_deactivated"


async def test_manual_reassign_to_a_member_below_the_cap(leads_pool):
    site = await _site(leads_pool, {"ann": "online", "bob": "offline"}, cap=1)
    (lead,) = await _routed(leads_pool, site, 1)
    assert lead.assignee == "ann"
    moved = await _reassign(
        leads_pool, site, lead, reason="manual", to_agent_id="bob", by_agent_id="lea"
    )
    assert (moved.status, moved.assignee) == ("assigned", "bob")
    last = (await events(leads_pool, lead.lead_id))[-1]
    assert last["type"] == "lead.reassigned"
    payload = last["payload"]
    assert (payload["from_agent_id"], payload["to_agent_id"]) == ("ann", "bob")
    assert (payload["reason"], payload["by_agent_id"]) == ("manual", "lea")

    (other,) = await _routed(leads_pool, site, 1)  # to ann, who is free again
    assert other.assignee == "ann"
    with pytest.raises(Conflict) as full:
        await _reassign(leads_pool, site, other, reason="manual", to_agent_id="bob")
    assert full.value.code == "at_cap"
    with pytest.raises(Conflict) as same:
        await _reassign(leads_pool, site, other, reason="manual", to_agent_id="ann")
    assert same.value.code == "same_agent"


async def test_a_team_lead_hands_a_queued_lead_to_an_agent(leads_pool):
    site = await _site(leads_pool, {"ann": "offline"})
    (lead,) = await _routed(leads_pool, site, 1)
    handed = await _reassign(
        leads_pool, site, lead, reason="manual", to_agent_id="ann", by_agent_id="lea"
    )
    assert (handed.assignee, handed.queued_at) == ("ann", None)
    last = (await events(leads_pool, lead.lead_id))[-1]
    assert (last["type"], last["payload"]["how"]) == ("lead.assigned", "manual")


async def test_automatic_reassign_goes_to_the_next_free_agent_else_back_to_the_queue(
    leads_pool,
):
    site = await _site(leads_pool, {"ann": "online", "bob": "online"}, cap=1)
    first, second, third = await _routed(leads_pool, site, 3)
    assert {first.assignee, second.assignee} == {"ann", "bob"}
    assert third.assignee is None
    # bob frees up (his lead is won elsewhere): the breached lead of ann goes to him
    await leads_pool.execute(
        """UPDATE leads.leads SET status = 'won', closed_at = now()
           WHERE site_id = $1 AND assignee = 'bob'""",
        site,
    )
    ann_lead = first if first.assignee == "ann" else second
    moved = await _reassign(leads_pool, site, ann_lead, reason="sla_breached")
    assert moved.assignee == "bob"
    # now nobody but bob, the holder, is free: back to the queue, at its place by arrival
    await leads_pool.execute(
        "UPDATE leads.agents SET max_open_leads = 5 WHERE site_id = $1 AND agent_id = 'bob'",
        site,
    )
    await set_presence(
        leads_pool, site, "sales", {"ann": "offline", "bob": "online"}, as_of=T0 + timedelta(1)
    )
    back = await _reassign(leads_pool, site, moved, reason="agent_unavailable")
    assert (back.status, back.assignee) == ("new", None)
    assert back.queued_at == ann_lead.created_at
    assert await queue(leads_pool, site, "sales") == [ann_lead.lead_id, third.lead_id]
    last = (await events(leads_pool, ann_lead.lead_id))[-1]
    assert last["type"] == "lead.reassigned"
    assert (last["payload"]["from_agent_id"], last["payload"]["to_agent_id"]) == ("bob", None)
    assert last["payload"]["lead"]["status"] == "new"

    with pytest.raises(Conflict) as unheld:
        await _reassign(leads_pool, site, back, reason="sla_breached")
    assert unheld.value.code == "not_assigned"


async def test_raising_a_cap_drains_the_queue_into_the_new_room(leads_pool):
    site = await _site(leads_pool, {"ann": "online"}, cap=1)
    leads = await _routed(leads_pool, site, 4)
    assert [lead.assignee for lead in leads] == ["ann", None, None, None]
    async with factory(leads_pool)(site) as tx:
        saved, handed = await service.update_agent(
            tx, agent_id="ann", max_open_leads=3, deactivated=False, now=T0 + timedelta(hours=1)
        )
    assert saved.max_open_leads == 3
    assert [lead.lead_id for lead in handed] == [leads[1].lead_id, leads[2].lead_id]
    assert await queue(leads_pool, site, "sales") == [leads[3].lead_id]
    with pytest.raises(NotFound):
        async with factory(leads_pool)(site) as tx:
            await service.update_agent(
                tx, agent_id="nobody", max_open_leads=3, deactivated=False, now=T0
            )


async def test_the_deadline_the_sla_gives_rides_on_lead_assigned(leads_pool):
    site = await _site(leads_pool, {"ann": "online"})
    lead_id = await new_lead(leads_pool, site, created_at=T0)
    due = T0 + timedelta(minutes=5)
    seen = []

    async def start_sla(tx, *, lead, now):
        seen.append((lead.team, lead.assignee, now))
        return due

    async with factory(leads_pool)(site) as tx:
        lead = await tx.store(LeadStore).lock(site, lead_id)
        after = await service.route_and_assign(
            tx,
            lead=lead,
            facts=LeadFacts(validation="ready_to_buy"),
            now=T0,
            start_sla=start_sla,
        )
    assert seen == [("sales", None, T0)]  # started once routed, before it is assigned
    assert after.assignee == "ann"
    assigned = (await events(leads_pool, lead_id))[-1]
    assert assigned["payload"]["first_contact_due_at"] == due.isoformat().replace("+00:00", "Z")
    assert (await get_lead(leads_pool, site, lead_id)).routing_version is None


async def test_deactivating_an_agent_hands_their_leads_on_and_a_contacted_one_keeps_its_status(
    leads_pool,
):
    """ann is deactivated: her assigned lead goes to bob (free), her contacted one finds
    nobody else free and waits in the queue, still contacted, with no holder."""
    site = await _site(leads_pool, {"ann": "online", "bob": "offline"}, cap=2)
    first, second = await _routed(leads_pool, site, 2)
    assert (first.assignee, second.assignee) == ("ann", "ann")
    await leads_pool.execute(
        "UPDATE leads.leads SET status = 'contacted', first_contact_at = now() WHERE lead_id = $1",
        second.lead_id,
    )
    await set_presence(
        leads_pool, site, "sales", {"ann": "online", "bob": "online"}, as_of=T0 + timedelta(1)
    )
    await set_cap(leads_pool, site, "bob", 1)
    _, handed = await routing_service.update_agent(
        uow=factory(leads_pool),
        site_id=site,
        agent_id="ann",
        max_open_leads=None,
        deactivated=True,
        now=T0 + timedelta(hours=1),
    )
    moved = {lead.lead_id: (lead.status, lead.assignee) for lead in handed}
    assert moved == {first.lead_id: ("assigned", "bob"), second.lead_id: ("contacted", None)}
    assert await queue(leads_pool, site, "sales") == [second.lead_id]
    reasons = [
        e["payload"]["reason"]
        for lead in (first, second)
        for e in await events(leads_pool, lead.lead_id)
        if e["type"] == "lead.reassigned"
    ]
    assert reasons == ["agent_unavailable", "agent_unavailable"]
