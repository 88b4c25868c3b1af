"""Which agent of a team gets a lead, and in what order waiting leads are handed out.

Only agents who can take a lead now are candidates: online (from `agents.presence`), not
deactivated, and below their open-lead cap. Among them the one with the fewest open leads
wins; on a tie, the one whose last assignment is longest ago (never beats any time), then
the smaller agent id, so every instance picks the same agent from the same facts. When
nobody can take the lead, it waits in the team's queue; the queue is drained in arrival
order whenever an agent frees up (comes online, closes a lead, gets a higher cap).

A new lead joins the tail of its team's queue and the queue is then drained, so it never
jumps ahead of leads already waiting: `drain(queue + [new], ...)`; with an empty queue that
is `choose_agent`. The caller makes the read-decide-write race-free (one writer per team
or a lock on the team's row); this module only decides, from the loads it is given.
Open leads are counted across all of an agent's teams: the cap is per agent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from beckon_contracts.presence import AgentPresence, AgentStatus

DEFAULT_OPEN_LEAD_CAP = 10  # an agent's open leads when the admin set no cap of their own

Availability = Literal["available", "at_cap", "away", "offline", "deactivated"]


@dataclass(frozen=True, slots=True)
class AgentLoad:
    """One agent of the team as assignment sees them: presence, open leads and cap."""

    agent_id: str
    status: AgentStatus
    open_leads: int
    cap: int = DEFAULT_OPEN_LEAD_CAP
    last_assigned_at: datetime | None = None  # None: never given a lead
    active: bool = True  # False: deactivated by an admin

    def __post_init__(self) -> None:
        if self.open_leads < 0:
            raise ValueError(f"agent {self.agent_id!r}: open_leads is negative")
        if self.cap < 0:
            raise ValueError(f"agent {self.agent_id!r}: cap is negative")
        if self.last_assigned_at is not None and self.last_assigned_at.tzinfo is None:
            raise ValueError(f"agent {self.agent_id!r}: last_assigned_at has no timezone")

    @classmethod
    def of(
        cls,
        presence: AgentPresence,
        *,
        open_leads: int,
        cap: int | None = None,
        last_assigned_at: datetime | None = None,
        active: bool = True,
    ) -> AgentLoad:
        """An agent from their `agents.presence` entry and the leads store's counts."""
        return cls(
            agent_id=presence.agent_id,
            status=presence.status,
            open_leads=open_leads,
            cap=DEFAULT_OPEN_LEAD_CAP if cap is None else cap,
            last_assigned_at=last_assigned_at,
            active=active,
        )

    @property
    def availability(self) -> Availability:
        """Whether the agent can take a lead now, or why not (deactivated first)."""
        if not self.active:
            return "deactivated"
        if self.status != "online":
            return self.status
        if self.open_leads >= self.cap:
            return "at_cap"
        return "available"

    @property
    def free(self) -> int:
        """How many more leads the agent can take now."""
        return self.cap - self.open_leads if self.availability == "available" else 0


def _rank(agent: AgentLoad) -> tuple[int, int, float, str]:
    never = agent.last_assigned_at is None
    since = 0.0 if agent.last_assigned_at is None else agent.last_assigned_at.timestamp()
    return (agent.open_leads, 0 if never else 1, since, agent.agent_id)


def choose_agent(agents: Iterable[AgentLoad], *, exclude: Collection[str] = ()) -> AgentLoad | None:
    """The agent who gets the next lead, or None when nobody can take one (the lead waits).

    `exclude`: agents who may not get this lead (e.g. the one it is taken from on an SLA
    breach)."""
    eligible = [
        agent
        for agent in agents
        if agent.availability == "available" and agent.agent_id not in exclude
    ]
    return min(eligible, key=_rank, default=None)


@dataclass(frozen=True, slots=True)
class QueuedLead:
    """A lead waiting for a free agent of its team, since `queued_at`."""

    lead_id: str
    queued_at: datetime

    def __post_init__(self) -> None:
        if self.queued_at.tzinfo is None:
            raise ValueError(f"lead {self.lead_id!r}: queued_at has no timezone")


def queue_order(queue: Iterable[QueuedLead]) -> list[QueuedLead]:
    """Arrival order: the earliest first; the lead id breaks a tie, so it is stable."""
    return sorted(queue, key=lambda lead: (lead.queued_at.timestamp(), lead.lead_id))


@dataclass(frozen=True, slots=True)
class Assignment:
    lead_id: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class Drained:
    """What a drain hands out (in order), the leads that still wait (in order) and the
    agents' loads after it."""

    assignments: tuple[Assignment, ...]
    waiting: tuple[QueuedLead, ...]
    agents: tuple[AgentLoad, ...]


def drain(queue: Iterable[QueuedLead], agents: Sequence[AgentLoad], *, now: datetime) -> Drained:
    """Hand the waiting leads out in arrival order, each to `choose_agent` of the loads as
    they are after the previous ones, until nobody is free; the rest keep waiting in order.

    Every lead of a team's queue fits every agent of the team, so the head of the queue
    is never passed over: the leads handed out are always the queue's oldest.
    """
    loads = {agent.agent_id: agent for agent in agents}
    ordered = queue_order(queue)
    assignments: list[Assignment] = []
    for position, lead in enumerate(ordered):
        agent = choose_agent(loads.values())
        if agent is None:
            return Drained(tuple(assignments), tuple(ordered[position:]), tuple(loads.values()))
        loads[agent.agent_id] = replace(
            agent, open_leads=agent.open_leads + 1, last_assigned_at=now
        )
        assignments.append(Assignment(lead.lead_id, agent.agent_id))
    return Drained(tuple(assignments), (), tuple(loads.values()))


def capacity(agents: Iterable[AgentLoad]) -> int:
    """How many leads the team can take now (the sum of its agents' free slots)."""
    return sum(agent.free for agent in agents)
