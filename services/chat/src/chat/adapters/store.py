"""Postgres access for the chat schema shared by several packages: asyncpg, `$n` parameters,
every query scoped by site. The conversations' own queries are `chat.conversations.store`.

Functions take a connection so the caller decides the transaction; the ones that change
assignment expect the site's assignment lock to be held (`lock_site`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import orjson
from beckon_messaging import outbox

from chat.agents.store import AGENT_ROW as _AGENT
from chat.outbox import OutboxRecord

Row: TypeAlias = Any  # asyncpg.Record (asyncpg ships no type hints)

# a conversation as the views show it (with its agent and, while queued, its place)
CONVERSATION_SELECT = """
SELECT c.conversation_id, c.site_id, c.visitor_id, c.team, c.agent_id, c.status,
       c.invitation_id, c.rule_id, c.email, c.tags, c.last_seq, c.created_at, c.assigned_at,
       c.closed_at, c.credential_id, c.user_id, a.name AS agent_name,
       a.avatar_url AS agent_avatar_url,
       CASE WHEN c.status = 'queued' THEN (
           SELECT count(*) + 1 FROM chat.conversations q
           WHERE q.site_id = c.site_id AND q.team = c.team AND q.status = 'queued'
             AND (q.created_at, q.conversation_id) < (c.created_at, c.conversation_id)
       ) END AS queue_position
FROM chat.conversations c LEFT JOIN chat.agents a ON a.agent_id = c.agent_id
"""


async def lock_site(conn: asyncpg.Connection, site_id: str) -> None:
    """Serialise every assignment change of one site (held until the transaction ends)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('beckon.chat.assign:' || $1))", site_id
    )


async def add_outbox(
    conn: asyncpg.Connection,
    records: Sequence[OutboxRecord],
    *,
    trace: Mapping[str, str] | None = None,
) -> None:
    """Store records for the relay (`chat.outbox`), with `trace` (by default the current
    span's trace context: the request's, or the consumed record's) as their headers."""
    await outbox.add_outbox(conn, "chat.outbox", records, trace=trace)


# --- sites ---------------------------------------------------------------------------------


async def site_by_id(conn: asyncpg.Connection, site_id: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM chat.sites WHERE site_id = $1", site_id)


async def team_exists(conn: asyncpg.Connection, site_id: str, team: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM chat.teams WHERE site_id = $1 AND team = $2", site_id, team
    )
    return found is not None


async def agent(conn: asyncpg.Connection, site_id: str, agent_id: str) -> Row | None:
    return await conn.fetchrow(
        _AGENT + " WHERE a.site_id = $1 AND a.agent_id = $2", site_id, agent_id
    )


async def team_members(conn: asyncpg.Connection, site_id: str, team: str) -> list[Row]:
    return await conn.fetch(
        _AGENT + " JOIN chat.team_members tm ON tm.agent_id = a.agent_id"
        " WHERE tm.site_id = $1 AND tm.team = $2 ORDER BY a.agent_id",
        site_id,
        team,
    )


async def conversation(conn: asyncpg.Connection, site_id: str, conversation_id: UUID) -> Row | None:
    return await conn.fetchrow(
        CONVERSATION_SELECT + " WHERE c.site_id = $1 AND c.conversation_id = $2",
        site_id,
        conversation_id,
    )


async def conversations(
    conn: asyncpg.Connection, site_id: str, conversation_ids: Sequence[UUID]
) -> list[Row]:
    return await conn.fetch(
        CONVERSATION_SELECT + " WHERE c.site_id = $1 AND c.conversation_id = ANY($2::uuid[])",
        site_id,
        list(conversation_ids),
    )


async def lock_conversation(
    conn: asyncpg.Connection, site_id: str, conversation_id: UUID
) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM chat.conversations WHERE site_id = $1 AND conversation_id = $2 FOR UPDATE",
        site_id,
        conversation_id,
    )


async def live_conversation(conn: asyncpg.Connection, site_id: str, visitor_id: str) -> Row | None:
    return await conn.fetchrow(
        CONVERSATION_SELECT + " WHERE c.site_id = $1 AND c.visitor_id = $2"
        " AND c.status IN ('queued', 'open')",
        site_id,
        visitor_id,
    )


# --- notes (agents only: never in chat.events, the widget's frames or its API) -------------

_NOTE = """
SELECT n.note_id, n.conversation_id, n.agent_id, n.text, n.created_at,
       a.name AS agent_name, a.avatar_url AS agent_avatar_url
FROM chat.notes n LEFT JOIN chat.agents a ON a.agent_id = n.agent_id
"""


async def notes(conn: asyncpg.Connection, site_id: str, conversation_id: UUID) -> list[Row]:
    return await conn.fetch(
        _NOTE + " JOIN chat.conversations c ON c.conversation_id = n.conversation_id"
        " WHERE c.site_id = $1 AND n.conversation_id = $2 ORDER BY n.created_at, n.note_id"
        " LIMIT 500",
        site_id,
        conversation_id,
    )


# --- invitations ---------------------------------------------------------------------------


async def insert_invitation(conn: asyncpg.Connection, values: dict[str, Any]) -> bool:
    inserted = await conn.fetchval(
        """INSERT INTO chat.invitations (invitation_id, site_id, visitor_id, rule_id, team,
               message, agent, personal, expires_at, rule_name, trace)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
           ON CONFLICT (invitation_id) DO NOTHING RETURNING 1""",
        values["invitation_id"],
        values["site_id"],
        values["visitor_id"],
        values["rule_id"],
        values["team"],
        values["message"],
        orjson.dumps(values["agent"]).decode() if values.get("agent") else None,
        values["personal"],
        values["expires_at"],
        values.get("rule_name") or "",
        orjson.dumps(values.get("trace") or {}).decode(),
    )
    return inserted is not None
