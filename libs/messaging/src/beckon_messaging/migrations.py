"""Versioned SQL migrations of one service's Postgres schema (chat, leads), shared runner.

A service ships `NNNN_name.sql` files in a `migrations` folder of its package; `migrate`
applies the missing ones in order, each once, all in one transaction under the service's
advisory lock (so instances starting together do not race), and records them in
`<schema>.schema_migrations`. A version may also have a Python step (`before`), run in the
same transaction right before its SQL, for what Postgres cannot compute.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources

import asyncpg

log = logging.getLogger("beckon.migrations")
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]*$")

Step = Callable[[asyncpg.Connection], Awaitable[None]]


def migration_files(package: str) -> list[tuple[str, str]]:
    """(version, SQL) of every migration shipped in `package`'s `migrations` folder, oldest
    first."""
    folder = resources.files(package) / "migrations"
    files = sorted(
        (entry.name, entry.read_text()) for entry in folder.iterdir() if entry.name.endswith(".sql")
    )
    return [(name.removesuffix(".sql"), sql) for name, sql in files]


async def migrate(
    conn: asyncpg.Connection,
    *,
    schema: str,
    files: Sequence[tuple[str, str]],
    lock_id: int,
    before: Mapping[str, Step] | None = None,
) -> list[str]:
    """Apply what is missing of `files` ((version, SQL), oldest first: the service's
    `migration_files(package)`); return the versions applied now. Safe to run concurrently."""
    if not _SCHEMA.match(schema):
        raise ValueError(f"a schema name is a lower-case identifier, not {schema!r}")
    steps = before or {}
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                   version text PRIMARY KEY,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row["version"]
            for row in await conn.fetch(
                f"SELECT version FROM {schema}.schema_migrations"  # noqa: S608
            )
        }
        for version, sql in files:
            if version in done:
                continue
            log.info("applying migration", extra={"schema": schema, "version": version})
            if version in steps:
                await steps[version](conn)
            await conn.execute(sql)
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (version) VALUES ($1)",  # noqa: S608
                version,
            )
            applied_now.append(version)
    return applied_now
