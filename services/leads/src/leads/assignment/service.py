"""Routing and assignment use cases. INTERFACE STUB: the signatures other features call;
the assignment engineer replaces the bodies (and this line)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from leads.domain.routing import LeadFacts
from leads.lead import Lead
from leads.uow import UnitOfWork

ReassignReason = Literal["sla_breached", "manual", "agent_unavailable"]


async def route_and_assign(tx: UnitOfWork, *, lead: Lead, facts: LeadFacts, now: datetime) -> Lead:
    """Route a new lead to its team (`lead.routed`), start its first-contact SLA
    (`sla.service.start_first_contact`), then under the team's lock give it to the team's
    freest agent (`lead.assigned`) or put it in the team's queue. Returns the lead after."""
    return lead


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
    holder; with nobody free it goes back to the queue (`lead.reassigned`)."""
    return lead


async def claim(tx: UnitOfWork, *, lead: Lead, agent_id: str, now: datetime) -> Lead:
    """An agent of the lead's team takes a queued lead (`lead.assigned`, how=claim)."""
    return lead


async def drain(tx: UnitOfWork, *, team: str, now: datetime) -> list[Lead]:
    """Give the team's queued leads, in arrival order, to its free agents (`how=dequeue`)."""
    return []
