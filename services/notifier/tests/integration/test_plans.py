"""The plans Postgres keeps for the limits' counts on a new install (asyncpg keeps each
statement prepared; a generic plan made while `notifier.emails` is empty costs every index
alike): each count still finds its rows through the recipient's or the visitor's own index
once the site has sent thousands of e-mails, instead of reading them all."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator

import asyncpg
import pytest
from notifier.emails.store import EmailStore

pytestmark = pytest.mark.integration
EMAILS = 5000


@pytest.fixture
async def new_install(notifier_database) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(notifier_database)
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        yield conn
    finally:
        await conn.close()


async def fill(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """INSERT INTO notifier.emails (email_id, idempotency_key, site_id, template, recipient,
               recipient_kind, language, visitor_id, source_event_id, context, message_id,
               status)
           SELECT gen_random_uuid(), 'k' || n, 'big', 'transcript', n || '@example.com',
                  'visitor', 'en', 'v' || n, gen_random_uuid(), '{}', '<' || n || '@x>', 'sent'
           FROM generate_series(1, $1) AS n""",
        EMAILS,
    )


def query() -> str:
    source = inspect.getsource(EmailStore.hold_facts)
    found = re.findall(r'"""(WITH to_recipient.*?)"""', source, re.DOTALL)
    assert len(found) == 1, source
    return found[0]


async def explained(conn: asyncpg.Connection, statement: str) -> str:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF) EXECUTE {statement}")
    return "\n".join(row[0] for row in rows)


def rows_removed(plan: str) -> int:
    return sum(int(line.split(":")[1]) for line in plan.splitlines() if "Rows Removed" in line)


async def test_the_limits_counts_read_only_their_own_rows_after_a_plan_made_empty(new_install):
    conn = new_install
    await conn.execute(
        f"PREPARE hold(timestamptz, text, text, text, bytea, uuid, timestamptz) AS {query()}"
    )
    args = "now() - interval '1 hour', '7@example.com', 'big', 'v7', '\\x00', NULL, now()"
    await conn.execute(f"EXPLAIN EXECUTE hold({args})")  # the plan, made on the empty table
    await fill(conn)
    plan = await explained(conn, f"hold({args})")
    assert "emails_recipient" in plan, plan
    assert "emails_visitor" in plan, plan
    assert rows_removed(plan) == 0, plan
    row = await conn.fetchrow(f"EXECUTE hold({args})")
    assert (row["suppressed"], row["to_recipient"], row["to_visitor"]) == (None, 1, 1)


async def test_the_visitors_count_is_not_planned_for_the_sites_literal_id(new_install):
    """Planned for a new site's literal id (no e-mails, say the statistics), the site's own
    index tied with the visitor's, and the bench saw the visitor's count read the site's
    hour for every e-mail: the site is a parameter the planner cannot see through."""
    conn = new_install
    await conn.execute("SET plan_cache_mode = force_custom_plan")
    await fill(conn)
    await conn.execute("ANALYZE notifier.emails")
    await conn.execute(
        f"PREPARE hold(timestamptz, text, text, text, bytea, uuid, timestamptz) AS {query()}"
    )
    plan = await explained(
        conn, "hold(now() - interval '1 hour', 'a@new.example', 'new', 'v1', '\\x00', NULL, now())"
    )
    assert "emails_visitor" in plan, plan
    assert "'new'::text) AND (created_at" not in plan, plan
