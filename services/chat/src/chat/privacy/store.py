"""SQL of a visitor's erasure, export and the sites' retention (schema `chat`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from beckon_contracts.topics import PRIVACY_REQUESTS

# chat.subject_hash (the SQL twin of beckon_contracts.privacy.subject_hash) and chat.pseudonym
# (an erased visitor id, where a row stays for the reports) are in migration 0019


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PrivacyStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    # ---- subjects ---------------------------------------------------------------------------

    async def visitors_of(
        self, site_id: str, visitor_ids: Sequence[str], email_hashes: Sequence[str]
    ) -> list[str]:
        """The visitor ids asked for, and those chat knows by one of the addresses."""
        rows = await self.conn.fetch(
            """SELECT visitor_id FROM chat.visitors
                WHERE site_id = $1 AND email IS NOT NULL AND chat.subject_hash(email) = ANY($2)
                UNION
                SELECT visitor_id FROM chat.conversations
                WHERE site_id = $1 AND email IS NOT NULL AND chat.subject_hash(email) = ANY($2)""",
            site_id,
            list(email_hashes),
        )
        return sorted({*visitor_ids, *(row["visitor_id"] for row in rows)})

    # ---- requests ---------------------------------------------------------------------------

    async def add_request(
        self, request_id: UUID, site_id: str, requested_by: str, subjects: int
    ) -> None:
        await self.conn.execute(
            """INSERT INTO chat.privacy_requests (request_id, site_id, requested_by, subjects)
               VALUES ($1, $2, $3, $4)""",
            request_id,
            site_id,
            requested_by,
            subjects,
        )

    async def claim_request(self, request_id: UUID, site_id: str, requested_by: str) -> bool:
        """Lock the request for chat's part; False when chat erased it already (a replay)."""
        await self.conn.execute(
            """INSERT INTO chat.privacy_requests (request_id, site_id, requested_by, subjects)
               SELECT $1, $2, $3, 0 WHERE EXISTS (SELECT 1 FROM chat.sites WHERE site_id = $2)
               ON CONFLICT (request_id) DO NOTHING""",
            request_id,
            site_id,
            requested_by,
        )
        row = await self.conn.fetchrow(
            """SELECT erased_at FROM chat.privacy_requests
               WHERE request_id = $1 AND site_id = $2 FOR UPDATE""",
            request_id,
            site_id,
        )
        return row is not None and row["erased_at"] is None

    async def mark_erased(self, request_id: UUID, counts: dict[str, int], at: datetime) -> None:
        await self.conn.execute(
            """UPDATE chat.privacy_requests SET erased_at = $2, counts = $3::jsonb
               WHERE request_id = $1""",
            request_id,
            at,
            orjson.dumps(counts).decode(),
        )

    async def requests(self, site_id: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            """SELECT request_id, requested_by, subjects, requested_at, erased_at, counts
               FROM chat.privacy_requests WHERE site_id = $1
               ORDER BY requested_at DESC LIMIT $2""",
            site_id,
            limit,
        )
        return [
            {
                "request_id": str(row["request_id"]),
                "requested_by": row["requested_by"],
                "subjects": row["subjects"],
                "requested_at": row["requested_at"].isoformat(),
                "erased_at": row["erased_at"].isoformat() if row["erased_at"] else None,
                "counts": orjson.loads(row["counts"]),
            }
            for row in rows
        ]

    # ---- erasure ----------------------------------------------------------------------------

    async def erase(
        self,
        site_id: str,
        visitor_ids: Sequence[str],
        email_hashes: Sequence[str],
        request_id: UUID,
    ) -> dict[str, int]:
        """Delete what chat holds of the visitors, keeping anonymised rows the reports count
        (conversations, message rows without text, orders without their details)."""
        ids = list(visitor_ids)
        conn = self.conn
        counts: dict[str, int] = {}
        conversations = [
            row["conversation_id"]
            for row in await conn.fetch(
                """SELECT conversation_id FROM chat.conversations
                    WHERE site_id = $1 AND (visitor_id = ANY($2)
                        OR (email IS NOT NULL AND chat.subject_hash(email) = ANY($3)))""",
                site_id,
                ids,
                list(email_hashes),
            )
        ]
        counts["messages"] = _count(
            await conn.execute(
                """UPDATE chat.messages SET text = '', attachments = '[]', client_id = NULL
                   WHERE conversation_id = ANY($1) AND text <> ''""",
                conversations,
            )
        )
        counts["notes"] = _count(
            await conn.execute(
                "DELETE FROM chat.notes WHERE conversation_id = ANY($1)", conversations
            )
        )
        await conn.execute(
            "UPDATE chat.transfers SET note = NULL WHERE conversation_id = ANY($1)", conversations
        )
        await conn.execute(
            """UPDATE chat.lead_marks SET note = NULL, visitor_id = chat.pseudonym(visitor_id)
                WHERE conversation_id = ANY($1)""",
            conversations,
        )
        counts["conversations"] = _count(
            await conn.execute(
                """UPDATE chat.conversations
                    SET visitor_id = chat.pseudonym(visitor_id), email = NULL,
                        user_id = NULL, credential_id = NULL
                    WHERE conversation_id = ANY($1)""",
                conversations,
            )
        )
        counts["invitations"] = _count(
            await conn.execute(
                """UPDATE chat.invitations
                    SET visitor_id = chat.pseudonym(visitor_id), message = '', agent = NULL
                    WHERE site_id = $1 AND visitor_id = ANY($2)""",
                site_id,
                ids,
            )
        )
        # orders stay for the revenue reports, without who, where or what
        await conn.execute(
            """UPDATE chat.activity
                SET visitor_id = chat.pseudonym(visitor_id), session_id = NULL,
                    url = NULL, title = NULL, detail = '{}'
                WHERE site_id = $1 AND visitor_id = ANY($2) AND type = 'order.completed'""",
            site_id,
            ids,
        )
        counts["activity"] = _count(
            await conn.execute(
                "DELETE FROM chat.activity WHERE site_id = $1 AND visitor_id = ANY($2)",
                site_id,
                ids,
            )
        )
        # the browsers' credentials (and the verified user id they last carried)
        counts["credentials"] = _count(
            await conn.execute(
                "DELETE FROM chat.visitor_credentials WHERE site_id = $1 AND visitor_id = ANY($2)",
                site_id,
                ids,
            )
        )
        counts["visitors"] = _count(
            await conn.execute(
                "DELETE FROM chat.visitors WHERE site_id = $1 AND visitor_id = ANY($2)",
                site_id,
                ids,
            )
        )
        counts["outbox"] = await self.forget_published(ids, [str(c) for c in conversations])
        # the command itself (it was sent, or it would not be here; the relay may not have
        # marked it yet)
        await conn.execute(
            "DELETE FROM chat.outbox WHERE topic = $1 AND position($2 IN value) > 0",
            PRIVACY_REQUESTS.name,
            str(request_id).encode(),
        )
        return counts

    async def forget_published(
        self, visitor_ids: Sequence[str], conversations: Sequence[str]
    ) -> int:
        """Published outbox rows (kept an hour) that name the visitors or their conversations."""
        needles = [value.encode() for value in (*visitor_ids, *conversations) if value]
        if not needles:
            return 0
        return _count(
            await self.conn.execute(
                """DELETE FROM chat.outbox WHERE published_at IS NOT NULL
                   AND EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle)
                               WHERE position(n.needle IN value) > 0
                                  OR position(n.needle IN key) > 0)""",
                needles,
            )
        )

    # ---- export -----------------------------------------------------------------------------

    async def export(self, site_id: str, visitor_ids: Sequence[str]) -> dict[str, Any]:
        ids = list(visitor_ids)
        visitors = await self.conn.fetch(
            """SELECT visitor_id, email, name, created_at FROM chat.visitors
               WHERE site_id = $1 AND visitor_id = ANY($2) ORDER BY visitor_id""",
            site_id,
            ids,
        )
        conversations = await self.conn.fetch(
            """SELECT conversation_id, visitor_id, status, email, tags, created_at, closed_at
               FROM chat.conversations WHERE site_id = $1 AND visitor_id = ANY($2)
               ORDER BY created_at""",
            site_id,
            ids,
        )
        messages = await self.conn.fetch(
            """SELECT m.conversation_id, m.seq, m.author, m.text, m.channel, m.created_at
               FROM chat.messages m JOIN chat.conversations c USING (conversation_id)
               WHERE c.site_id = $1 AND c.visitor_id = ANY($2)
               ORDER BY m.conversation_id, m.seq""",
            site_id,
            ids,
        )
        activity = await self.conn.fetch(
            """SELECT visitor_id, type, occurred_at, url, title, value, currency
               FROM chat.activity WHERE site_id = $1 AND visitor_id = ANY($2)
               ORDER BY occurred_at""",
            site_id,
            ids,
        )
        by_conversation: dict[str, list[dict[str, Any]]] = {}
        for row in messages:
            by_conversation.setdefault(str(row["conversation_id"]), []).append(
                {
                    "seq": row["seq"],
                    "author": row["author"],
                    "text": row["text"],
                    "channel": row["channel"],
                    "at": row["created_at"].isoformat(),
                }
            )
        return {
            "visitors": [
                {
                    "visitor_id": row["visitor_id"],
                    "email": row["email"],
                    "name": row["name"],
                    "first_seen": row["created_at"].isoformat(),
                }
                for row in visitors
            ],
            "conversations": [
                {
                    "conversation_id": str(row["conversation_id"]),
                    "visitor_id": row["visitor_id"],
                    "status": row["status"],
                    "email": row["email"],
                    "tags": list(row["tags"]),
                    "started_at": row["created_at"].isoformat(),
                    "closed_at": row["closed_at"].isoformat() if row["closed_at"] else None,
                    "messages": by_conversation.get(str(row["conversation_id"]), []),
                }
                for row in conversations
            ],
            "activity": [
                {
                    "visitor_id": row["visitor_id"],
                    "type": row["type"],
                    "at": row["occurred_at"].isoformat(),
                    "url": row["url"],
                    "title": row["title"],
                    "value": str(row["value"]) if row["value"] is not None else None,
                    "currency": row["currency"],
                }
                for row in activity
            ],
        }

    # ---- retention --------------------------------------------------------------------------

    async def retention(self, site_id: str) -> dict[str, int | None]:
        row = await self.conn.fetchrow(
            "SELECT activity_days, transcript_days FROM chat.retention WHERE site_id = $1",
            site_id,
        )
        return {
            "activity_days": row["activity_days"] if row else None,
            "transcript_days": row["transcript_days"] if row else None,
        }

    async def set_retention(
        self, site_id: str, activity_days: int | None, transcript_days: int | None
    ) -> None:
        await self.conn.execute(
            """INSERT INTO chat.retention (site_id, activity_days, transcript_days)
               VALUES ($1, $2, $3)
               ON CONFLICT (site_id) DO UPDATE
               SET activity_days = $2, transcript_days = $3, updated_at = now()""",
            site_id,
            activity_days,
            transcript_days,
        )

    async def retained_sites(self) -> list[asyncpg.Record]:
        return list(
            await self.conn.fetch(
                """SELECT site_id, activity_days, transcript_days FROM chat.retention
                   WHERE activity_days IS NOT NULL OR transcript_days IS NOT NULL"""
            )
        )

    async def prune_activity(self, site_id: str, cutoff: datetime) -> int:
        """A site's activity older than the cut-off; orders stay, anonymised, for revenue."""
        await self.conn.execute(
            """UPDATE chat.activity
                SET visitor_id = chat.pseudonym(visitor_id), session_id = NULL,
                    url = NULL, title = NULL, detail = '{}'
                WHERE site_id = $1 AND occurred_at < $2 AND type = 'order.completed'
                  AND visitor_id NOT LIKE 'erased:%'""",
            site_id,
            cutoff,
        )
        return _count(
            await self.conn.execute(
                """DELETE FROM chat.activity
                   WHERE site_id = $1 AND occurred_at < $2 AND type <> 'order.completed'""",
                site_id,
                cutoff,
            )
        )

    async def prune_transcripts(self, site_id: str, cutoff: datetime) -> int:
        """The text of conversations closed before the cut-off (the rows stay for counts)."""
        closed = [
            row["conversation_id"]
            for row in await self.conn.fetch(
                """SELECT conversation_id FROM chat.conversations
                   WHERE site_id = $1 AND closed_at < $2""",
                site_id,
                cutoff,
            )
        ]
        await self.conn.execute("DELETE FROM chat.notes WHERE conversation_id = ANY($1)", closed)
        return _count(
            await self.conn.execute(
                """UPDATE chat.messages SET text = '', attachments = '[]'
                   WHERE conversation_id = ANY($1) AND text <> ''""",
                closed,
            )
        )
