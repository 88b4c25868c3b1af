"""Versioned SQL migrations for the `chat` schema, applied in order, once, under a lock
(by the runner every service shares, beckon_messaging.migrations).

A version may also have a Python step (`BEFORE`), run in the same transaction right before
its SQL, for what Postgres cannot compute (e.g. Unicode case folding).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from beckon_messaging import migrations as shared

from chat.agents.domain import normalise_email

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
    return shared.migration_files("chat")


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; return the versions applied now. Safe to run concurrently."""
    return await shared.migrate(
        conn, schema="chat", files=migration_files(), lock_id=MIGRATION_LOCK, before=BEFORE
    )
