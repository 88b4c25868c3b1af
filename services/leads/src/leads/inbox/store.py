"""The inbox's queries: a site's leads page by page (newest first, filtered, with each lead's
SLA state), a lead's history (touches, conversations, merges), and who leads a team. Every
query names the site."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg

from leads.lead import LEAD_COLUMNS

SlaState = Literal["none", "running", "warning", "breached"]
SLA_STATES: tuple[SlaState, ...] = ("none", "running", "warning", "breached")

_LEAD_COLUMNS = ", ".join(f"l.{column.strip()}" for column in LEAD_COLUMNS.split(","))
# A lead's first-contact clock, from its timers for the latest deadline that was not
# cancelled: breached once the deadline has passed, warning once a warning point has, while
# the lead is still waiting for its first contact (new or assigned). `$1` is now.
_WITH_SLA = f"""
    SELECT {_LEAD_COLUMNS},
           s.deadline_at AS sla_due_at,
           CASE WHEN l.status IN ('new', 'assigned') THEN s.next_due_at END AS sla_next_due_at,
           CASE WHEN l.status NOT IN ('new', 'assigned') OR s.deadline_at IS NULL THEN 'none'
                WHEN s.deadline_at <= $1 THEN 'breached'
                WHEN s.warned THEN 'warning'
                ELSE 'running' END AS sla_state
    FROM leads.leads l
    LEFT JOIN LATERAL (
        SELECT t.deadline_at,
               min(t.due_at) FILTER (WHERE t.fired_at IS NULL) AS next_due_at,
               coalesce(bool_or(t.kind = 'warning' AND t.due_at <= $1), false) AS warned
        FROM leads.timers t
        WHERE t.lead_id = l.lead_id AND t.site_id = l.site_id AND t.cancelled_at IS NULL
        GROUP BY t.deadline_at
        ORDER BY t.deadline_at DESC
        LIMIT 1
    ) s ON true"""  # noqa: S608 (column names are ours)


@dataclass(frozen=True, slots=True)
class Filters:
    """What a list or an export asks for; None: any."""

    statuses: tuple[str, ...] | None = None
    team: str | None = None
    validation: str | None = None
    source: str | None = None
    sla: SlaState | None = None


@dataclass(frozen=True, slots=True)
class Visibility:
    """Whose leads: `agent_id`'s and those of `teams` (both empty/None: the whole site)."""

    agent_id: str | None = None
    teams: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the next page starts: after this lead in newest-first order."""

    created_at: datetime
    lead_id: UUID


class InboxStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def page(
        self,
        site_id: str,
        *,
        now: datetime,
        filters: Filters,
        visibility: Visibility,
        after: Cursor | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        """Up to `limit` of the site's unmerged leads, newest first, after `after`."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            f"""SELECT * FROM ({_WITH_SLA}
                  WHERE l.site_id = $2 AND l.merged_into IS NULL
                    AND ($3::text[] IS NULL OR l.status = ANY($3::text[]))
                    AND ($4::text IS NULL OR l.team = $4)
                    AND ($5::text IS NULL OR l.validation = $5)
                    AND ($6::text IS NULL OR l.source = $6)
                    AND ($7::text IS NULL OR l.assignee = $7 OR l.team = ANY($8::text[]))
                    AND ($9::timestamptz IS NULL OR (l.created_at, l.lead_id) < ($9, $10::uuid))
                ) q
                WHERE ($11::text IS NULL OR q.sla_state = $11)
                ORDER BY q.created_at DESC, q.lead_id DESC
                LIMIT $12""",  # noqa: S608
            now,
            site_id,
            list(filters.statuses) if filters.statuses else None,
            filters.team,
            filters.validation,
            filters.source,
            visibility.agent_id,
            list(visibility.teams),
            after.created_at if after else None,
            after.lead_id if after else None,
            filters.sla,
            limit,
        )
        return rows

    async def one(self, site_id: str, lead_id: UUID, *, now: datetime) -> asyncpg.Record | None:
        """The lead with its SLA state (merged ones too)."""
        row: asyncpg.Record | None = await self.conn.fetchrow(
            f"{_WITH_SLA} WHERE l.site_id = $2 AND l.lead_id = $3",
            now,
            site_id,
            lead_id,
        )
        return row

    async def touches(self, site_id: str, lead_id: UUID) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.conn.fetch(
            """SELECT touch_id, kind, agent_id, validation, conversation_id, details, occurred_at
               FROM leads.touches WHERE site_id = $1 AND lead_id = $2
               ORDER BY occurred_at, touch_id""",
            site_id,
            lead_id,
        )
        return rows

    async def conversations(self, site_id: str, lead_id: UUID) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.conn.fetch(
            """SELECT conversation_id, added_at FROM leads.lead_conversations
               WHERE site_id = $1 AND lead_id = $2 ORDER BY added_at, conversation_id""",
            site_id,
            lead_id,
        )
        return rows

    async def merges(self, site_id: str, lead_id: UUID) -> list[asyncpg.Record]:
        """Merges this lead took part in, as survivor or as the merged one."""
        rows: list[asyncpg.Record] = await self.conn.fetch(
            """SELECT merge_id, survivor_id, merged_id, reason, merged_by, merged_at, undone_by,
                      undone_at
               FROM leads.merges WHERE site_id = $1 AND (survivor_id = $2 OR merged_id = $2)
               ORDER BY merged_at, merge_id""",
            site_id,
            lead_id,
        )
        return rows

    async def team_lead(self, site_id: str, team: str) -> str | None:
        lead: str | None = await self.conn.fetchval(
            "SELECT lead_agent_id FROM leads.teams WHERE site_id = $1 AND team = $2",
            site_id,
            team,
        )
        return lead
