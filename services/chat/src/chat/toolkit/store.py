"""The toolkit's SQL: canned replies, tags, answers, transfer targets, a conversation's
context and its lead mark. Every query is scoped by site_id."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from beckon_contracts.ids import uuid7

from chat.toolkit import domain

Row = Any  # asyncpg.Record


async def _claim_defaults(conn: asyncpg.Connection, site_id: str, what: str) -> bool:
    """True once per site and kind: the defaults are created then, never again."""
    claimed = await conn.fetchval(
        """INSERT INTO chat.toolkit_defaults (site_id, what)
           SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM chat.sites WHERE site_id = $1)
           ON CONFLICT DO NOTHING RETURNING 1""",
        site_id,
        what,
    )
    return claimed is not None


async def ensure_objection_tags(conn: asyncpg.Connection, site_id: str) -> None:
    async with conn.transaction():
        if not await _claim_defaults(conn, site_id, "objection_tags"):
            return
        await conn.executemany(
            """INSERT INTO chat.tags (site_id, tag, label, kind) VALUES ($1, $2, $3, 'objection')
               ON CONFLICT (site_id, tag) DO UPDATE SET kind = 'objection'""",
            [(site_id, tag, label) for tag, label in domain.OBJECTION_TAGS],
        )


async def ensure_canned_defaults(conn: asyncpg.Connection, site_id: str) -> None:
    """A few site-wide demo replies, the first time the site's canned replies are read (the
    seed file has no place for them); an admin may change or delete them after."""
    async with conn.transaction():
        if not await _claim_defaults(conn, site_id, "canned_replies"):
            return
        await conn.executemany(
            """INSERT INTO chat.canned_replies (reply_id, site_id, team, agent_id, shortcut, text)
               VALUES ($1, $2, NULL, NULL, $3, $4) ON CONFLICT DO NOTHING""",
            [(uuid7(), site_id, shortcut, text) for shortcut, text in domain.DEFAULT_CANNED],
        )


# --- canned replies ------------------------------------------------------------------------

_CANNED = """SELECT reply_id, site_id, team, agent_id, shortcut, text, created_at, updated_at
FROM chat.canned_replies"""


async def canned_visible(
    conn: asyncpg.Connection, site_id: str, agent_id: str, teams: list[str]
) -> list[Row]:
    """The agent's own replies, their teams' and the site's."""
    return list(
        await conn.fetch(
            _CANNED
            + """ WHERE site_id = $1 AND (agent_id = $2
               OR (agent_id IS NULL AND (team IS NULL OR team = ANY($3::text[]))))
           ORDER BY shortcut LIMIT 1000""",
            site_id,
            agent_id,
            teams,
        )
    )


async def canned_all_shared(conn: asyncpg.Connection, site_id: str) -> list[Row]:
    """Every team's and the site's replies (what an admin manages)."""
    return list(
        await conn.fetch(
            _CANNED + " WHERE site_id = $1 AND agent_id IS NULL ORDER BY shortcut LIMIT 1000",
            site_id,
        )
    )


async def canned(conn: asyncpg.Connection, site_id: str, reply_id: UUID) -> Row | None:
    return await conn.fetchrow(_CANNED + " WHERE site_id = $1 AND reply_id = $2", site_id, reply_id)


async def insert_canned(
    conn: asyncpg.Connection,
    *,
    site_id: str,
    team: str | None,
    agent_id: str | None,
    shortcut: str,
    text: str,
) -> Row | None:
    """The new reply, or None when its set already has that shortcut."""
    return await conn.fetchrow(
        """INSERT INTO chat.canned_replies (reply_id, site_id, team, agent_id, shortcut, text)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
           RETURNING reply_id, site_id, team, agent_id, shortcut, text, created_at, updated_at""",
        uuid7(),
        site_id,
        team,
        agent_id,
        shortcut,
        text,
    )


async def update_canned(
    conn: asyncpg.Connection, site_id: str, reply_id: UUID, shortcut: str, text: str
) -> Row | None:
    try:
        return await conn.fetchrow(
            """UPDATE chat.canned_replies SET shortcut = $3, text = $4, updated_at = now()
               WHERE site_id = $1 AND reply_id = $2
               RETURNING reply_id, site_id, team, agent_id, shortcut, text, created_at,
                         updated_at""",
            site_id,
            reply_id,
            shortcut,
            text,
        )
    except asyncpg.UniqueViolationError:
        return None


async def delete_canned(conn: asyncpg.Connection, site_id: str, reply_id: UUID) -> bool:
    done = await conn.execute(
        "DELETE FROM chat.canned_replies WHERE site_id = $1 AND reply_id = $2", site_id, reply_id
    )
    return str(done).endswith(" 1")


# --- tags ------------------------------------------------------------------------------------


async def tags(conn: asyncpg.Connection, site_id: str) -> list[Row]:
    """The site's tags, objections first, with how many conversations carry each."""
    return list(
        await conn.fetch(
            """SELECT t.tag, t.label, t.kind,
                  (SELECT count(*) FROM chat.conversations c
                   WHERE c.site_id = t.site_id AND c.tags @> ARRAY[t.tag]) AS conversations
           FROM chat.tags t WHERE t.site_id = $1
           ORDER BY (t.kind = 'objection') DESC, t.tag""",
            site_id,
        )
    )


