"""Postgres access for the chat schema shared by several packages: asyncpg, `$n` parameters,
every query scoped by site. The conversations' own queries are `chat.conversations.store`.

Functions take a connection so the caller decides the transaction; the ones that change
assignment expect the site's assignment lock to be held (`lock_site`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import orjson
from beckon_observability import trace_carrier

from chat.outbox import OutboxRecord

Row: TypeAlias = Any  # asyncpg.Record (asyncpg ships no type hints)

# a conversation as the views show it (with its agent and, while queued, its place)
CONVERSATION_SELECT = """
SELECT c.conversation_id, c.site_id, c.visitor_id, c.team, c.agent_id, c.status,
       c.invitation_id, c.rule_id, c.email, c.tags, c.last_seq, c.created_at, c.assigned_at,
       c.closed_at, a.name AS agent_name, a.avatar_url AS agent_avatar_url,
       CASE WHEN c.status = 'queued' THEN (
           SELECT count(*) + 1 FROM chat.conversations q
           WHERE q.site_id = c.site_id AND q.team = c.team AND q.status = 'queued'
             AND (q.created_at, q.conversation_id) < (c.created_at, c.conversation_id)
       ) END AS queue_position
FROM chat.conversations c LEFT JOIN chat.agents a ON a.agent_id = c.agent_id
"""

_AGENT = """
SELECT a.agent_id, a.site_id, a.email, a.password_hash, a.name, a.avatar_url, a.role,
       a.max_chats, a.status, a.last_seen_at, a.last_assigned_at, a.locale, a.settings,
       a.session_version,
       (SELECT count(*) FROM chat.conversations c
        WHERE c.agent_id = a.agent_id AND c.status = 'open') AS open_chats,
       ARRAY(SELECT m.team FROM chat.team_members m
             WHERE m.agent_id = a.agent_id ORDER BY m.team) AS teams
FROM chat.agents a
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
    """Store records for the relay, with `trace` (by default the current span's trace
    context: the request's, or the consumed record's) to publish as their headers."""
    if records:
        headers = orjson.dumps(trace_carrier() if trace is None else dict(trace)).decode()
        await conn.executemany(
            "INSERT INTO chat.outbox (topic, key, value, headers) VALUES ($1, $2, $3, $4::jsonb)",
            [(record.topic, record.key, record.value, headers) for record in records],
        )


# --- sites ---------------------------------------------------------------------------------


async def site_by_id(conn: asyncpg.Connection, site_id: str) -> Row | None:
    return await conn.fetchrow("SELECT * FROM chat.sites WHERE site_id = $1", site_id)


async def team_exists(conn: asyncpg.Connection, site_id: str, team: str) -> bool:
    found = await conn.fetchval(
        "SELECT 1 FROM chat.teams WHERE site_id = $1 AND team = $2", site_id, team
    )
    return found is not None


async def teams(conn: asyncpg.Connection, site_id: str) -> list[Row]:
    return await conn.fetch(
        "SELECT team, name FROM chat.teams WHERE site_id = $1 ORDER BY team", site_id
    )


# --- agents --------------------------------------------------------------------------------


async def agent_by_email(conn: asyncpg.Connection, email: str) -> Row | None:
    """The agent of an address in its normal form (chat.domain.login.normalise_email)."""
    return await conn.fetchrow(_AGENT + " WHERE a.email = $1", email)


async def agent_session(conn: asyncpg.Connection, site_id: str, agent_id: str) -> Row | None:
    """(active, session_version) of an agent, or None when there is no such agent."""
    return await conn.fetchrow(
        """SELECT deactivated_at IS NULL AS active, session_version FROM chat.agents
           WHERE site_id = $1 AND agent_id = $2""",
        site_id,
        agent_id,
    )


async def end_sessions(conn: asyncpg.Connection, site_id: str, agent_id: str, version: int) -> bool:
    """Raise the agent's session version if it is still `version`: True when it was."""
    done = await conn.execute(
        """UPDATE chat.agents SET session_version = session_version + 1
           WHERE site_id = $1 AND agent_id = $2 AND session_version = $3""",
        site_id,
        agent_id,
        version,
    )
    return bool(done == "UPDATE 1")


async def agent(conn: asyncpg.Connection, site_id: str, agent_id: str) -> Row | None:
    return await conn.fetchrow(
        _AGENT + " WHERE a.site_id = $1 AND a.agent_id = $2", site_id, agent_id
    )


async def set_agent_preferences(
    conn: asyncpg.Connection, site_id: str, agent_id: str, locale: str | None, settings: str | None
) -> None:
    """Change the agent's own locale and/or merge keys into their settings (JSON text)."""
    await conn.execute(
        """UPDATE chat.agents SET locale = coalesce($3, locale),
                                  settings = settings || coalesce($4::jsonb, '{}'::jsonb)
           WHERE site_id = $1 AND agent_id = $2""",
        site_id,
        agent_id,
        locale,
        settings,
    )


async def team_members(conn: asyncpg.Connection, site_id: str, team: str) -> list[Row]:
    return await conn.fetch(
        _AGENT + " JOIN chat.team_members tm ON tm.agent_id = a.agent_id"
        " WHERE tm.site_id = $1 AND tm.team = $2 ORDER BY a.agent_id",
        site_id,
        team,
    )


async def set_agent_status(
    conn: asyncpg.Connection, site_id: str, agent_id: str, status: str, now: datetime
) -> None:
    await conn.execute(
        """UPDATE chat.agents SET status = $3, last_seen_at = $4
           WHERE site_id = $1 AND agent_id = $2""",
        site_id,
        agent_id,
        status,
        now,
    )


async def touch_agent(conn: asyncpg.Connection, agent_id: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE chat.agents SET last_seen_at = $2 WHERE agent_id = $1", agent_id, now
    )


async def stale_agents(conn: asyncpg.Connection, before: datetime) -> list[Row]:
    return await conn.fetch(
        """SELECT agent_id, site_id FROM chat.agents
           WHERE status <> 'offline' AND (last_seen_at IS NULL OR last_seen_at < $1)""",
        before,
    )


# --- conversations -------------------------------------------------------------------------


async def conversation(conn: asyncpg.Connection, site_id: str, conversation_id: UUID) -> Row | None:
    return await conn.fetchrow(
        CONVERSATION_SELECT + " WHERE c.site_id = $1 AND c.conversation_id = $2",
        site_id,
        conversation_id,
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


async def insert_note(
    conn: asyncpg.Connection,
    *,
    note_id: UUID,
    conversation_id: UUID,
    agent_id: str,
    text: str,
    now: datetime,
) -> Row:
    await conn.execute(
        """INSERT INTO chat.notes (note_id, conversation_id, agent_id, text, created_at)
           VALUES ($1, $2, $3, $4, $5)""",
        note_id,
        conversation_id,
        agent_id,
        text,
        now,
    )
    return await conn.fetchrow(_NOTE + " WHERE n.note_id = $1", note_id)


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
