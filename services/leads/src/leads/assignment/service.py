"""Routing and assignment use cases: which team gets a lead, and which of its agents.

Every change goes through the lifecycle (`domain/lifecycle.apply`) and is published with
`events.emit` in the caller's unit of work. Race-freedom comes from the locks, always taken in
this order: the lead's row, then its team's lock (`tx.lock_team`), then the agents' rows
(`AssignmentStore`). Within the team's lock the queue and the agents' loads are read, the
domain decides (`domain/assignment`), and the result is written before the lock is let go,
so no number of instances puts an agent above their cap or reorders a queue.

A lead waits in its team's queue when nobody can take it: status unchanged (new), no
assignee, `queued_at` set (its place in arrival order).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from beckon_contracts.leads import LeadAssigned, LeadReassigned, LeadRouted
from beckon_edge.refusals import Conflict, Forbidden, Invalid, NotFound

from leads.assignment.store import AgentSettings, AssignmentStore
from leads.domain import assignment as choice
from leads.domain import lifecycle
from leads.domain.routing import LeadFacts, route
from leads.events import emit
from leads.lead import Lead, LeadStore
from leads.routing.store import RoutingStore
from leads.sla import service as sla
from leads.sla.store import SlaStore
from leads.uow import UnitOfWork

ReassignReason = Literal["sla_breached", "manual", "agent_unavailable"]
AssignHow = Literal["auto", "dequeue", "claim", "manual"]
StartSla = Callable[..., Awaitable[datetime | None]]


async def route_and_assign(
    tx: UnitOfWork,
    *,
    lead: Lead,
    facts: LeadFacts,
    now: datetime,
    start_sla: StartSla | None = None,
) -> Lead:
    """Route a new lead to its team (`lead.routed`), start its first-contact SLA
    (`sla.service.start_first_contact`), then under the team's lock give it to the team's
    freest agent (`lead.assigned`) or leave it in the team's queue. Returns the lead after.
    (Capture routes a new lead before it inserts it: `routing_for`, `routed`, `drain`.)"""
    routing = await routing_for(tx, facts)
    # it joins the tail of the queue in the same write, and the drain never lets it overtake
    # a lead that waits already
    queued = await tx.store(AssignmentStore).set_team(
        lead, team=routing.team, routing_version=routing.version, queued_at=now, now=now
    )
    due = await routed(tx, lead=queued, routing=routing, now=now, start_sla=start_sla)
    handed = await drain(tx, team=routing.team, now=now, arrived={lead.lead_id: due})
    return next((after for after in handed if after.lead_id == lead.lead_id), queued)


@dataclass(frozen=True, slots=True)
class Routing:
    """Where routing sends a lead: its team, the rule that chose it, the rules' version."""

    team: str
    rule_id: str | None
    version: int | None


async def routing_for(tx: UnitOfWork, facts: LeadFacts) -> Routing:
    """The team the site's routing rules (or its default team) give a lead with `facts`.
    Capture asks before it inserts a new lead, so the lead is written once with its team."""
    stored = await tx.store(RoutingStore).latest(tx.site_id)
    if stored is None:
        defaults = await tx.store(AssignmentStore).site_defaults(tx.site_id)
        return Routing(defaults.default_team, None, None)
    decision = route(stored.rules, facts)
    return Routing(decision.team, decision.rule_id, stored.version)


async def routed(
    tx: UnitOfWork,
    *,
    lead: Lead,
    routing: Routing,
    now: datetime,
    start_sla: StartSla | None = None,
    fresh: bool = False,
) -> datetime | None:
    """What follows routing a lead, now in its team's queue: `lead.routed` and its
    first-contact SLA (`sla.service.start_first_contact`; `fresh`: the lead was inserted in
    this unit). Returns the SLA's deadline."""
    await emit(tx, LeadRouted, lead, now=now, team=routing.team, routing_rule_id=routing.rule_id)
    if start_sla is not None:
        return await start_sla(tx, lead=lead, now=now)
    # looked up at the call: sla.service imports this module (breach reassignment)
    return await sla.start_first_contact(tx, lead=lead, now=now, fresh=fresh)