# --- answers ---------------------------------------------------------------------------------


async def tagged_conversations(
    conn: asyncpg.Connection, site_id: str, tag: str | None, query: str | None, limit: int
) -> list[Row]:
    """Tagged conversations of the site, newest first: with `tag`, those carrying it; with
    `query`, those with a message containing it."""
    pattern = None
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
    return list(
        await conn.fetch(
            """SELECT c.conversation_id, c.visitor_id, c.team, c.tags, c.status, c.created_at,
                  c.closed_at, a.name AS agent_name
           FROM chat.conversations c LEFT JOIN chat.agents a ON a.agent_id = c.agent_id
           WHERE c.site_id = $1 AND cardinality(c.tags) > 0
             AND ($2::text IS NULL OR c.tags @> ARRAY[$2::text])
             AND ($3::text IS NULL OR EXISTS (
                 SELECT 1 FROM chat.messages m
                 WHERE m.conversation_id = c.conversation_id AND m.text ILIKE $3))
           ORDER BY c.created_at DESC LIMIT $4""",
            site_id,
            tag,
            pattern,
            limit,
        )
    )


async def messages_of(
    conn: asyncpg.Connection, conversation_ids: list[UUID], each: int = 60
) -> dict[UUID, list[Row]]:
    rows = await conn.fetch(
        """SELECT m.conversation_id, m.seq, m.author, m.agent_id, m.text, a.name AS agent_name
           FROM unnest($1::uuid[]) AS ids(id)
           CROSS JOIN LATERAL (
               SELECT * FROM chat.messages WHERE conversation_id = ids.id ORDER BY seq LIMIT $2
           ) m
           LEFT JOIN chat.agents a ON a.agent_id = m.agent_id""",
        conversation_ids,
        each,
    )
    found: dict[UUID, list[Row]] = {}
    for row in rows:
        found.setdefault(row["conversation_id"], []).append(row)
    return found


# --- transfer targets ------------------------------------------------------------------------


async def transfer_agents(conn: asyncpg.Connection, site_id: str) -> list[Row]:
    """The site's online agents with their load and teams."""
    return list(
        await conn.fetch(
            """SELECT a.agent_id, a.name, a.avatar_url, a.status, a.max_chats,
                  (SELECT count(*) FROM chat.conversations c
                   WHERE c.agent_id = a.agent_id AND c.status = 'open') AS open_chats,
                  ARRAY(SELECT m.team FROM chat.team_members m
                        WHERE m.agent_id = a.agent_id ORDER BY m.team) AS teams
           FROM chat.agents a WHERE a.site_id = $1 AND a.status = 'online'
           ORDER BY a.name, a.agent_id""",
            site_id,
        )
    )


async def transfer_teams(conn: asyncpg.Connection, site_id: str) -> list[Row]:
    return list(
        await conn.fetch(
            """SELECT t.team, t.name,
                  (SELECT count(*) FROM chat.team_members m JOIN chat.agents a USING (agent_id)
                   WHERE m.site_id = t.site_id AND m.team = t.team AND a.status = 'online')
                  AS online,
                  (SELECT count(*) FROM chat.conversations c
                   WHERE c.site_id = t.site_id AND c.team = t.team AND c.status = 'queued')
                  AS queued
           FROM chat.teams t WHERE t.site_id = $1 ORDER BY t.name, t.team""",
            site_id,
        )
    )


# --- a conversation's context (for the variables) ----------------------------------------------


async def conversation_row(conn: asyncpg.Connection, site_id: str, conversation_id: UUID) -> Row:
    return await conn.fetchrow(
        """SELECT c.conversation_id, c.visitor_id, c.team, c.email,
                  v.name AS visitor_name, v.email AS visitor_email
           FROM chat.conversations c
           LEFT JOIN chat.visitors v ON v.site_id = c.site_id AND v.visitor_id = c.visitor_id
           WHERE c.site_id = $1 AND c.conversation_id = $2""",
        site_id,
        conversation_id,
    )


async def recent_activity(conn: asyncpg.Connection, site_id: str, visitor_id: str) -> list[Row]:
    """The visitor's latest product views, carts and orders (newest first), when recorded."""
    return list(
        await conn.fetch(
            """SELECT type, title, value, currency, detail FROM chat.activity
           WHERE site_id = $1 AND visitor_id = $2
             AND type IN ('product.viewed', 'cart.updated', 'order.completed')
           ORDER BY occurred_at DESC LIMIT 50""",
            site_id,
            visitor_id,
        )
    )


async def lead_mark(conn: asyncpg.Connection, site_id: str, conversation_id: UUID) -> Row | None:
    return await conn.fetchrow(
        "SELECT * FROM chat.lead_marks WHERE site_id = $1 AND conversation_id = $2",
        site_id,
        conversation_id,
    )
