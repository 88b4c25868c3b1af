"""The reports' SQL: every query scoped by site, `$n` parameters, bounded.

Work is bounded three ways: a period is at most 366 days (domain.parse_period), the rows read
are capped (MAX_CONVERSATIONS, MAX_ORDERS; a report that hit a cap says `truncated`), and each
report runs in one read-only transaction with a statement timeout.

`ReportsStore` is built on a unit of work's connection (`tx.store(ReportsStore)`); the reports
read through `uow.read`, and the store opens the read-only transaction itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg

from chat.reports.domain import (
    Assignment,
    Attribution,
    Conversation,
    Message,
    Order,
    Period,
    Report,
    attribute,
)

MAX_CONVERSATIONS = 200_000
MAX_ORDERS = 200_000
BATCH = 1_000
STATEMENT_TIMEOUT = "20s"
T = TypeVar("T")


def _chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _conversation(row: asyncpg.Record, assignments: Sequence[Assignment] = ()) -> Conversation:
    return Conversation(
        conversation_id=str(row["conversation_id"]),
        visitor_id=row["visitor_id"],
        agent_id=row["agent_id"],
        team=row["team"],
        created_at=row["created_at"],
        assigned_at=row["assigned_at"],
        closed_at=row["closed_at"],
        assignments=tuple(assignments),
    )


@dataclass
class Loaded:
    attributions: list[Attribution]
    truncated: bool


class ReportsStore:
    """The reports' queries on one connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def role(self, site_id: str, agent_id: str) -> str | None:
        """The agent's role on the site (None: no such agent)."""
        role: str | None = await self.conn.fetchval(
            "SELECT role FROM chat.agents WHERE site_id = $1 AND agent_id = $2", site_id, agent_id
        )
        return role

    async def names(self, site_id: str) -> tuple[dict[str, str], dict[str, str]]:
        """(agent id -> name, team -> name) of the site."""
        agents = await self.conn.fetch(
            "SELECT agent_id, name FROM chat.agents WHERE site_id = $1", site_id
        )
        teams = await self.conn.fetch(
            "SELECT team, name FROM chat.teams WHERE site_id = $1", site_id
        )
        return (
            {row["agent_id"]: row["name"] for row in agents},
            {row["team"]: row["name"] for row in teams},
        )

    async def team_members(self, site_id: str) -> dict[str, int]:
        """How many agents each team of the site has."""
        rows = await self.conn.fetch(
            """SELECT team, count(*) AS members FROM chat.team_members
               WHERE site_id = $1 GROUP BY team""",
            site_id,
        )
        return {row["team"]: int(row["members"]) for row in rows}

    async def group_report(
        self,
        site_id: str,
        report: Report,
        period: Period,
        *,
        window: timedelta,
        now: datetime,
    ) -> bool:
        """Fill `report` (per agent or per team) for the period; True when a cap was hit."""
        async with self.conn.transaction(readonly=True):
            await self._begin()
            rows, truncated = await self._overlapping_conversations(site_id, period)
            for chunk in _chunks(rows):
                ids = [row["conversation_id"] for row in chunk]
                messages = await self._messages_of(ids)
                held = await self._assignments_of(ids)
                for row in chunk:
                    conversation = _conversation(row, held.get(row["conversation_id"], ()))
                    report.add_conversation(conversation, messages.get(row["conversation_id"], []))
            loaded = await self._attributions(site_id, period, window, now)
        report.add_orders(loaded.attributions)
        return truncated or loaded.truncated

    async def assisted(
        self, site_id: str, period: Period, *, window: timedelta, now: datetime
    ) -> Loaded:
        """The period's orders, each attributed to the conversations that may have helped."""
        async with self.conn.transaction(readonly=True):
            await self._begin()
            return await self._attributions(site_id, period, window, now)

    async def _begin(self) -> None:
        await self.conn.execute(
            "SELECT set_config('statement_timeout', $1, true)", STATEMENT_TIMEOUT
        )

    async def _overlapping_conversations(
        self, site_id: str, period: Period
    ) -> tuple[list[asyncpg.Record], bool]:
        """Conversations held by an agent (now, or before a transfer or requeue) that were
        open at some point of the period."""
        rows = await self.conn.fetch(
            """SELECT c.conversation_id, c.visitor_id, c.agent_id, c.team, c.created_at,
                      c.assigned_at, c.closed_at
               FROM chat.conversations c
                WHERE c.site_id = $1 AND c.created_at < $3
                  AND (c.closed_at IS NULL OR c.closed_at >= $2)
                  AND (c.agent_id IS NOT NULL OR EXISTS (
                      SELECT 1 FROM chat.assignments s
                      WHERE s.conversation_id = c.conversation_id))
                ORDER BY c.created_at LIMIT $4""",
            site_id,
            period.start,
            period.end,
            MAX_CONVERSATIONS + 1,
        )
        return rows[:MAX_CONVERSATIONS], len(rows) > MAX_CONVERSATIONS

    async def _messages_of(self, conversation_ids: Sequence[Any]) -> dict[Any, list[Message]]:
        """Visitor and agent messages (no system lines) of some conversations, in seq order."""
        found: dict[Any, list[Message]] = {}
        rows = await self.conn.fetch(
            """SELECT conversation_id, author, agent_id, created_at FROM chat.messages
               WHERE conversation_id = ANY($1::uuid[]) AND author <> 'system'
               ORDER BY conversation_id, seq""",
            list(conversation_ids),
        )
        for row in rows:
            found.setdefault(row["conversation_id"], []).append(
                Message(row["author"], row["agent_id"], row["created_at"])
            )
        return found

    async def _assignments_of(self, conversation_ids: Sequence[Any]) -> dict[Any, list[Assignment]]:
        """Every stint of some conversations (an agent deleted since is left out), oldest
        first."""
        found: dict[Any, list[Assignment]] = {}
        rows = await self.conn.fetch(
            """SELECT conversation_id, agent_id, team, started_at, ended_at
               FROM chat.assignments
               WHERE conversation_id = ANY($1::uuid[]) AND agent_id IS NOT NULL
               ORDER BY conversation_id, started_at, assignment_id""",
            list(conversation_ids),
        )
        for row in rows:
            found.setdefault(row["conversation_id"], []).append(
                Assignment(row["agent_id"], row["team"], row["started_at"], row["ended_at"])
            )
        return found

    async def _orders_in(self, site_id: str, period: Period) -> tuple[list[Order], bool]:
        """Completed orders placed inside the period (the tracker's order id, else the
        event's)."""
        rows = await self.conn.fetch(
            """SELECT coalesce(detail->>'order_id', event_id::text) AS order_id, visitor_id,
                      occurred_at, value, currency,
                      coalesce(detail->>'reported_by', 'browser') AS reported_by,
                      coalesce(detail->>'over_cap' = 'true', false) AS over_cap
               FROM chat.activity
               WHERE site_id = $1 AND type = 'order.completed'
                 AND occurred_at >= $2 AND occurred_at < $3
               ORDER BY occurred_at LIMIT $4""",
            site_id,
            period.start,
            period.end,
            MAX_ORDERS + 1,
        )
        orders = [
            Order(
                order_id=row["order_id"],
                visitor_id=row["visitor_id"],
                at=row["occurred_at"],
                value=row["value"] if row["value"] is not None else Decimal(0),
                currency=Order.currency_of(row["currency"]),
                reported_by=row["reported_by"],
                over_cap=row["over_cap"],
            )
            for row in rows[:MAX_ORDERS]
        ]
        return orders, len(rows) > MAX_ORDERS

    async def _buyers_conversations(
        self, site_id: str, visitor_ids: Sequence[str], period: Period, window: timedelta
    ) -> list[Conversation]:
        """The buyers' conversations with an agent that could have influenced an order in
        the period (started before its end, ended no earlier than the window before its
        start)."""
        found: list[Conversation] = []
        for chunk in _chunks(sorted(set(visitor_ids))):
            rows = await self.conn.fetch(
                """SELECT c.conversation_id, c.visitor_id, c.agent_id, c.team, c.created_at,
                          c.assigned_at, c.closed_at
                    FROM chat.conversations c
                    WHERE c.site_id = $1 AND c.visitor_id = ANY($2::text[])
                      AND c.created_at < $3 AND (c.closed_at IS NULL OR c.closed_at >= $4)
                      AND (c.agent_id IS NOT NULL OR EXISTS (
                          SELECT 1 FROM chat.assignments s
                          WHERE s.conversation_id = c.conversation_id))""",
                site_id,
                list(chunk),
                period.end,
                period.start - window,
            )
            held = await self._assignments_of([row["conversation_id"] for row in rows])
            found.extend(_conversation(row, held.get(row["conversation_id"], ())) for row in rows)
        return found

    async def _attributions(
        self, site_id: str, period: Period, window: timedelta, now: datetime
    ) -> Loaded:
        orders, truncated = await self._orders_in(site_id, period)
        conversations = await self._buyers_conversations(
            site_id, [order.visitor_id for order in orders], period, window
        )
        return Loaded(attribute(orders, conversations, window=window, now=now), truncated)
