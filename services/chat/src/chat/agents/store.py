"""Postgres access for the agents' use cases: their accounts, sessions, status and presence.

Used as `tx.store(AgentStore)` inside a unit of work (chat.uow), so the use cases run on a
fake in unit tests. `AGENT_ROW` is the agent as every part of chat reads it (with their open
chats and teams); `chat.adapters.store` builds its shared agent queries on it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

Row: TypeAlias = Any  # asyncpg.Record (asyncpg ships no type hints)

AGENT_ROW = """
SELECT a.agent_id, a.site_id, a.email, a.password_hash, a.name, a.avatar_url, a.role,
       a.max_chats, a.status, a.last_seen_at, a.last_assigned_at, a.locale, a.settings,
       a.session_version,
       (SELECT count(*) FROM chat.conversations c
        WHERE c.agent_id = a.agent_id AND c.status = 'open') AS open_chats,
       ARRAY(SELECT m.team FROM chat.team_members m
             WHERE m.agent_id = a.agent_id ORDER BY m.team) AS teams
FROM chat.agents a
"""


class AgentStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def get(self, site_id: str, agent_id: str) -> Row | None:
        """The agent of the site (None: no such agent there)."""
        return await self.conn.fetchrow(
            AGENT_ROW + " WHERE a.site_id = $1 AND a.agent_id = $2", site_id, agent_id
        )

    async def by_email(self, email: str) -> Row | None:
        """The agent of an address in its normal form (chat.agents.domain.normalise_email)."""
        return await self.conn.fetchrow(AGENT_ROW + " WHERE a.email = $1", email)

    async def teams_of(self, agent_id: str) -> list[str]:
        """The teams the agent is a member of."""
        rows = await self.conn.fetch(
            "SELECT team FROM chat.team_members WHERE agent_id = $1 ORDER BY team", agent_id
        )
        return [row["team"] for row in rows]

    async def site(self, site_id: str) -> Row | None:
        return await self.conn.fetchrow("SELECT * FROM chat.sites WHERE site_id = $1", site_id)

    async def site_teams(self, site_id: str) -> list[Row]:
        """The site's teams (team, name), to choose from in the console."""
        rows: list[Row] = await self.conn.fetch(
            "SELECT team, name FROM chat.teams WHERE site_id = $1 ORDER BY team", site_id
        )
        return rows

    # --- sessions ---------------------------------------------------------------------------

    async def session(self, site_id: str, agent_id: str) -> Row | None:
        """(active, session_version) of an agent, or None when there is no such agent."""
        return await self.conn.fetchrow(
            """SELECT deactivated_at IS NULL AS active, session_version FROM chat.agents
               WHERE site_id = $1 AND agent_id = $2""",
            site_id,
            agent_id,
        )

    async def end_sessions(self, site_id: str, agent_id: str, version: int) -> bool:
        """Raise the agent's session version if it is still `version`: True when it was."""
        done = await self.conn.execute(
            """UPDATE chat.agents SET session_version = session_version + 1
               WHERE site_id = $1 AND agent_id = $2 AND session_version = $3""",
            site_id,
            agent_id,
            version,
        )
        return bool(done == "UPDATE 1")

    # --- status and presence ----------------------------------------------------------------

    async def set_status(self, site_id: str, agent_id: str, status: str, now: datetime) -> None:
        await self.conn.execute(
            """UPDATE chat.agents SET status = $3, last_seen_at = $4
               WHERE site_id = $1 AND agent_id = $2""",
            site_id,
            agent_id,
            status,
            now,
        )

    async def set_preferences(
        self, site_id: str, agent_id: str, locale: str | None, settings: str | None
    ) -> None:
        """Change the agent's own locale and/or merge keys into their settings (JSON text)."""
        await self.conn.execute(
            """UPDATE chat.agents SET locale = coalesce($3, locale),
                                      settings = settings || coalesce($4::jsonb, '{}'::jsonb)
               WHERE site_id = $1 AND agent_id = $2""",
            site_id,
            agent_id,
            locale,
            settings,
        )

    async def touch(self, agent_id: str, now: datetime) -> None:
        """The agent's console is still there."""
        await self.conn.execute(
            "UPDATE chat.agents SET last_seen_at = $2 WHERE agent_id = $1", agent_id, now
        )

    async def stale(self, before: datetime) -> list[Row]:
        """(agent_id, site_id) of agents of every site, not offline, unseen since `before`."""
        rows: list[Row] = await self.conn.fetch(
            """SELECT agent_id, site_id FROM chat.agents
               WHERE status <> 'offline' AND (last_seen_at IS NULL OR last_seen_at < $1)""",
            before,
        )
        return rows

    async def go_offline(self, agent_id: str) -> None:
        """The agent's console went silent (when they were last seen stays as it was)."""
        await self.conn.execute(
            "UPDATE chat.agents SET status = 'offline' WHERE agent_id = $1", agent_id
        )


class DirectoryStore:
    """The agents as `agents.directory` lists them (chat.agents.directory)."""

    _ENTRY = """SELECT a.agent_id, a.site_id, a.email, a.name, a.locale, a.role,
                       a.deactivated_at, a.directory_version, a.directory_card,
                       ARRAY(SELECT m.team FROM chat.team_members m
                             WHERE m.agent_id = a.agent_id ORDER BY m.team) AS teams
                FROM chat.agents a"""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def lock(self, agent_ids: list[str]) -> None:
        """Hold the agents' rows until the transaction ends (in one order: no deadlock)."""
        await self.conn.execute(
            """SELECT 1 FROM chat.agents WHERE agent_id = ANY($1::text[])
               ORDER BY agent_id FOR UPDATE""",
            agent_ids,
        )

    async def entries(self, agent_ids: list[str] | None = None) -> list[Row]:
        """The agents (all of every site when `agent_ids` is None) with their listed card."""
        rows: list[Row] = await self.conn.fetch(
            self._ENTRY
            + " WHERE $1::text[] IS NULL OR a.agent_id = ANY($1::text[]) ORDER BY a.agent_id",
            agent_ids,
        )
        return rows

    async def listed(self, agent_id: str, card: str) -> int:
        """Keep the card (JSON text) as listed, under the next version; returns it."""
        version: int = await self.conn.fetchval(
            """UPDATE chat.agents SET directory_card = $2::jsonb,
                                      directory_version = directory_version + 1
               WHERE agent_id = $1 RETURNING directory_version""",
            agent_id,
            card,
        )
        return version
