"""What the `leads` schema itself guarantees, on a real Postgres: one open lead per site and
person (by e-mail, phone or visitor) while closed and merged ones do not block, and indexes
that the service's hot queries can use."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from leads_testing import unique

pytestmark = pytest.mark.integration

INSERT = """INSERT INTO leads.leads
    (lead_id, site_id, visitor_id, validation, status, email_key, phone_key, assignee,
     lost_reason, closed_at)
    VALUES ($1, $2, $3, 'qualified', $4, $5, $6, $7, $8,
            CASE WHEN $4 IN ('won', 'lost', 'recycled') THEN now() END)"""


async def _lead(
    conn: asyncpg.Connection,
    site: str,
    *,
    visitor: str | None = None,
    status: str = "new",
    email: str | None = None,
    phone: str | None = None,
) -> uuid.UUID:
    lead_id = uuid.uuid4()
    await conn.execute(
        INSERT,
        lead_id,
        site,
        visitor or unique("v"),
        status,
        email,
        phone,
        "agent-1" if status in ("assigned", "contacted", "qualified") else None,
        "no_budget" if status == "lost" else None,
    )
    return lead_id


async def test_a_second_open_lead_for_the_same_e_mail_is_refused(leads_pool):
    site = unique("site")
    async with leads_pool.acquire() as conn:
        await _lead(conn, site, email="ann@example.com")
        with pytest.raises(asyncpg.UniqueViolationError) as refused:
            await _lead(conn, site, status="contacted", email="ann@example.com")
        assert refused.value.constraint_name == "leads_one_open_per_email"
        # another site's lead for the same person is its own
        await _lead(conn, unique("site"), email="ann@example.com")


async def test_a_second_open_lead_for_the_same_phone_is_refused(leads_pool):
    site = unique("site")
    async with leads_pool.acquire() as conn:
        await _lead(conn, site, phone="+358401234567")
        with pytest.raises(asyncpg.UniqueViolationError) as refused:
            await _lead(conn, site, email="other@example.com", phone="+358401234567")
        assert refused.value.constraint_name == "leads_one_open_per_phone"


async def test_a_second_open_lead_for_the_same_visitor_is_refused(leads_pool):
    site = unique("site")
    async with leads_pool.acquire() as conn:
        await _lead(conn, site, visitor="v-1", email="a@example.com")
        with pytest.raises(asyncpg.UniqueViolationError) as refused:
            await _lead(conn, site, visitor="v-1", email="b@example.com")
        assert refused.value.constraint_name == "leads_one_open_per_visitor"


@pytest.mark.parametrize("closed", ["won", "lost", "recycled"])
async def test_a_closed_lead_does_not_block_a_new_one_for_the_person(leads_pool, closed):
    site = unique("site")
    async with leads_pool.acquire() as conn:
        await _lead(
            conn, site, visitor="v-1", status=closed, email="ann@example.com", phone="+3584011"
        )
        await _lead(conn, site, visitor="v-1", email="ann@example.com", phone="+3584011")
        open_ = await conn.fetchval(
            "SELECT count(*) FROM leads.leads WHERE site_id = $1 AND status = 'new'", site
        )
        assert open_ == 1


async def test_a_merged_lead_does_not_block_the_survivor(leads_pool):
    site = unique("site")
    async with leads_pool.acquire() as conn:
        survivor = await _lead(conn, site, email="ann@example.com")
        merged = await _lead(conn, site, phone="+358401234567")
        await conn.execute(
            "UPDATE leads.leads SET merged_into = $2 WHERE lead_id = $1", merged, survivor
        )
        # with the phone now on the survivor, the merged lead no longer holds it
        await conn.execute(
            "UPDATE leads.leads SET phone_key = '+358401234567' WHERE lead_id = $1", survivor
        )
        # un-merging while the survivor is open with the same phone: the index says no
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "UPDATE leads.leads SET merged_into = NULL WHERE lead_id = $1", merged
            )


async def _waits_for_a_lock(pool: asyncpg.Pool, pid: int) -> None:
    for _ in range(600):
        waiting = await pool.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        )
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"backend {pid} never waited for a lock")


async def test_concurrent_captures_of_one_person_leave_one_open_lead(leads_pool):
    """Two transactions insert the same person at once: the second waits for the first,
    and is refused when it commits (the capture then adds its touch to the winner)."""
    site = unique("site")
    first, second = await leads_pool.acquire(), await leads_pool.acquire()
    try:
        tx1, tx2 = first.transaction(), second.transaction()
        await tx1.start()
        await tx2.start()
        await _lead(first, site, email="ann@example.com")
        blocked = asyncio.ensure_future(_lead(second, site, email="ann@example.com"))
        await _waits_for_a_lock(leads_pool, second.get_server_pid())
        assert not blocked.done()
        await tx1.commit()
        with pytest.raises(asyncpg.UniqueViolationError):
            await blocked
        await tx2.rollback()
        count = await leads_pool.fetchval(
            "SELECT count(*) FROM leads.leads WHERE site_id = $1", site
        )
        assert count == 1
    finally:
        await leads_pool.release(first)
        await leads_pool.release(second)


async def test_lost_without_a_reason_and_assigned_without_an_agent_are_refused(leads_pool):
    async with leads_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, status,
                   closed_at) VALUES ($1, 's', 'v', 'qualified', 'lost', now())""",
                uuid.uuid4(),
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, status)
                   VALUES ($1, 's', 'v', 'qualified', 'assigned')""",
                uuid.uuid4(),
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, phone_key)
                   VALUES ($1, 's', 'v', 'qualified', '0401234567')""",
                uuid.uuid4(),
            )