async def reassign(
    tx: UnitOfWork,
    *,
    lead: Lead,
    reason: ReassignReason,
    now: datetime,
    to_agent_id: str | None = None,
    by_agent_id: str | None = None,
) -> Lead:
    """Hand a held lead to `to_agent_id` (manual) or the team's next free agent other than its
    holder; with nobody free it goes back to the queue (`lead.reassigned`). A queued lead given
    to `to_agent_id` is assigned to them (`lead.assigned`, how=manual)."""
    current = await _locked(tx, lead)
    team = _team_of(current)
    holder = current.assignee
    if holder is None and to_agent_id is not None:
        return await _assign_one(tx, current, to_agent_id, how="manual", by=by_agent_id, now=now)
    state = current.lifecycle_state
    if to_agent_id is None:
        lifecycle.apply(state, lifecycle.unassign())  # the refusal of an unheld or closed lead
    else:
        lifecycle.apply(state, lifecycle.reassign(to_agent_id))
    await tx.lock_team(team)
    store = tx.store(AssignmentStore)
    defaults = await store.site_defaults(current.site_id)
    if to_agent_id is not None:
        agent: choice.AgentLoad | None = await _member_who_can_take(
            store, current, to_agent_id, default_cap=defaults.default_cap, field="to_agent_id"
        )
    else:
        loads = await store.team_loads(current.site_id, team, default_cap=defaults.default_cap)
        agent = choice.choose_agent(loads, exclude={holder} if holder else ())
    if agent is not None:
        transition = lifecycle.apply(state, lifecycle.reassign(agent.agent_id))
    else:
        transition = lifecycle.apply(state, lifecycle.unassign())
    after = await store.place(
        current,
        status=transition.after.status,
        assignee=transition.after.agent_id,
        # back in the queue at its place by arrival: it waited longer than newer leads
        queued_at=None if agent else current.created_at,
        now=now,
    )
    if agent is not None:
        await store.assigned(current.site_id, [agent.agent_id], now=now)
    await emit(
        tx,
        LeadReassigned,
        after,
        now=now,
        team=team,
        from_agent_id=holder,
        to_agent_id=transition.after.agent_id,
        reason=reason,
        by_agent_id=by_agent_id,
        first_contact_due_at=await store.first_contact_due(current.site_id, current.lead_id),
    )
    return after


async def claim(tx: UnitOfWork, *, lead: Lead, agent_id: str, now: datetime) -> Lead:
    """An agent of the lead's team takes a queued lead (`lead.assigned`, how=claim); never
    above their cap (Conflict `at_cap`)."""
    current = await _locked(tx, lead)
    return await _assign_one(tx, current, agent_id, how="claim", by=agent_id, now=now)


async def drain(
    tx: UnitOfWork,
    *,
    team: str,
    now: datetime,
    arrived: dict[UUID, datetime | None] | None = None,
) -> list[Lead]:
    """Give the team's queued leads, in arrival order, to its free agents (`how=dequeue`;
    `how=auto` for the leads of `arrived`, which this unit just queued, with their SLA
    deadlines). Takes the team's lock."""
    return await _drain(tx, tx.site_id, team, now=now, arrived=arrived)


async def update_agent(
    tx: UnitOfWork,
    *,
    agent_id: str,
    max_open_leads: int | None,
    deactivated: bool,
    now: datetime,
) -> tuple[AgentSettings, list[Lead]]:
    """An admin sets an agent's open-lead cap (None: the site's default) and deactivation;
    a higher cap or a reactivation drains the agent's teams' queues at once."""
    store = tx.store(AssignmentStore)
    if not await store.known_agent(tx.site_id, agent_id):
        raise NotFound("agent_not_found", f"no agent {agent_id!r} on this site")
    teams = await store.agent_teams(tx.site_id, agent_id)
    await tx.lock_team(*teams)  # before the agent's row: the order every assignment takes
    saved = await store.save_agent(
        tx.site_id, agent_id, max_open_leads=max_open_leads, deactivated=deactivated, now=now
    )
    handed: list[Lead] = []
    if not deactivated:
        for team in teams:
            handed.extend(await _drain(tx, tx.site_id, team, now=now))
    return saved, handed


# ---- the parts ----------------------------------------------------------------------------------
async def _locked(tx: UnitOfWork, lead: Lead) -> Lead:
    current = await tx.store(LeadStore).lock(lead.site_id, lead.lead_id)
    if current is None:
        raise NotFound("lead_not_found", f"no lead {lead.lead_id} on this site")
    return current


def _team_of(lead: Lead) -> str:
    if lead.team is None:
        raise Conflict("not_routed", "the lead has no team yet; it is routed when captured")
    return lead.team


async def _member_who_can_take(
    store: AssignmentStore, lead: Lead, agent_id: str, *, default_cap: int, field: str
) -> choice.AgentLoad:
    """`agent_id` as a member of the lead's team who may take one more lead (their row
    locked), or the refusal saying why not. Presence is not asked: a claim or a team lead's
    choice is a person's decision."""
    team = _team_of(lead)
    found = await store.team_loads(lead.site_id, team, default_cap=default_cap, only=[agent_id])
    if not found:
        raise Invalid(
            "not_in_team",
            f"{agent_id} is not an agent of team {team}",
            errors=[{"loc": field, "msg": f"not an agent of team {team}"}],
        )
    agent = found[0]
    if not agent.active:
        raise Forbidden("agent_deactivated", f"{agent_id} is deactivated on this site")
    if agent.open_leads >= agent.cap:
        raise Conflict(
            "at_cap",
            f"{agent_id} holds {agent.open_leads} open leads, the most they may hold"
            f" ({agent.cap}); close or hand over one first",
        )
    return agent


