"""Where a site's routing rules and teams are kept.

Routing is one document per site, saved as a new version each time (`leads.routing_rules`;
the latest is in force, older ones stay for the record and for leads that name the version
that routed them). Documents are validated before they are saved, so reading one back only
parses it; a parsed version is kept in memory (versions never change once written).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from leads.domain.routing import RoutingRules, parse_routing, routing_json

PARSED_VERSIONS = 512  # parsed documents kept per process


@dataclass(frozen=True, slots=True)
class StoredRouting:
    """One saved version of a site's routing."""

    version: int
    rules: RoutingRules
    created_by: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Team:
    team: str
    name: str
    lead_agent_id: str | None


class _Parsed:
    """Parsed routing documents by (site, version, saved at): a bounded LRU."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, datetime], RoutingRules] = OrderedDict()

    def get(self, key: tuple[str, int, datetime]) -> RoutingRules | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: tuple[str, int, datetime], rules: RoutingRules) -> None:
        self._items[key] = rules
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


_parsed = _Parsed(PARSED_VERSIONS)


def document_of(rules: RoutingRules) -> dict[str, Any]:
    """The document as the editor edits it, without the version (the store's to give)."""
    document = routing_json(rules)
    document.pop("version", None)
    return document


def _document(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


class RoutingStore:
    """A site's routing versions."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._latest: dict[str, StoredRouting | None] = {}  # read once per unit of work

    async def latest(self, site_id: str) -> StoredRouting | None:
        """The version in force (None: the site never saved routing rules), read once per
        unit of work (a capture batch routes all its leads by it)."""
        if site_id in self._latest:
            return self._latest[site_id]
        found = self._latest[site_id] = await self._read_latest(site_id)
        return found

    async def _read_latest(self, site_id: str) -> StoredRouting | None:
        head = await self.conn.fetchrow(
            """SELECT version, created_by, created_at FROM leads.routing_rules
               WHERE site_id = $1 ORDER BY version DESC LIMIT 1""",
            site_id,
        )
        if head is None:
            return None
        key = (site_id, head["version"], head["created_at"])
        rules = _parsed.get(key)
        if rules is None:
            document = await self.conn.fetchval(
                "SELECT document FROM leads.routing_rules WHERE site_id = $1 AND version = $2",
                site_id,
                head["version"],
            )
            rules = parse_routing(_document(document)).model_copy(
                update={"version": head["version"]}
            )
            _parsed.put(key, rules)
        return StoredRouting(head["version"], rules, head["created_by"], head["created_at"])

    async def save(
        self, site_id: str, rules: RoutingRules, *, by: str | None, now: datetime
    ) -> StoredRouting:
        """Store `rules` (validated) as the site's next version; saves of one site queue up."""
        self._latest.pop(site_id, None)
        await self.conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"beckon.leads.routing:{site_id}",
        )
        version: int = await self.conn.fetchval(
            """INSERT INTO leads.routing_rules (site_id, version, document, created_by, created_at)
               SELECT $1, coalesce(max(version), 0) + 1, $2::jsonb, $3, $4
               FROM leads.routing_rules WHERE site_id = $1
               RETURNING version""",
            site_id,
            orjson.dumps(document_of(rules)).decode(),
            by,
            now,
        )
        saved = rules.model_copy(update={"version": version})
        return StoredRouting(version, saved, by, now)


class TeamStore:
    """A site's teams (`leads.teams`)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def teams(self, site_id: str) -> list[Team]:
        rows = await self.conn.fetch(
            "SELECT team, name, lead_agent_id FROM leads.teams WHERE site_id = $1 ORDER BY team",
            site_id,
        )
        return [Team(row["team"], row["name"], row["lead_agent_id"]) for row in rows]

    async def names(self, site_id: str) -> set[str]:
        rows = await self.conn.fetch("SELECT team FROM leads.teams WHERE site_id = $1", site_id)
        return {row["team"] for row in rows}

    async def replace(self, site_id: str, teams: Sequence[Team]) -> list[Team]:
        """The site's teams become exactly `teams` (others are removed, the rest updated)."""
        await self.conn.execute(
            "DELETE FROM leads.teams WHERE site_id = $1 AND NOT (team = ANY($2::text[]))",
            site_id,
            [team.team for team in teams],
        )
        await self.conn.executemany(
            """INSERT INTO leads.teams (site_id, team, name, lead_agent_id)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (site_id, team) DO UPDATE
               SET name = EXCLUDED.name, lead_agent_id = EXCLUDED.lead_agent_id""",
            [(site_id, team.team, team.name, team.lead_agent_id) for team in teams],
        )
        return await self.teams(site_id)
