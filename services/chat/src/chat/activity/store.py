"""SQL for the visitor's activity and the card (`ActivityStore`). Every card query is scoped
by site_id; the recorder's insert and the retention sweep span every site."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from chat.activity.domain import ActivityRow

_INSERT = """
INSERT INTO chat.activity
    (event_id, site_id, visitor_id, session_id, type, occurred_at, url, title, value,
     currency, detail)
SELECT e, s, v, ss, t, o, u, ti, va, c, d::jsonb
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::text[], $8::text[], $9::numeric[], $10::text[], $11::text[])
     AS x(e, s, v, ss, t, o, u, ti, va, c, d)
ON CONFLICT (event_id) DO NOTHING
"""


_EVENTS = """SELECT event_id, session_id, type, occurred_at, url, title, value, currency, detail
FROM chat.activity"""


def _record(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    detail = data.get("detail")
    if isinstance(detail, str | bytes):
        data["detail"] = orjson.loads(detail)
    return data


class ActivityStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def insert_rows(self, rows: Sequence[ActivityRow]) -> int:
        """One statement for the whole batch; rows already stored are skipped. Returns how many
        were new."""
        if not rows:
            return 0
        status = await self.conn.execute(
            _INSERT,
            [row.event_id for row in rows],
            [row.site_id for row in rows],
            [row.visitor_id for row in rows],
            [row.session_id for row in rows],
            [row.type for row in rows],
            [row.occurred_at for row in rows],
            [row.url for row in rows],
            [row.title for row in rows],
            [row.value for row in rows],
            [row.currency for row in rows],
            [orjson.dumps(row.detail).decode() for row in rows],
        )
        return int(status.rsplit(" ", 1)[-1])

    async def delete_expired(self, *, cutoff: datetime, below_id: UUID, batch: int) -> int:
        """Delete up to `batch` rows older than the cutoff, walking the (time-ordered) key."""
        status = await self.conn.execute(
            """DELETE FROM chat.activity WHERE event_id IN (
                   SELECT event_id FROM chat.activity
                   WHERE event_id < $1 AND occurred_at < $2
                   ORDER BY event_id LIMIT $3)""",
            below_id,
            cutoff,
            batch,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def history(
        self,
        site_id: str,
        visitor_id: str,
        *,
        before: tuple[datetime, UUID] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """The visitor's recorded events, newest first, older than the cursor."""
        if before is None:
            rows = await self.conn.fetch(
                _EVENTS
                + """ WHERE site_id = $1 AND visitor_id = $2
                   ORDER BY occurred_at DESC, event_id DESC LIMIT $3""",
                site_id,
                visitor_id,
                limit,
            )
        else:
            rows = await self.conn.fetch(
                _EVENTS
                + """ WHERE site_id = $1 AND visitor_id = $2
                     AND (occurred_at, event_id) < ($3, $4)
                   ORDER BY occurred_at DESC, event_id DESC LIMIT $5""",
                site_id,
                visitor_id,
                before[0],
                before[1],
                limit,
            )
        return [_record(row) for row in rows]

    async def visit_count(self, site_id: str, visitor_id: str) -> int:
        value = await self.conn.fetchval(
            """SELECT count(DISTINCT session_id) FROM chat.activity
               WHERE site_id = $1 AND visitor_id = $2""",
            site_id,
            visitor_id,
        )
        return int(value or 0)

    async def identified(self, site_id: str, visitor_id: str) -> list[dict[str, Any]]:
        """The visitor's identify calls (newest first, the last 20)."""
        rows = await self.conn.fetch(
            _EVENTS
            + """ WHERE site_id = $1 AND visitor_id = $2 AND type = 'visitor.identified'
               ORDER BY occurred_at DESC LIMIT 20""",
            site_id,
            visitor_id,
        )
        return [_record(row) for row in rows]

    async def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        row = await self.conn.fetchrow(
            """SELECT email, name, created_at FROM chat.visitors
               WHERE site_id = $1 AND visitor_id = $2""",
            site_id,
            visitor_id,
        )
        return dict(row) if row else None

    async def conversations(
        self, site_id: str, visitor_id: str, *, limit: int, messages_each: int
    ) -> list[dict[str, Any]]:
        """The visitor's conversations (newest first) with their messages. Notes live in
        `chat.notes` and are never read here."""
        rows = await self.conn.fetch(
            """SELECT c.conversation_id, c.status, c.team, c.agent_id, a.name AS agent_name,
                      c.email, c.tags, c.rule_id, c.created_at, c.closed_at
               FROM chat.conversations c LEFT JOIN chat.agents a ON a.agent_id = c.agent_id
               WHERE c.site_id = $1 AND c.visitor_id = $2
               ORDER BY c.created_at DESC LIMIT $3""",
            site_id,
            visitor_id,
            limit,
        )
        if not rows:
            return []
        ids = [row["conversation_id"] for row in rows]
        messages = await self.conn.fetch(
            """SELECT m.conversation_id, m.seq, m.author, m.agent_id, a.name AS agent_name, m.text,
                      m.created_at
               FROM chat.conversations c
               CROSS JOIN LATERAL (
                   SELECT * FROM chat.messages
                   WHERE conversation_id = c.conversation_id ORDER BY seq DESC LIMIT $3
               ) m
               LEFT JOIN chat.agents a ON a.agent_id = m.agent_id
               WHERE c.site_id = $1 AND c.conversation_id = ANY($2::uuid[])
               ORDER BY m.conversation_id, m.seq""",
            site_id,
            ids,
            messages_each,
        )
        by_conversation: dict[UUID, list[dict[str, Any]]] = {}
        for message in messages:
            by_conversation.setdefault(message["conversation_id"], []).append(dict(message))
        return [
            {**dict(row), "messages": by_conversation.get(row["conversation_id"], [])}
            for row in rows
        ]

    async def leads(self, site_id: str, visitor_id: str) -> list[dict[str, Any]]:
        """Conversations of this visitor marked as leads (the toolkit's table, once it exists)."""
        if await self.conn.fetchval("SELECT to_regclass('chat.lead_marks')") is None:
            return []
        rows = await self.conn.fetch(
            """SELECT l.mark_id, l.conversation_id, l.agent_id, a.name AS agent_name, l.validation,
                      l.note, l.created_at
               FROM chat.lead_marks l LEFT JOIN chat.agents a ON a.agent_id = l.agent_id
               WHERE l.site_id = $1 AND l.visitor_id = $2
               ORDER BY l.created_at DESC LIMIT 50""",
            site_id,
            visitor_id,
        )
        return [dict(row) for row in rows]
