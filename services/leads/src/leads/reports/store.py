"""The reports' SQL: every query scoped to one site, a `[start, end)` window on the leads'
`created_at`, optionally a set of teams, and never a lead merged into another.

Percentiles are Postgres' `percentile_cont` (linear interpolation between the two nearest
ranks); uncontacted leads are NULL there and so left out of them. Each query groups by one
column and, with `GROUPING SETS`, also returns the total over all groups (`is_total`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# The dimensions a report can be grouped by, and their column (the only text put into SQL)
COLUMNS = {
    "team": "team",
    "agent": "assignee",
    "validation": "validation",
    "source": "source",
    "rule": "rule_id",
    "campaign": "campaign",
}
NO_CURRENCY = "XXX"  # ISO 4217's "no currency": a won order without one

SCOPE = """l.site_id = $1 AND l.created_at >= $2 AND l.created_at < $3
    AND l.merged_into IS NULL AND ($4::text[] IS NULL OR l.team = ANY($4::text[]))"""


@dataclass(frozen=True, slots=True)
class Scope:
    """The leads a report counts: one site's, created in `[start, end)`, of `teams` (None:
    every team, and leads without one)."""

    site_id: str
    start: datetime
    end: datetime
    teams: tuple[str, ...] | None = None

    @property
    def args(self) -> tuple[Any, ...]:
        return (
            self.site_id,
            self.start,
            self.end,
            list(self.teams) if self.teams is not None else None,
        )


def _column(by: str) -> str:
    try:
        return COLUMNS[by]
    except KeyError:
        raise ValueError(f"no report dimension {by!r}") from None


class ReportsStore:
    """Read-only queries over `leads.leads`, `leads.timers` and the names of teams/agents."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def timezone(self, site_id: str) -> str | None:
        """The site's timezone (`leads.sites`), None when the site has no settings row."""
        zone: str | None = await self.conn.fetchval(
            "SELECT timezone FROM leads.sites WHERE site_id = $1", site_id
        )
        return zone

    async def names(self, site_id: str, by: str) -> dict[str, str]:
        """Team names (`leads.teams`) or agent names (`leads.presence`); others have none."""
        if by == "team":
            query = "SELECT team AS key, name FROM leads.teams WHERE site_id = $1 AND name <> ''"
        elif by == "agent":
            query = """SELECT DISTINCT ON (agent_id) agent_id AS key, name FROM leads.presence
                       WHERE site_id = $1 AND name <> '' ORDER BY agent_id, as_of DESC"""
        else:
            return {}
        return {row["key"]: row["name"] for row in await self.conn.fetch(query, site_id)}

    async def speed(self, scope: Scope, by: str) -> list[asyncpg.Record]:
        """Per group: leads, contacted, and median / p90 seconds to first contact, from
        capture and from the (latest) assignment."""
        column = _column(by)
        query = f"""
            SELECT {column} AS key, GROUPING({column}) = 1 AS is_total,
                   count(*) AS leads, count(first_contact_at) AS contacted,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY wait_s) AS median_s,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY wait_s) AS p90_s,
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY agent_wait_s)
                       AS median_after_assignment_s,
                   percentile_cont(0.9) WITHIN GROUP (ORDER BY agent_wait_s)
                       AS p90_after_assignment_s
            FROM (
                SELECT l.{column}, l.first_contact_at,
                       CASE WHEN l.first_contact_at IS NOT NULL THEN GREATEST(0,
                           EXTRACT(EPOCH FROM l.first_contact_at - l.created_at))::float8
                       END AS wait_s,
                       -- contacted before its latest assignment (a reassignment after the
                       -- call): not the latest assignee's time, so left out
                       CASE WHEN l.first_contact_at >= l.assigned_at THEN
                           EXTRACT(EPOCH FROM l.first_contact_at - l.assigned_at)::float8
                       END AS agent_wait_s
                FROM leads.leads l WHERE {SCOPE}
            ) AS scoped
            GROUP BY GROUPING SETS (({column}), ())
            ORDER BY is_total, key NULLS LAST"""  # noqa: S608 (column from COLUMNS)
        rows: list[asyncpg.Record] = await self.conn.fetch(query, *scope.args)
        return rows

    async def sla(self, scope: Scope, by: str, *, now: datetime) -> list[asyncpg.Record]:
        """Per group: leads, those with a first-contact deadline, and how many met it,
        breached it or are pending at `now`; plus those warned.

        A breach timer is breached when it fired; met when it was cancelled (the lead was
        contacted or closed first); while live (the worker has not got to it yet), the
        lead's contact or close decides against its due time, and with neither it is
        breached once due and pending before. A lead with several deadlines (restarted after
        a breach) is breached if any was, else pending if any is, else met."""
        column = _column(by)
        query = f"""
            WITH scoped AS (
                SELECT l.lead_id, l.{column} AS key,
                       LEAST(l.first_contact_at, l.closed_at) AS stopped_at
                FROM leads.leads l WHERE {SCOPE}
            ), judged AS (
                SELECT s.lead_id, s.key,
                       count(t.timer_id) FILTER (WHERE t.kind = 'breach') AS deadlines,
                       bool_or(t.kind = 'breach' AND (t.fired_at IS NOT NULL OR (
                           t.cancelled_at IS NULL AND CASE
                               WHEN s.stopped_at IS NOT NULL THEN s.stopped_at > t.due_at
                               ELSE t.due_at <= $5 END))) AS breached,
                       bool_or(t.kind = 'breach' AND t.fired_at IS NULL
                               AND t.cancelled_at IS NULL AND s.stopped_at IS NULL
                               AND t.due_at > $5) AS pending,
                       bool_or(t.kind = 'warning' AND t.fired_at IS NOT NULL) AS warned
                FROM scoped s
                LEFT JOIN leads.timers t ON t.lead_id = s.lead_id AND t.site_id = $1
                GROUP BY s.lead_id, s.key
            )
            SELECT key, GROUPING(key) = 1 AS is_total, count(*) AS leads,
                   count(*) FILTER (WHERE deadlines > 0) AS with_sla,
                   count(*) FILTER (WHERE deadlines > 0 AND breached) AS breached,
                   count(*) FILTER (WHERE deadlines > 0 AND NOT breached AND pending)
                       AS pending,
                   count(*) FILTER (WHERE deadlines > 0 AND NOT breached AND NOT pending)
                       AS met,
                   count(*) FILTER (WHERE warned) AS warned
            FROM judged
            GROUP BY GROUPING SETS ((key), ())
            ORDER BY is_total, key NULLS LAST"""  # noqa: S608 (column from COLUMNS)
        rows: list[asyncpg.Record] = await self.conn.fetch(query, *scope.args, now)
        return rows

    async def conversion(self, scope: Scope, by: str) -> list[asyncpg.Record]:
        """Per group: leads, contacted, qualified (now, or won), won, lost, recycled."""
        column = _column(by)
        query = f"""
            SELECT {column} AS key, GROUPING({column}) = 1 AS is_total,
                   count(*) AS leads, count(first_contact_at) AS contacted,
                   count(*) FILTER (WHERE status IN ('qualified', 'won')) AS qualified,
                   count(*) FILTER (WHERE status = 'won') AS won,
                   count(*) FILTER (WHERE status = 'lost') AS lost,
                   count(*) FILTER (WHERE status = 'recycled') AS recycled
            FROM leads.leads l WHERE {SCOPE}
            GROUP BY GROUPING SETS (({column}), ())
            ORDER BY is_total, key NULLS LAST"""  # noqa: S608 (column from COLUMNS)
        rows: list[asyncpg.Record] = await self.conn.fetch(query, *scope.args)
        return rows

    async def revenue(self, scope: Scope, by: str) -> list[asyncpg.Record]:
        """Per group and currency: won leads with an order value, and those values summed
        (never across currencies)."""
        column = _column(by)
        query = f"""
            SELECT {column} AS key, GROUPING({column}) = 1 AS is_total,
                   COALESCE(currency, '{NO_CURRENCY}') AS currency,
                   count(*) AS orders, sum(order_value) AS amount
            FROM leads.leads l
            WHERE {SCOPE} AND status = 'won' AND order_value IS NOT NULL
            GROUP BY GROUPING SETS (({column}, COALESCE(currency, '{NO_CURRENCY}')),
                                    (COALESCE(currency, '{NO_CURRENCY}')))
            ORDER BY is_total, key NULLS LAST, currency"""  # noqa: S608 (column from COLUMNS)
        rows: list[asyncpg.Record] = await self.conn.fetch(query, *scope.args)
        return rows