async def _assign_one(
    tx: UnitOfWork, lead: Lead, agent_id: str, *, how: AssignHow, by: str | None, now: datetime
) -> Lead:
    """Give an unheld lead to one named member of its team (claim, a team lead's choice)."""
    team = _team_of(lead)
    lifecycle.apply(lead.lifecycle_state, lifecycle.assign(agent_id))  # refuses a held lead
    await tx.lock_team(team)
    store = tx.store(AssignmentStore)
    defaults = await store.site_defaults(lead.site_id)
    field = "agent_id" if how == "claim" else "to_agent_id"
    agent = await _member_who_can_take(
        store, lead, agent_id, default_cap=defaults.default_cap, field=field
    )
    handed = await _give(tx, store, lead, agent.agent_id, team=team, how=how, by=by, now=now)
    await store.assigned(lead.site_id, [agent.agent_id], now=now)
    return handed


async def _give(
    tx: UnitOfWork,
    store: AssignmentStore,
    lead: Lead,
    agent_id: str,
    *,
    team: str,
    how: AssignHow,
    now: datetime,
    by: str | None = None,
    due: datetime | None = None,
    due_known: bool = False,
) -> Lead:
    transition = lifecycle.apply(lead.lifecycle_state, lifecycle.assign(agent_id))
    after = await store.place(
        lead,
        status=transition.after.status,
        assignee=transition.after.agent_id,
        queued_at=None,
        now=now,
    )
    return await _given(
        tx, store, after, agent_id, team=team, how=how, now=now, by=by, due=due, due_known=due_known
    )


async def _given(
    tx: UnitOfWork,
    store: AssignmentStore,
    after: Lead,
    agent_id: str,
    *,
    team: str,
    how: AssignHow,
    now: datetime,
    by: str | None = None,
    due: datetime | None = None,
    due_known: bool = False,
    seq: int | None = None,
) -> Lead:
    """`lead.assigned` for a lead placed with `agent_id` (`due`: its first-contact deadline,
    when the caller knows it; `seq`: its number, when the caller took it)."""
    if not due_known:
        await tx.store(SlaStore).flush()  # timers this unit holds back count too
        due = await store.first_contact_due(after.site_id, after.lead_id)
    await emit(
        tx,
        LeadAssigned,
        after,
        now=now,
        team=team,
        agent_id=agent_id,
        how=how,
        by_agent_id=by,
        first_contact_due_at=due,
        seq=seq,
    )
    return after


async def _drain(
    tx: UnitOfWork,
    site_id: str,
    team: str,
    *,
    now: datetime,
    arrived: dict[UUID, datetime | None] | None = None,
) -> list[Lead]:
    """Hand the team's queue out in arrival order while agents are free. `arrived`: the
    lead that just joined the queue (assigned `auto`, with the deadline its SLA gave)."""
    await tx.lock_team(team)
    store = tx.store(AssignmentStore)
    defaults = await store.site_defaults(site_id)
    loads = await store.team_loads(site_id, team, default_cap=defaults.default_cap)
    room = choice.capacity(loads)
    if room == 0:
        return []
    queue = await store.queue(site_id, team, limit=room)
    by_id = {str(lead.lead_id): lead for lead in queue}
    plan = choice.drain(
        [choice.QueuedLead(key, lead.queued_at) for key, lead in by_id.items() if lead.queued_at],
        loads,
        now=now,
    )
    arrived = arrived or {}
    numbers = tx.store(LeadStore)
    given = []
    for step in plan.assignments:
        lead = by_id[step.lead_id]
        transition = lifecycle.apply(lead.lifecycle_state, lifecycle.assign(step.agent_id))
        # `lead.assigned`'s number, written with the assignment (a lead of this unit has
        # it counted here; one queued before takes it from its row)
        seq = await numbers.next_seq(site_id, lead.lead_id)
        given.append((lead, transition.after.status, step.agent_id, seq))
    placed = await store.place_many(site_id, given, now=now) if given else []
    handed = []
    for after, (_, _, agent_id, seq) in zip(placed, given, strict=True):
        numbers.written(after.lead_id, seq)
        new = after.lead_id in arrived
        handed.append(
            await _given(
                tx,
                store,
                after,
                agent_id,
                team=team,
                how="auto" if new else "dequeue",
                now=now,
                due=arrived.get(after.lead_id),
                due_known=new,
                seq=seq,
            )
        )
    return handed  # place_many noted when each agent last got a lead
