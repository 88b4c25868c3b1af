"""Every instance's short-lived copy of the sites' rows (origins and settings are read on every
widget call)."""

from __future__ import annotations

import time

import asyncpg

from chat.adapters import store
from chat.uow import UnitsOfWork

SITE_CACHE_S = 10.0


class SiteCache:
    def __init__(self, uow: UnitsOfWork) -> None:
        self.uow = uow
        self._rows: dict[str, tuple[float, asyncpg.Record | None]] = {}

    async def get(self, site_id: str) -> asyncpg.Record | None:
        """A site's row, cached for a few seconds."""
        cached = self._rows.get(site_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < SITE_CACHE_S:
            return cached[1]
        async with self.uow.read(site_id) as tx:
            row = await store.site_by_id(tx.conn, site_id)
        if len(self._rows) > 10_000:
            self._rows.clear()
        self._rows[site_id] = (now, row)
        return row

    def forget(self, site_id: str) -> None:
        """Drop the cached row: this instance's next call reads the site's new settings."""
        self._rows.pop(site_id, None)
