"""The queries of routing a lead to its team and handing it to an agent, on one site.

Locks, always in this order so no two units wait for each other: the team's lock
(`tx.lock_team`), then a lead's row, then the agents' rows (`leads.agents`, sorted by id).
Every use case that can put a lead on an agent locks that agent's row first and counts their
open leads after the lock is held, so an agent in two teams (two team locks) still never
goes above their cap. Reading the queue skips leads another unit holds (it is changing them;
waiting for them could deadlock with a unit that holds the lead and waits for the team).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from leads.domain.assignment import DEFAULT_OPEN_LEAD_CAP, AgentLoad
from leads.domain.lifecycle import Status
from leads.lead import LEAD_COLUMNS, Lead

OPEN_HELD = "('assigned', 'contacted', 'qualified')"  # what counts against an agent's cap
FALLBACK_TEAM = "sales"  # a site with neither routing rules nor a default team


@dataclass(frozen=True, slots=True)
class SiteDefaults:
    """What the site's row says about routing and caps (defaults when it has none)."""

    default_team: str
    default_cap: int


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """An agent's cap and deactivation as the admin set them."""

    agent_id: str
    max_open_leads: int | None
    deactivated_at: datetime | None
    last_assigned_at: datetime | None


class AssignmentStore:
    """Teams, queues and agents' loads on one connection (every query scoped to a site)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        # read once per unit: a unit's drains (one per team) all need them, nothing here
        # changes them
        self._defaults: dict[str, SiteDefaults] = {}

    async def site_defaults(self, site_id: str) -> SiteDefaults:
        found = self._defaults.get(site_id)
        if found is not None:
            return found
        row = await self.conn.fetchrow(
            "SELECT default_team, default_lead_cap FROM leads.sites WHERE site_id = $1", site_id
        )
        if row is None:
            found = SiteDefaults(FALLBACK_TEAM, DEFAULT_OPEN_LEAD_CAP)
        else:
            found = SiteDefaults(row["default_team"] or FALLBACK_TEAM, row["default_lead_cap"])
        self._defaults[site_id] = found
        return found

    async def set_team(
        self,
        lead: Lead,
        *,
        team: str,
        routing_version: int | None,
        now: datetime,
        queued_at: datetime | None = None,
    ) -> Lead:
        """Route the lead to `team` (and, with `queued_at`, put it in the team's queue)."""
        row = await self.conn.fetchrow(
            f"""UPDATE leads.leads SET team = $3, routing_version = $4, updated_at = $5,
                       queued_at = coalesce($6, queued_at)
                WHERE site_id = $1 AND lead_id = $2 RETURNING {LEAD_COLUMNS}""",  # noqa: S608
            lead.site_id,
            lead.lead_id,
            team,
            routing_version,
            now,
            queued_at,
        )
        return _found(row, lead)

    async def place(
        self,
        lead: Lead,
        *,
        status: Status,
        assignee: str | None,
        queued_at: datetime | None,
        now: datetime,
    ) -> Lead:
        """Give the lead to `assignee` (queued_at None) or put it in its team's queue."""
        row = await self.conn.fetchrow(
            f"""UPDATE leads.leads
                SET status = $3, assignee = $4, queued_at = $5, updated_at = $6,
                    assigned_at = CASE WHEN $4::text IS NULL THEN assigned_at ELSE $6 END
                WHERE site_id = $1 AND lead_id = $2 RETURNING {LEAD_COLUMNS}""",  # noqa: S608
            lead.site_id,
            lead.lead_id,
            status,
            assignee,
            queued_at,
            now,
        )
        return _found(row, lead)

    async def place_many(
        self, site_id: str, given: list[tuple[Lead, Status, str, int]], *, now: datetime
    ) -> list[Lead]:
        """`place` for many leads given to agents at once (lead, its status after, the
        agent, the `seq` of its `lead.assigned`, written on the row with the rest), and
        `assigned` for their agents, in one query; the leads after, in the order given."""
        rows = await self.conn.fetch(
            f"""WITH placed AS (
                    UPDATE leads.leads
                    SET status = g.to_status, assignee = g.agent, queued_at = NULL,
                        updated_at = $2, assigned_at = $2, event_seq = g.seq
                    FROM unnest($3::uuid[], $4::text[], $5::text[], $6::int[])
                         AS g(id, to_status, agent, seq)
                    -- the site as a parameter the planner cannot see through: planned for a
                    -- new site's literal id (no rows, say the statistics), its indexes tie
                    WHERE site_id = (SELECT $1::text) AND lead_id = g.id
                    RETURNING {LEAD_COLUMNS}),
                noted AS (
                    UPDATE leads.agents SET last_assigned_at = $2
                    WHERE site_id = $1 AND agent_id = ANY($5::text[]))
                SELECT * FROM placed""",  # noqa: S608
            site_id,
            now,
            [lead.lead_id for lead, _, _, _ in given],
            [status for _, status, _, _ in given],
            [agent for _, _, agent, _ in given],
            [seq for _, _, _, seq in given],
        )
        after = {row["lead_id"]: row for row in rows}
        return [_found(after.get(lead.lead_id), lead) for lead, _, _, _ in given]

    async def queue(self, site_id: str, team: str, *, limit: int) -> list[Lead]:
        """The team's waiting leads in arrival order, each locked (ones another unit holds
        are passed over: it is changing them)."""
        rows = await self.conn.fetch(
            f"""SELECT {LEAD_COLUMNS} FROM leads.leads
                WHERE site_id = $1 AND team = $2 AND assignee IS NULL AND queued_at IS NOT NULL
                  AND merged_into IS NULL AND status IN ('new', 'contacted', 'qualified')
                ORDER BY queued_at, lead_id LIMIT $3
                FOR UPDATE SKIP LOCKED""",  # noqa: S608
            site_id,
            team,
            limit,
        )
        return [Lead.of(row) for row in rows]

    async def team_loads(
        self, site_id: str, team: str, *, default_cap: int, only: Sequence[str] | None = None
    ) -> list[AgentLoad]:
        """The team's online, active agents (or just `only` of its members, whatever their
        presence), their rows locked, with their open leads: the count on the row (migration
        0013's trigger keeps it with every change of a lead, in the writer's transaction), read
        as the lock returns it, so with every change committed before."""
        if only is None:
            rows = await self.conn.fetch(
                """SELECT a.agent_id, a.max_open_leads, a.last_assigned_at, a.deactivated_at,
                          a.open_leads, p.status
                   FROM leads.presence p
                   JOIN leads.agents a ON a.site_id = p.site_id AND a.agent_id = p.agent_id
                   WHERE p.site_id = $1 AND p.team = $2 AND p.status = 'online'
                     AND a.deactivated_at IS NULL
                   ORDER BY a.agent_id FOR UPDATE OF a""",
                site_id,
                team,
            )
        else:
            rows = await self.conn.fetch(
                """SELECT a.agent_id, a.max_open_leads, a.last_assigned_at, a.deactivated_at,
                          a.open_leads, p.status
                   FROM leads.presence p
                   JOIN leads.agents a ON a.site_id = p.site_id AND a.agent_id = p.agent_id
                   WHERE p.site_id = $1 AND p.team = $2 AND p.agent_id = ANY($3::text[])
                   ORDER BY a.agent_id FOR UPDATE OF a""",
                site_id,
                team,
                list(only),
            )
        return [
            AgentLoad(
                agent_id=row["agent_id"],
                status=row["status"],
                open_leads=row["open_leads"],
                cap=default_cap if row["max_open_leads"] is None else row["max_open_leads"],
                last_assigned_at=row["last_assigned_at"],
                active=row["deactivated_at"] is None,
            )
            for row in rows
        ]

    async def assigned(self, site_id: str, agent_ids: Sequence[str], *, now: datetime) -> None:
        """Note when these agents last got a lead (the tie-break of equal loads)."""
        await self.conn.execute(
            """UPDATE leads.agents SET last_assigned_at = $3
               WHERE site_id = $1 AND agent_id = ANY($2::text[])""",
            site_id,
            list(agent_ids),
            now,
        )

    async def first_contact_due(self, site_id: str, lead_id: UUID) -> datetime | None:
        """The deadline of the lead's running first-contact timers (None: no SLA runs)."""
        due: datetime | None = await self.conn.fetchval(
            """SELECT max(deadline_at) FROM leads.timers
               WHERE site_id = $1 AND lead_id = $2 AND kind = 'breach'
                 AND fired_at IS NULL AND cancelled_at IS NULL""",
            site_id,
            lead_id,
        )
        return due

    async def agent_teams(self, site_id: str, agent_id: str) -> list[str]:
        """The teams presence lists the agent in."""
        rows = await self.conn.fetch(
            """SELECT team FROM leads.presence WHERE site_id = $1 AND agent_id = $2
               ORDER BY team""",
            site_id,
            agent_id,
        )
        return [row["team"] for row in rows]

    async def save_agent(
        self,
        site_id: str,
        agent_id: str,
        *,
        max_open_leads: int | None,
        deactivated: bool,
        now: datetime,
    ) -> AgentSettings:
        row = await self.conn.fetchrow(
            """INSERT INTO leads.agents (site_id, agent_id, max_open_leads, deactivated_at,
                                        updated_at)
               VALUES ($1, $2, $3, CASE WHEN $4::boolean THEN $5::timestamptz END, $5)
               ON CONFLICT (site_id, agent_id) DO UPDATE
               SET max_open_leads = EXCLUDED.max_open_leads,
                   deactivated_at = CASE WHEN $4::boolean
                       THEN coalesce(leads.agents.deactivated_at, $5::timestamptz) END,
                   updated_at = $5
               RETURNING agent_id, max_open_leads, deactivated_at, last_assigned_at""",
            site_id,
            agent_id,
            max_open_leads,
            deactivated,
            now,
        )
        return AgentSettings(**dict(row))

    async def agents(self, site_id: str) -> list[asyncpg.Record]:
        """Every agent the site's presence or admin knows: teams, presence, cap, open leads."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            f"""WITH known AS (
                    SELECT agent_id FROM leads.presence WHERE site_id = $1
                    UNION SELECT agent_id FROM leads.agents WHERE site_id = $1)
                SELECT k.agent_id,
                       coalesce(max(p.name), '') AS name,
                       coalesce(array_agg(p.team ORDER BY p.team)
                                FILTER (WHERE p.team IS NOT NULL), '{{}}') AS teams,
                       coalesce(
                           array_agg(p.team ORDER BY p.team)
                           FILTER (WHERE p.status = 'online'), '{{}}') AS online_in,
                       a.max_open_leads, a.deactivated_at,
                       (SELECT count(*) FROM leads.leads l
                        WHERE l.site_id = $1 AND l.assignee = k.agent_id
                          AND l.merged_into IS NULL AND l.status IN {OPEN_HELD}) AS open_leads
                FROM known k
                LEFT JOIN leads.presence p ON p.site_id = $1 AND p.agent_id = k.agent_id
                LEFT JOIN leads.agents a ON a.site_id = $1 AND a.agent_id = k.agent_id
                GROUP BY k.agent_id, a.max_open_leads, a.deactivated_at
                ORDER BY k.agent_id""",  # noqa: S608
            site_id,
        )
        return rows

    async def known_agent(self, site_id: str, agent_id: str) -> bool:
        """Whether the site's presence or admin has heard of this agent."""
        return bool(
            await self.conn.fetchval(
                """SELECT EXISTS (SELECT 1 FROM leads.presence
                                  WHERE site_id = $1 AND agent_id = $2)
                       OR EXISTS (SELECT 1 FROM leads.agents
                                  WHERE site_id = $1 AND agent_id = $2)""",
                site_id,
                agent_id,
            )
        )

    async def held_by(self, site_id: str, agent_id: str) -> list[UUID]:
        """The open leads the agent holds, oldest first."""
        rows = await self.conn.fetch(
            """SELECT lead_id FROM leads.leads
               WHERE site_id = $1 AND assignee = $2 AND merged_into IS NULL
                 AND status IN ('assigned', 'contacted', 'qualified')
               ORDER BY created_at, lead_id""",
            site_id,
            agent_id,
        )
        return [row["lead_id"] for row in rows]


def _found(row: asyncpg.Record | None, lead: Lead) -> Lead:
    if row is None:
        raise LookupError(f"no lead {lead.lead_id} on site {lead.site_id}")
    return Lead.of(row)
