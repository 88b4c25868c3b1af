"""Test support for the SLA slice: a fresh migrated database per test (the scheduler sees every
site's timers, so tests must not share one), leads inserted as rows, the SLA events in the
outbox, and schedulers on a hand-driven clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import asyncpg
import pytest
from beckon_contracts.leads import parse_lead_event
from leads.adapters import migrations
from leads.lead import Lead, LeadStore
from leads.sla.scheduler import ManualClock, SlaScheduler
from leads.uow import UnitOfWorkFactory

SETTLE_TIMEOUT_S = 60.0  # a bound for a broken scheduler, not a speed requirement

MakePool = Callable[[], Awaitable[asyncpg.Pool]]


@pytest.fixture(name="sla_database")
async def sla_database_fixture(empty_database) -> str:
    """A new database with the `leads` schema, for this test alone."""
    url = await empty_database()
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    return url


@pytest.fixture(name="make_pool")
async def make_pool_fixture(sla_database: str) -> AsyncIterator[MakePool]:
    """`await make_pool()`: another pool on the test's database (one per "instance")."""
    pools: list[asyncpg.Pool] = []

    async def make() -> asyncpg.Pool:
        pool = await asyncpg.create_pool(sla_database, min_size=1, max_size=4)
        pools.append(pool)
        return pool

    try:
        yield make
    finally:
        for pool in pools:
            await pool.close()


def uow_of(pool: asyncpg.Pool) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(pool, on_commit=lambda: None)


async def new_lead(
    pool: asyncpg.Pool,
    site: str,
    *,
    team: str | None = "sales",
    assignee: str | None = "ann",
    validation: str = "ready_to_buy",
    status: str | None = None,
) -> Lead:
    lead_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, status, validation, team,
                                    assignee)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        lead_id,
        site,
        f"v-{lead_id.hex[:8]}",
        status or ("assigned" if assignee else "new"),
        validation,
        team,
        assignee,
    )
    async with pool.acquire() as conn:
        lead = await LeadStore(conn).get(site, lead_id)
    assert lead is not None
    return lead


async def add_team(pool: asyncpg.Pool, site: str, team: str, lead_agent: str | None) -> None:
    await pool.execute(
        "INSERT INTO leads.teams (site_id, team, lead_agent_id) VALUES ($1, $2, $3)",
        site,
        team,
        lead_agent,
    )


async def lead_events(pool: asyncpg.Pool, site: str, *types: str) -> list:
    """The site's `leads.events` in the outbox (of these types), in order."""
    rows = await pool.fetch(
        "SELECT value FROM leads.outbox WHERE topic = 'leads.events' ORDER BY id"
    )
    events = [parse_lead_event(row["value"]) for row in rows]
    return [e for e in events if e.site_id == site and (not types or e.type in types)]


async def timers_of(pool: asyncpg.Pool, lead_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM leads.timers WHERE lead_id = $1 ORDER BY deadline_at, at_percent", lead_id
    )


async def settle(clock: ManualClock, *schedulers: SlaScheduler) -> None:
    """Wait until every scheduler has looked at the clock's current time and found nothing
    more to fire."""
    at = clock.now()
    async with asyncio.timeout(SETTLE_TIMEOUT_S):
        await asyncio.gather(*(scheduler.settled(at=at) for scheduler in schedulers))


def scheduler_on(
    pool: asyncpg.Pool, clock: ManualClock, name: str, **options: object
) -> SlaScheduler:
    return SlaScheduler(uow_of(pool), instance=name, clock=clock, poll_s=5.0, **options)  # type: ignore[arg-type]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)
