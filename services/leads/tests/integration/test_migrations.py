"""The `leads` schema on a real Postgres: the migrations apply once, again as a no-op, from
two connections at once, and through `python -m leads migrate` as a process."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from leads.adapters import migrations
from leads_testing import run_leads_command

pytestmark = pytest.mark.integration

TABLES = {
    "sites",
    "teams",
    "leads",
    "lead_conversations",
    "conversations",  # 0003 (capture)
    "touches",
    "merges",
    "routing_rules",
    "sla_policies",
    "timers",
    "presence",
    "agents",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
    "api_keys",
    "outbox",
    "processed_events",
    "dead_letters",
    "schema_migrations",
}


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'leads'")
    return {row["tablename"] for row in rows}


async def test_the_migrations_apply_once_and_a_second_run_changes_nothing(empty_database):
    conn = await asyncpg.connect(await empty_database())
    try:
        shipped = [version for version, _ in migrations.migration_files()]
        assert await migrations.migrate(conn) == shipped
        assert await _tables(conn) == TABLES
        recorded = await conn.fetch("SELECT version FROM leads.schema_migrations ORDER BY 1")
        assert [row["version"] for row in recorded] == shipped

        assert await migrations.migrate(conn) == []
        assert await _tables(conn) == TABLES
        assert await conn.fetchval("SELECT count(*) FROM leads.schema_migrations") == len(shipped)
    finally:
        await conn.close()


async def test_two_instances_migrating_at_once_apply_each_version_once(empty_database):
    url = await empty_database()
    first, second = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        applied = await asyncio.gather(migrations.migrate(first), migrations.migrate(second))
        shipped = [version for version, _ in migrations.migration_files()]
        assert sorted(applied, key=len) == [[], shipped]
    finally:
        await first.close()
        await second.close()


async def test_python_m_leads_migrate_migrates_then_reports_up_to_date(empty_database):
    url = await empty_database()
    shipped = [version for version, _ in migrations.migration_files()]

    out = await asyncio.to_thread(run_leads_command, url, "migrate")
    assert f"applied {len(shipped)} migration(s): {', '.join(shipped)}" in out
    again = await asyncio.to_thread(run_leads_command, url, "migrate")
    assert "applied 0 migration(s): up to date" in again

    conn = await asyncpg.connect(url)
    try:
        assert await _tables(conn) == TABLES
    finally:
        await conn.close()


async def test_the_schema_lives_beside_chat_in_one_database(empty_database):
    """Chat and leads may share a database (the dev stack): each keeps to its schema, with
    its own bookkeeping and lock."""
    from chat.adapters import migrations as chat_migrations

    conn = await asyncpg.connect(await empty_database())
    try:
        assert await chat_migrations.migrate(conn)
        assert await migrations.migrate(conn) == [v for v, _ in migrations.migration_files()]
        assert await chat_migrations.migrate(conn) == []
        chat_versions = await conn.fetch("SELECT version FROM chat.schema_migrations")
        assert {row["version"] for row in chat_versions} == {
            version for version, _ in chat_migrations.migration_files()
        }
    finally:
        await conn.close()
