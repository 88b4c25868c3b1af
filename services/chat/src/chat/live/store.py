"""What the live feature reads and writes in Postgres: the inviting agent, whether the visitor
already chats, the personal invitation itself, and (at start-up, across every site) what the
live list must know that `visitors.state` does not tell yet."""

from __future__ import annotations

from typing import Any

import asyncpg

from chat import views
from chat.adapters import store

Row = Any  # asyncpg.Record (asyncpg ships no type hints)


class LiveStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def agent(self, site_id: str, agent_id: str) -> Row | None:
        """The agent with their status, teams, name and avatar (None: no such agent)."""
        return await store.agent(self.conn, site_id, agent_id)

    async def chatting(self, site_id: str, visitor_id: str) -> bool:
        """The visitor has a queued or open conversation."""
        return await store.live_conversation(self.conn, site_id, visitor_id) is not None

    async def default_team(self, site_id: str) -> str:
        """The team of the site's invitations from agents in no team."""
        site = await store.site_by_id(self.conn, site_id)
        assert site is not None
        return str(views.site(site)["default_team"])

    async def insert_invitation(self, values: dict[str, Any]) -> None:
        await store.insert_invitation(self.conn, values)

    async def chat_news(self, *, invited_within_s: float) -> tuple[list[Row], list[Row]]:
        """Every site's visitors chatting now (site_id, visitor_id, email) and the visitors
        personally invited within the window (site_id, visitor_id, at)."""
        chatting = await self.conn.fetch(
            """SELECT DISTINCT c.site_id, c.visitor_id, v.email
               FROM chat.conversations c
               LEFT JOIN chat.visitors v USING (site_id, visitor_id)
               WHERE c.status IN ('queued', 'open')"""
        )
        invited = await self.conn.fetch(
            """SELECT site_id, visitor_id, max(created_at) AS at FROM chat.invitations
               WHERE personal AND created_at > now() - make_interval(secs => $1)
               GROUP BY site_id, visitor_id""",
            invited_within_s,
        )
        return list(chatting), list(invited)
