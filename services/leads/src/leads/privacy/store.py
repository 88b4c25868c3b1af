"""SQL of a visitor's erasure and export in schema `leads`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg
import orjson


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


class PrivacyStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def leads_of(
        self, site_id: str, visitor_ids: Sequence[str], email_hashes: Sequence[str]
    ) -> list[UUID]:
        """The leads of these visitors or addresses, with every lead merged into one of them
        or one of them was merged into (a person's whole history)."""
        rows = await self.conn.fetch(
            """WITH RECURSIVE found(lead_id) AS (
                   SELECT lead_id FROM leads.leads
                   WHERE site_id = $1 AND (visitor_id = ANY($2)
                       OR (email IS NOT NULL AND leads.subject_hash(email) = ANY($3))
                       OR (email_key IS NOT NULL AND leads.subject_hash(email_key) = ANY($3)))
                   UNION
                   SELECT lead_id FROM leads.touches
                   WHERE site_id = $1 AND visitor_id = ANY($2)
                   UNION
                   SELECT l.lead_id FROM leads.leads l JOIN found f
                     ON l.merged_into = f.lead_id
                     OR l.lead_id = (SELECT merged_into FROM leads.leads WHERE lead_id = f.lead_id)
                   WHERE l.site_id = $1)
               SELECT DISTINCT lead_id FROM found ORDER BY lead_id""",
            site_id,
            list(visitor_ids),
            list(email_hashes),
        )
        return [row["lead_id"] for row in rows]

    async def visitors_of_leads(self, site_id: str, lead_ids: Sequence[UUID]) -> list[str]:
        rows = await self.conn.fetch(
            """SELECT visitor_id FROM leads.leads WHERE site_id = $1 AND lead_id = ANY($2)
               UNION
               SELECT visitor_id FROM leads.touches
               WHERE site_id = $1 AND lead_id = ANY($2) AND visitor_id IS NOT NULL""",
            site_id,
            list(lead_ids),
        )
        return sorted(row["visitor_id"] for row in rows)

    async def erase(
        self, site_id: str, lead_ids: Sequence[UUID], visitor_ids: Sequence[str]
    ) -> dict[str, int]:
        """Delete the leads (their touches, conversations and timers go with them), what
        capture remembers of the visitors' conversations, and every logged webhook payload,
        published outbox row and dead letter that names one of them."""
        conn = self.conn
        leads = list(lead_ids)
        ids = list(visitor_ids)
        counts: dict[str, int] = {}
        conversations = [
            row["conversation_id"]
            for row in await conn.fetch(
                """SELECT conversation_id FROM leads.lead_conversations WHERE lead_id = ANY($1)
                   UNION
                   SELECT conversation_id FROM leads.conversations
                   WHERE site_id = $2 AND visitor_id = ANY($3)""",
                leads,
                site_id,
                ids,
            )
        ]
        counts["touches"] = _count(
            await conn.execute("DELETE FROM leads.touches WHERE lead_id = ANY($1)", leads)
        )
        await conn.execute(
            "DELETE FROM leads.merges WHERE survivor_id = ANY($1) OR merged_id = ANY($1)", leads
        )
        # merged leads point at their survivor: let go of each other before the rows go
        await conn.execute(
            "UPDATE leads.leads SET merged_into = NULL WHERE lead_id = ANY($1)", leads
        )
        counts["leads"] = _count(
            await conn.execute("DELETE FROM leads.leads WHERE lead_id = ANY($1)", leads)
        )
        counts["conversations"] = _count(
            await conn.execute(
                "DELETE FROM leads.conversations WHERE site_id = $1 AND visitor_id = ANY($2)",
                site_id,
                ids,
            )
        )
        needles = [
            value.encode()
            for value in (*ids, *(str(lead) for lead in leads), *(str(c) for c in conversations))
        ]
        counts["webhook_deliveries"] = _count(
            await conn.execute(
                """DELETE FROM leads.webhook_deliveries WHERE site_id = $1
                   AND EXISTS (SELECT 1 FROM unnest($2::bytea[]) AS n(needle)
                               WHERE position(n.needle IN body) > 0)""",
                site_id,
                needles,
            )
        )
        counts["outbox"] = _count(
            await conn.execute(
                """DELETE FROM leads.outbox WHERE published_at IS NOT NULL
                   AND EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle)
                               WHERE position(n.needle IN value) > 0
                                  OR position(n.needle IN key) > 0)""",
                needles,
            )
        )
        counts["dead_letters"] = _count(
            await conn.execute(
                """DELETE FROM leads.dead_letters
                   WHERE EXISTS (SELECT 1 FROM unnest($1::bytea[]) AS n(needle)
                                 WHERE position(n.needle IN value) > 0)""",
                needles,
            )
        )
        return counts

    async def export(self, site_id: str, lead_ids: Sequence[UUID]) -> list[dict[str, Any]]:
        rows = await self.conn.fetch(
            """SELECT l.*, coalesce((SELECT jsonb_agg(jsonb_build_object(
                        'kind', t.kind, 'at', t.occurred_at, 'details', t.details)
                        ORDER BY t.occurred_at)
                    FROM leads.touches t WHERE t.lead_id = l.lead_id), '[]') AS touches
               FROM leads.leads l WHERE l.site_id = $1 AND l.lead_id = ANY($2)
               ORDER BY l.created_at""",
            site_id,
            list(lead_ids),
        )
        keep = ("name", "company", "email", "phone", "country", "language", "status", "source")
        return [
            {
                "lead_id": str(row["lead_id"]),
                "visitor_id": row["visitor_id"],
                **{key: row[key] for key in keep},
                "created_at": row["created_at"].isoformat(),
                "touches": orjson.loads(row["touches"]),
            }
            for row in rows
        ]
