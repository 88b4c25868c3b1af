"""An agent's open leads as the row keeps them (migration 0013's trigger): equal to a count of
the leads after every kind of change a writer makes, and right after the migration on a
database that already held leads."""

from __future__ import annotations

import asyncpg
import pytest
from beckon_messaging import migrations as shared
from leads.adapters import migrations
from leads.adapters.migrations import migration_files
from leads.assignment.store import AssignmentStore

pytestmark = pytest.mark.integration
SITE = "count-site"
AGENTS = ("ann", "bob", "cay")


async def counted(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT assignee, count(*) AS n FROM leads.leads
           WHERE site_id = $1 AND assignee IS NOT NULL AND merged_into IS NULL
             AND status IN ('assigned', 'contacted', 'qualified')
           GROUP BY assignee""",
        SITE,
    )
    return {agent: 0 for agent in AGENTS} | {row["assignee"]: row["n"] for row in rows}


async def kept(conn: asyncpg.Connection) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT agent_id, open_leads FROM leads.agents WHERE site_id = $1", SITE
    )
    return {agent: 0 for agent in AGENTS} | {row["agent_id"]: row["open_leads"] for row in rows}


async def add(conn: asyncpg.Connection, n: int, status: str, assignee: str | None) -> list[str]:
    rows = await conn.fetch(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, team, status,
                                    assignee, assigned_at, closed_at, lost_reason)
           SELECT gen_random_uuid(), $1, 'v-' || gen_random_uuid(), 'qualified', 'sales', $2,
                  $3, CASE WHEN $3::text IS NULL THEN NULL ELSE now() END,
                  CASE WHEN $2 = 'lost' THEN now() END, CASE WHEN $2 = 'lost' THEN 'price' END
           FROM generate_series(1, $4) RETURNING lead_id""",
        SITE,
        status,
        assignee,
        n,
    )
    return [row["lead_id"] for row in rows]


async def test_the_count_on_the_agents_row_follows_every_change_of_a_lead(empty_database):
    conn = await asyncpg.connect(await empty_database())
    try:
        await migrations.migrate(conn)
        await conn.execute(
            "INSERT INTO leads.agents (site_id, agent_id) SELECT $1, unnest($2::text[])",
            SITE,
            list(AGENTS),
        )
        steps: list[tuple[str, str]] = []

        async def step(name: str, sql: str, *args: object) -> None:
            await conn.execute(sql, *args)
            steps.append((name, sql))
            assert await kept(conn) == await counted(conn), name

        ann = await add(conn, 4, "assigned", "ann")
        bob = await add(conn, 3, "contacted", "bob")
        queued = await add(conn, 5, "new", None)
        assert await kept(conn) == await counted(conn) == {"ann": 4, "bob": 3, "cay": 0}
        await step(
            "assigned from the queue",
            "UPDATE leads.leads SET status = 'assigned', assignee = 'cay' WHERE lead_id = ANY($1)",
            queued[:3],
        )
        await step(
            "qualified (still open, same holder)",
            "UPDATE leads.leads SET status = 'qualified' WHERE lead_id = $1",
            ann[0],
        )
        await step(
            "reassigned",
            "UPDATE leads.leads SET assignee = 'bob' WHERE lead_id = ANY($1)",
            ann[1:3],
        )
        await step(
            "won and lost (closed)",
            "UPDATE leads.leads SET status = CASE WHEN lead_id = $1 THEN 'won' ELSE 'lost' END, "
            "closed_at = now(), lost_reason = CASE WHEN lead_id = $1 THEN NULL ELSE 'price' END "
            "WHERE lead_id = ANY($2)",
            bob[0],
            bob[:2],
        )
        await step(
            "recycled back to open",
            "UPDATE leads.leads SET status = 'contacted', closed_at = NULL, lost_reason = NULL "
            "WHERE lead_id = $1",
            bob[1],
        )
        await step(
            "merged away, then the merge undone",
            "UPDATE leads.leads SET merged_into = $2 WHERE lead_id = $1",
            ann[3],
            ann[0],
        )
        await step(
            "unmerged", "UPDATE leads.leads SET merged_into = NULL WHERE lead_id = $1", ann[3]
        )
        await step(
            "handed back to the queue",
            "UPDATE leads.leads SET status = 'new', assignee = NULL WHERE lead_id = $1",
            queued[0],
        )
        await step("erased", "DELETE FROM leads.leads WHERE lead_id = ANY($1)", bob[2:] + ann[:1])
        await step(
            "an unrelated column changed",
            "UPDATE leads.leads SET name = 'Ann Lee' WHERE site_id = $1",
            SITE,
        )
        # what the drain reads: the kept count, under the agent's row lock
        async with conn.transaction():
            store = AssignmentStore(conn)
            await conn.execute(
                """INSERT INTO leads.presence (site_id, team, agent_id, name, status, as_of)
                   SELECT $1, 'sales', unnest($2::text[]), '', 'online', now()""",
                SITE,
                list(AGENTS),
            )
            loads = await store.team_loads(SITE, "sales", default_cap=10)
            assert {load.agent_id: load.open_leads for load in loads} == await counted(conn)
        assert sum((await counted(conn)).values()) > 0
    finally:
        await conn.close()


async def test_the_migration_counts_the_leads_agents_already_hold(empty_database):
    conn = await asyncpg.connect(await empty_database())
    try:
        files = migration_files()
        before = [(version, sql) for version, sql in files if version < "0013"]
        await shared.migrate(conn, schema="leads", files=before, lock_id=migrations.MIGRATION_LOCK)
        await conn.execute(
            "INSERT INTO leads.agents (site_id, agent_id) SELECT $1, unnest($2::text[])",
            SITE,
            list(AGENTS),
        )
        await add(conn, 6, "assigned", "ann")
        await add(conn, 2, "qualified", "cay")
        await add(conn, 3, "lost", "cay")
        assert await migrations.migrate(conn) == [v for v, _ in files if v >= "0013"]
        assert await kept(conn) == await counted(conn) == {"ann": 6, "bob": 0, "cay": 2}
    finally:
        await conn.close()
