"""What the assignment tests share: leads as capture leaves them (new, no team), agents'
presence as the follower stores it, and the events a lead's units of work published."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import orjson
from beckon_contracts.presence import AgentPresence
from leads.assignment.presence import PresenceStore
from leads.domain.routing import LeadFacts
from leads.lead import Lead, LeadStore
from leads.uow import UnitOfWorkFactory


def factory(pool: asyncpg.Pool) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(pool, on_commit=lambda: None)


async def new_lead(
    pool: asyncpg.Pool, site: str, *, created_at: datetime, validation: str = "qualified"
) -> uuid.UUID:
    """A captured lead that routing has not seen yet."""
    lead_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, created_at,
                                    updated_at)
           VALUES ($1, $2, $3, $4, $5, $5)""",
        lead_id,
        site,
        f"v-{lead_id.hex[:12]}",
        validation,
        created_at,
    )
    return lead_id


async def set_presence(
    pool: asyncpg.Pool,
    site: str,
    team: str,
    agents: dict[str, str],
    *,
    as_of: datetime,
) -> None:
    """The team's presence (agent → online/away/offline), as the follower stores it."""
    members = [
        AgentPresence(agent_id=agent_id, name=agent_id.title(), status=status, open_chats=0)  # type: ignore[arg-type]
        for agent_id, status in agents.items()
    ]
    async with factory(pool)(site) as tx:
        await tx.store(PresenceStore).apply(site, team, members, as_of=as_of)


async def set_cap(pool: asyncpg.Pool, site: str, agent_id: str, cap: int) -> None:
    await pool.execute(
        """INSERT INTO leads.agents (site_id, agent_id, max_open_leads) VALUES ($1, $2, $3)
           ON CONFLICT (site_id, agent_id)
           DO UPDATE SET max_open_leads = EXCLUDED.max_open_leads""",
        site,
        agent_id,
        cap,
    )


async def get_lead(pool: asyncpg.Pool, site: str, lead_id: uuid.UUID) -> Lead:
    async with factory(pool).read(site) as tx:
        lead = await tx.store(LeadStore).get(site, lead_id)
    assert lead is not None
    return lead


async def route(
    uow: UnitOfWorkFactory, site: str, lead_id: uuid.UUID, *, now: datetime, **facts: object
) -> Lead:
    """Route and assign a lead as capture does, in its own unit of work."""
    from leads.assignment import service

    async with uow(site) as tx:
        lead = await tx.store(LeadStore).lock(site, lead_id)
        assert lead is not None
        return await service.route_and_assign(
            tx,
            lead=lead,
            facts=LeadFacts.model_validate({"validation": lead.validation, **facts}),
            now=now,
        )


async def events(pool: asyncpg.Pool, lead_id: uuid.UUID) -> list[dict[str, object]]:
    """The lead's `leads.events` records in the outbox, in order."""
    rows = await pool.fetch(
        "SELECT value FROM leads.outbox WHERE key = $1 ORDER BY id", str(lead_id).encode()
    )
    return [orjson.loads(row["value"]) for row in rows]


async def queue(pool: asyncpg.Pool, site: str, team: str) -> list[uuid.UUID]:
    """The team's queue in arrival order."""
    rows = await pool.fetch(
        """SELECT lead_id FROM leads.leads
           WHERE site_id = $1 AND team = $2 AND assignee IS NULL AND queued_at IS NOT NULL
             AND merged_into IS NULL AND status IN ('new', 'contacted', 'qualified')
           ORDER BY queued_at, lead_id""",
        site,
        team,
    )
    return [row["lead_id"] for row in rows]


async def holders(pool: asyncpg.Pool, site: str) -> dict[str, int]:
    """Open leads per agent on the site."""
    rows = await pool.fetch(
        """SELECT assignee, count(*) AS n FROM leads.leads
           WHERE site_id = $1 AND assignee IS NOT NULL
             AND status IN ('assigned', 'contacted', 'qualified')
           GROUP BY assignee""",
        site,
    )
    return {row["assignee"]: row["n"] for row in rows}