async def _plan(conn: asyncpg.Connection, query: str, *args: object) -> str:
    rows = await conn.fetch(f"EXPLAIN {query}", *args)
    return "\n".join(row[0] for row in rows)


async def test_due_timers_are_claimed_through_their_index(leads_pool):
    """The claim query of every instance (due first, skipping rows another one holds) can
    use the partial index on due_at, in its order (sequential scans and sorts off: the table
    is tiny here, and another partial index over pending timers would do for an unordered read)."""
    async with leads_pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_sort = off")
        plan = await _plan(
            conn,
            """SELECT timer_id FROM leads.timers
               WHERE fired_at IS NULL AND cancelled_at IS NULL AND due_at <= now()
               ORDER BY due_at, timer_id LIMIT 100 FOR UPDATE SKIP LOCKED""",
        )
        assert "timers_due" in plan


async def test_a_teams_queue_is_read_in_arrival_order_through_its_index(leads_pool):
    async with leads_pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = await _plan(
            conn,
            """SELECT lead_id FROM leads.leads
               WHERE site_id = $1 AND team = $2 AND status = 'new' AND assignee IS NULL
                 AND queued_at IS NOT NULL AND merged_into IS NULL
               ORDER BY queued_at, lead_id LIMIT 10""",
            "s",
            "sales",
        )
        assert "leads_queue" in plan
        assert "Sort" not in plan  # the index gives arrival order


async def test_a_timer_is_scheduled_once_per_deadline_and_point(leads_pool):
    site = unique("site")
    insert = """INSERT INTO leads.timers (lead_id, site_id, kind, at_percent, deadline_at,
                    due_at)
                VALUES ($1, $2, $3, $4, $5::timestamptz, $5::timestamptz - interval '1 minute')"""
    async with leads_pool.acquire() as conn:
        lead = await _lead(conn, site)
        deadline = await conn.fetchval("SELECT now() + interval '5 minutes'")
        await conn.execute(insert, lead, site, "warning", 50, deadline)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(insert, lead, site, "warning", 50, deadline)
        with pytest.raises(asyncpg.CheckViolationError):  # a breach is at 100 %
            await conn.execute(insert, lead, site, "breach", 80, deadline)


async def test_only_an_assigned_lead_needs_its_assignee(leads_pool):
    """A contacted or qualified lead handed back to its team's queue keeps its status without
    a holder (the lifecycle's unassign); an assigned lead without one is refused."""
    site = unique("site")
    async with leads_pool.acquire() as conn:
        for status in ("contacted", "qualified"):
            await conn.execute(
                INSERT, uuid.uuid4(), site, unique("v"), status, None, None, None, None
            )
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await conn.execute(
                INSERT, uuid.uuid4(), site, unique("v"), "assigned", None, None, None, None
            )
        assert refused.value.constraint_name == "leads_assigned_has_an_assignee"
