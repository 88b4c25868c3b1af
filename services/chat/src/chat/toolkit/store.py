"""The toolkit's SQL: canned replies, tags, answers, transfer targets, a conversation's
context, its private notes and its lead mark. Every query is scoped by site_id.

`ToolkitStore` is built on a unit of work's connection (`tx.store(ToolkitStore)`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from beckon_contracts.ids import uuid7

from chat.toolkit import domain

Row = Any  # asyncpg.Record

# what the site's defaults are created for, once each (chat.toolkit_defaults.what)
OBJECTION_TAGS = "objection_tags"
CANNED_REPLIES = "canned_replies"

_CANNED = """SELECT reply_id, site_id, team, agent_id, shortcut, text, created_at, updated_at
FROM chat.canned_replies"""

_CONVERSATION = """SELECT c.conversation_id, c.visitor_id, c.team, c.email,
       v.name AS visitor_name, v.email AS visitor_email
FROM chat.conversations c
LEFT JOIN chat.visitors v ON v.site_id = c.site_id AND v.visitor_id = c.visitor_id
WHERE c.site_id = $1 AND c.conversation_id = $2"""

_LEAD_MARK = "SELECT * FROM chat.lead_marks WHERE site_id = $1 AND conversation_id = $2"

_NOTE = """SELECT n.note_id, n.conversation_id, n.agent_id, n.text, n.created_at,
       a.name AS agent_name, a.avatar_url AS agent_avatar_url
