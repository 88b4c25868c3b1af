"""Versioned SQL migrations for the `chat` schema, applied in order, once, under a lock."""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

log = logging.getLogger("chat.migrations")
MIGRATION_LOCK = 0x0BEC_5C4E


def migration_files() -> list[tuple[str, str]]:
    """(version, SQL) of every migration shipped with the service, oldest first."""
    folder = resources.files("chat") / "migrations"
    files = sorted(
        (entry.name, entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in files]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; return the versions applied now. Safe to run concurrently."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute("CREATE SCHEMA IF NOT EXISTS chat")
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS chat.schema_migrations (
                   version text PRIMARY KEY,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row["version"] for row in await conn.fetch("SELECT version FROM chat.schema_migrations")
        }
        for version, sql in migration_files():
            if version in done:
                continue
            log.info("applying migration", extra={"version": version})
            await conn.execute(sql)
            await conn.execute("INSERT INTO chat.schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    return applied_now
