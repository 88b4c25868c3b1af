"""SQL of a visitor's erasure and export in schema `notifier`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PrivacyStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def conversations_of(
        self, site_id: str, visitor_ids: Sequence[str], email_hashes: Sequence[str]
    ) -> list[UUID]:
        rows = await self.conn.fetch(
            """SELECT conversation_id FROM notifier.conversations
               WHERE site_id = $1 AND (visitor_id = ANY($2)
                   OR (email IS NOT NULL AND notifier.subject_hash(email) = ANY($3)))
               UNION
               SELECT conversation_id FROM notifier.emails
               WHERE site_id = $1 AND conversation_id IS NOT NULL AND (visitor_id = ANY($2)
                   OR (recipient_kind = 'visitor'
                       AND notifier.subject_hash(recipient) = ANY($3)))""",
            site_id,
            list(visitor_ids),
            list(email_hashes),
        )
        return [row["conversation_id"] for row in rows]

    async def erase(
        self,
        site_id: str,
        visitor_ids: Sequence[str],
        email_hashes: Sequence[str],
        conversations: Sequence[UUID],
    ) -> dict[str, int]:
        """Delete the visitors' conversations (messages with them), the e-mails to them or
        about them (their attempts with them: the delivery log; staff alerts whose context
        names their address, visitor or conversation too), the inbound mail they sent,
        and the published outbox rows and dead letters that name them. Suppressions stay:
        they hold only a hash of the address, so it is still never mailed after a bounce."""
        conn = self.conn
        ids = list(visitor_ids)
        hashes = list(email_hashes)
        convs = list(conversations)
        counts: dict[str, int] = {}
        counts["emails"] = _count(
            await conn.execute(
                """DELETE FROM notifier.emails WHERE site_id = $1 AND (
                       conversation_id = ANY($2) OR visitor_id = ANY($3)
                       OR (recipient_kind = 'visitor'
                           AND notifier.subject_hash(recipient) = ANY($4))
                       -- staff alerts about them (a lead's e-mail, visitor or conversation)
                       OR EXISTS (
                           SELECT 1 FROM jsonb_path_query(context, 'strict $.**') AS v(value)
                           WHERE jsonb_typeof(v.value) = 'string' AND (
                               notifier.subject_hash(v.value #>> '{}') = ANY($4)
                               OR v.value #>> '{}' = ANY($3)
                               OR v.value #>> '{}' = ANY($2::text[]))))""",
                site_id,
                convs,
                ids,
                hashes,
            )
        )
        counts["conversations"] = _count(
            await conn.execute(
                "DELETE FROM notifier.conversations WHERE conversation_id = ANY($1)", convs
            )
        )
        counts["inbound"] = _count(
            await conn.execute(
                """DELETE FROM notifier.inbound WHERE conversation_id = ANY($1)
                   OR (from_email IS NOT NULL AND notifier.subject_hash(from_email) = ANY($2))""",
                convs,
                hashes,
            )
        )
        needles = [value.encode() for value in (*ids, *(str(c) for c in convs))]
        counts["outbox"] = _count(
            await conn.execute(
                """DELETE FROM notifier.outbox WHERE published_at IS NOT NULL
                   AND EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle)
                               WHERE position(n.needle IN value) > 0
                                  OR position(n.needle IN key) > 0)""",
                needles,
            )
        )
        counts["dead_letters"] = _count(
            await conn.execute(
                """DELETE FROM notifier.dead_letters
                   WHERE EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle)
                                 WHERE position(n.needle IN value) > 0)""",
                needles,
            )
        )
        return counts

    async def export(self, site_id: str, conversations: Sequence[UUID]) -> dict[str, Any]:
        emails = await self.conn.fetch(
            """SELECT template, recipient, status, subject, created_at, sent_at
               FROM notifier.emails WHERE site_id = $1 AND conversation_id = ANY($2)
               ORDER BY created_at""",
            site_id,
            list(conversations),
        )
        return {
            "emails": [
                {
                    "template": row["template"],
                    "recipient": row["recipient"],
                    "status": row["status"],
                    "subject": row["subject"],
                    "created_at": row["created_at"].isoformat(),
                    "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
                }
                for row in emails
            ]
        }