FROM chat.notes n LEFT JOIN chat.agents a ON a.agent_id = n.agent_id"""


class ToolkitStore:
    """The toolkit's queries on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # --- who asks ----------------------------------------------------------------------------

    async def agent(self, site_id: str, agent_id: str) -> Row | None:
        """The agent's name, role and teams (None: no such agent on the site)."""
        return await self.conn.fetchrow(
            """SELECT a.agent_id, a.name, a.role,
                  ARRAY(SELECT m.team FROM chat.team_members m
                        WHERE m.agent_id = a.agent_id ORDER BY m.team) AS teams
               FROM chat.agents a WHERE a.site_id = $1 AND a.agent_id = $2""",
            site_id,
            agent_id,
        )

    # --- the site's defaults -----------------------------------------------------------------

    async def has_defaults(self, site_id: str, what: str) -> bool:
        """Whether the site's defaults of that kind were created (or the site is unknown)."""
        found = await self.conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM chat.toolkit_defaults
                              WHERE site_id = $1 AND what = $2)
                   OR NOT EXISTS (SELECT 1 FROM chat.sites WHERE site_id = $1)""",
            site_id,
            what,
        )
        return bool(found)

    async def create_defaults(self, site_id: str, what: str) -> None:
        """The site's default objection tags or canned replies, once per site and kind (a
        default an admin deleted later is never created again)."""
        claimed = await self.conn.fetchval(
            """INSERT INTO chat.toolkit_defaults (site_id, what)
               SELECT $1, $2 WHERE EXISTS (SELECT 1 FROM chat.sites WHERE site_id = $1)
               ON CONFLICT DO NOTHING RETURNING 1""",
            site_id,
            what,
        )
        if claimed is None:
            return
        if what == OBJECTION_TAGS:
            await self.conn.executemany(
                """INSERT INTO chat.tags (site_id, tag, label, kind)
                   VALUES ($1, $2, $3, 'objection')
                   ON CONFLICT (site_id, tag) DO UPDATE SET kind = 'objection'""",
                [(site_id, tag, label) for tag, label in domain.OBJECTION_TAGS],
            )
        elif what == CANNED_REPLIES:
            await self.conn.executemany(
                """INSERT INTO chat.canned_replies
                       (reply_id, site_id, team, agent_id, shortcut, text)
                   VALUES ($1, $2, NULL, NULL, $3, $4) ON CONFLICT DO NOTHING""",
                [(uuid7(), site_id, shortcut, text) for shortcut, text in domain.DEFAULT_CANNED],
            )
        else:
            raise ValueError(f"no defaults of kind {what!r}")

    # --- canned replies ----------------------------------------------------------------------

    async def canned_visible(self, site_id: str, agent_id: str, teams: list[str]) -> list[Row]:
        """The agent's own replies, their teams' and the site's."""
        return list(
            await self.conn.fetch(
                _CANNED
                + """ WHERE site_id = $1 AND (agent_id = $2
                   OR (agent_id IS NULL AND (team IS NULL OR team = ANY($3::text[]))))
               ORDER BY shortcut LIMIT 1000""",
                site_id,
                agent_id,
                teams,
            )
        )

    async def canned_all_shared(self, site_id: str) -> list[Row]:
        """Every team's and the site's replies (what an admin manages)."""
        return list(
            await self.conn.fetch(
                _CANNED + " WHERE site_id = $1 AND agent_id IS NULL ORDER BY shortcut LIMIT 1000",
                site_id,
            )
        )

    async def canned(self, site_id: str, reply_id: UUID) -> Row | None:
        return await self.conn.fetchrow(
            _CANNED + " WHERE site_id = $1 AND reply_id = $2", site_id, reply_id
        )

    async def team_exists(self, site_id: str, team: str) -> bool:
        return bool(
            await self.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM chat.teams WHERE site_id = $1 AND team = $2)",
                site_id,
                team,
            )
        )

    async def insert_canned(
        self, *, site_id: str, team: str | None, agent_id: str | None, shortcut: str, text: str
    ) -> Row | None:
        """The new reply, or None when its set already has that shortcut."""
        return await self.conn.fetchrow(
            """INSERT INTO chat.canned_replies (reply_id, site_id, team, agent_id, shortcut, text)
               VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING
               RETURNING reply_id, site_id, team, agent_id, shortcut, text, created_at,
                         updated_at""",
            uuid7(),
            site_id,
            team,
            agent_id,
            shortcut,
            text,
        )

    async def update_canned(
        self, site_id: str, reply_id: UUID, shortcut: str, text: str
    ) -> Row | None:
        """The changed reply, or None when its set already has that shortcut."""
        async with self.conn.transaction():  # a savepoint: the conflict leaves the unit usable
            try:
                return await self.conn.fetchrow(
                    """UPDATE chat.canned_replies SET shortcut = $3, text = $4,
                           updated_at = now()
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

    async def delete_canned(self, site_id: str, reply_id: UUID) -> bool:
        done = await self.conn.execute(
            "DELETE FROM chat.canned_replies WHERE site_id = $1 AND reply_id = $2",
            site_id,
            reply_id,
        )
        return str(done).endswith(" 1")

    # --- tags and answers --------------------------------------------------------------------

    async def tags(self, site_id: str) -> list[Row]:
        """The site's tags, objections first, with how many conversations carry each."""
        return list(
            await self.conn.fetch(
                """SELECT t.tag, t.label, t.kind,
                      (SELECT count(*) FROM chat.conversations c
                       WHERE c.site_id = t.site_id AND c.tags @> ARRAY[t.tag]) AS conversations
               FROM chat.tags t WHERE t.site_id = $1
               ORDER BY (t.kind = 'objection') DESC, t.tag""",
                site_id,
            )
        )

    async def tagged_conversations(
        self, site_id: str, tag: str | None, query: str | None, limit: int
    ) -> list[Row]:
        """Tagged conversations of the site, newest first: with `tag`, those carrying it;
        with `query`, those with a message containing it."""
        pattern = None
        if query:
            escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            pattern = f"%{escaped}%"
        return list(
            await self.conn.fetch(
                """SELECT c.conversation_id, c.visitor_id, c.team, c.tags, c.status,
                      c.created_at, c.closed_at, a.name AS agent_name
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
        self, conversation_ids: list[UUID], each: int = 60
    ) -> dict[UUID, list[Row]]:
        """The first `each` messages of each conversation, with their agents' names."""
        rows = await self.conn.fetch(
            """SELECT m.conversation_id, m.seq, m.author, m.agent_id, m.text,
                  a.name AS agent_name
               FROM unnest($1::uuid[]) AS ids(id)
               CROSS JOIN LATERAL (
                   SELECT * FROM chat.messages WHERE conversation_id = ids.id
                   ORDER BY seq LIMIT $2
               ) m
               LEFT JOIN chat.agents a ON a.agent_id = m.agent_id""",
            conversation_ids,
            each,
        )
        found: dict[UUID, list[Row]] = {}
        for row in rows:
            found.setdefault(row["conversation_id"], []).append(row)
        return found

    # --- transfer targets --------------------------------------------------------------------

    async def transfer_agents(self, site_id: str) -> list[Row]:
        """The site's online agents with their load and teams."""
        return list(
            await self.conn.fetch(
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

    async def transfer_teams(self, site_id: str) -> list[Row]:
        """The site's teams with how many of their agents are online and how many wait."""
        return list(
            await self.conn.fetch(
                """SELECT t.team, t.name,
                      (SELECT count(*) FROM chat.team_members m
                       JOIN chat.agents a USING (agent_id)
                       WHERE m.site_id = t.site_id AND m.team = t.team
                         AND a.status = 'online') AS online,
                      (SELECT count(*) FROM chat.conversations c
                       WHERE c.site_id = t.site_id AND c.team = t.team
                         AND c.status = 'queued') AS queued
               FROM chat.teams t WHERE t.site_id = $1 ORDER BY t.name, t.team""",
                site_id,
            )
        )

    # --- a conversation: its context, notes and lead mark --------------------------------------

    async def conversation(
        self, site_id: str, conversation_id: UUID, *, for_update: bool = False
    ) -> Row | None:
        """The conversation's visitor, team and e-mail, with what the site knows of the
        visitor (their name and e-mail); `for_update` locks the conversation's row."""
        return await self.conn.fetchrow(
            _CONVERSATION + " FOR UPDATE OF c" if for_update else _CONVERSATION,
            site_id,
            conversation_id,
        )

    async def site(self, site_id: str) -> Row | None:
        return await self.conn.fetchrow("SELECT * FROM chat.sites WHERE site_id = $1", site_id)

    async def recent_activity(self, site_id: str, visitor_id: str) -> list[Row]:
        """The visitor's latest product views, carts and orders (newest first), if recorded."""
        return list(
            await self.conn.fetch(
                """SELECT type, title, value, currency, detail FROM chat.activity
               WHERE site_id = $1 AND visitor_id = $2
                 AND type IN ('product.viewed', 'cart.updated', 'order.completed')
               ORDER BY occurred_at DESC LIMIT 50""",
                site_id,
                visitor_id,
            )
        )

    async def insert_note(
        self, *, conversation_id: UUID, agent_id: str, text: str, now: datetime
    ) -> Row:
        """A private note on the conversation, with its author's name and avatar."""
        note_id = uuid7()
        await self.conn.execute(
            """INSERT INTO chat.notes (note_id, conversation_id, agent_id, text, created_at)
               VALUES ($1, $2, $3, $4, $5)""",
            note_id,
            conversation_id,
            agent_id,
            text,
            now,
        )
        return await self.conn.fetchrow(_NOTE + " WHERE n.note_id = $1", note_id)

    async def lead_mark(
        self, site_id: str, conversation_id: UUID, *, for_update: bool = False
    ) -> Row | None:
        return await self.conn.fetchrow(
            _LEAD_MARK + " FOR UPDATE" if for_update else _LEAD_MARK,
            site_id,
            conversation_id,
        )

    async def save_lead_mark(
        self,
        *,
        mark_id: UUID,
        conversation_id: UUID,
        site_id: str,
        visitor_id: str,
        agent_id: str,
        validation: str,
        note: str | None,
    ) -> Row:
        """The conversation's one mark, created or changed."""
        return await self.conn.fetchrow(
            """INSERT INTO chat.lead_marks (mark_id, conversation_id, site_id, visitor_id,
                   agent_id, validation, note)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (site_id, conversation_id) DO UPDATE SET
                   agent_id = EXCLUDED.agent_id, validation = EXCLUDED.validation,
                   note = EXCLUDED.note, updated_at = now()
               RETURNING *""",
            mark_id,
            conversation_id,
            site_id,
            visitor_id,
            agent_id,
            validation,
            note,
        )
