"""The `leads.api_keys` rows (hashes only), scoped to one site except the lookup by hash."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

KEY_COLUMNS = "key_id, site_id, name, hint, created_at, created_by, last_used_at, revoked_at"
# a key's last use is written at most this often (a busy client costs no write per call)
LAST_USED_EVERY_S = 60


class ApiKeyStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def add(
        self,
        *,
        key_id: UUID,
        site_id: str,
        name: str,
        key_hash: bytes,
        hint: str,
        created_by: str,
        now: datetime,
    ) -> asyncpg.Record:
        row: asyncpg.Record = await self.conn.fetchrow(
            f"""INSERT INTO leads.api_keys (key_id, site_id, name, key_hash, hint, created_by,
                                             created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}""",  # noqa: S608
            key_id,
            site_id,
            name,
            key_hash,
            hint,
            created_by,
            now,
        )
        return row

    async def list(self, site_id: str) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.conn.fetch(
            f"""SELECT {KEY_COLUMNS} FROM leads.api_keys WHERE site_id = $1
                ORDER BY revoked_at IS NOT NULL, created_at DESC, key_id""",  # noqa: S608
            site_id,
        )
        return rows

    async def revoke(
        self, site_id: str, key_id: UUID, *, by: str, now: datetime
    ) -> asyncpg.Record | None:
        """The key, revoked now unless it was before (then as it was); None: no such key."""
        row: asyncpg.Record | None = await self.conn.fetchrow(
            f"""UPDATE leads.api_keys
                SET revoked_at = coalesce(revoked_at, $3),
                    revoked_by = CASE WHEN revoked_at IS NULL THEN $4 ELSE revoked_by END
                WHERE site_id = $1 AND key_id = $2 RETURNING {KEY_COLUMNS}""",  # noqa: S608
            site_id,
            key_id,
            now,
            by,
        )
        return row

    async def by_hash(self, key_hash: bytes) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.conn.fetchrow(
            f"SELECT {KEY_COLUMNS} FROM leads.api_keys WHERE key_hash = $1",  # noqa: S608
            key_hash,
        )
        return row

    async def used(self, key_id: UUID, now: datetime) -> None:
        await self.conn.execute(
            """UPDATE leads.api_keys SET last_used_at = $2
               WHERE key_id = $1
                 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - $3::interval)""",
            key_id,
            now,
            timedelta(seconds=LAST_USED_EVERY_S),
        )
