"""Versioned SQL migrations of the `notifier` schema (`notifier/migrations/NNNN_name.sql`),
applied in order, once, under the service's lock, by the runner every service shares
(beckon_messaging.migrations)."""

from __future__ import annotations

import asyncpg
from beckon_messaging import migrations as shared

SCHEMA = "notifier"
MIGRATION_LOCK = 0x0BEC_4A11  # pg advisory lock id: chat's is 0x0BEC_5C4E, leads' 0x0BEC_1EA0


def migration_files() -> list[tuple[str, str]]:
    """(version, SQL) of every migration shipped with the service, oldest first."""
    return shared.migration_files("notifier")


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; return the versions applied now. Safe to run concurrently."""
    return await shared.migrate(
        conn, schema=SCHEMA, files=migration_files(), lock_id=MIGRATION_LOCK
    )
