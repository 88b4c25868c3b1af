"""Versioned SQL migrations for the `chat` schema, applied in order, once, under a lock.

A version may also have a Python step (`BEFORE`), run in the same transaction right before
its SQL, for what Postgres cannot compute (e.g. Unicode case folding).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib import resources

import asyncpg

from chat.agents.domain import normalise_email

log = logging.getLogger("chat.migrations")
MIGRATION_LOCK = 0x0BEC_5C4E


async def _normalise_agent_emails(conn: asyncpg.Connection) -> None:
    """Every agent's address in its one normal form (NFKC + case folding: Postgres has no
    case folding before 18); refused, naming both, when two would become one."""
    rows = await conn.fetch("SELECT agent_id, email FROM chat.agents ORDER BY agent_id")
    owners: dict[str, str] = {}
    for row in rows:
        email = normalise_email(row["email"])
        if email in owners:
            raise RuntimeError(
                f"agents {owners[email]!r} and {row['agent_id']!r} have the same e-mail address "
                f"once normalised ({email!r}): change one of them, then migrate again"
            )
        owners[email] = row["agent_id"]
    for row in rows:
        email = normalise_email(row["email"])
        if email != row["email"]:
            await conn.execute(
                "UPDATE chat.agents SET email = $2 WHERE agent_id = $1", row["agent_id"], email
            )


BEFORE: dict[str, Callable[[asyncpg.Connection], Awaitable[None]]] = {
    "0011_sessions_and_emails": _normalise_agent_emails,
}


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
            if version in BEFORE:
                await BEFORE[version](conn)
            await conn.execute(sql)
            await conn.execute("INSERT INTO chat.schema_migrations (version) VALUES ($1)", version)
            applied_now.append(version)
    return applied_now
