"""The unit of work: every chat use case runs inside one.

    async with uow(site_id, lock=True) as tx:
        conversations = tx.store(ConversationStore)
        ...
        tx.emit("conversation.assigned", visitor_id, key, ...)
        await tx.agent_changed(agent_id)

It owns the connection and the transaction. While it is open it collects what the change
must tell the world: outbox records (`emit`, `publish`), teams whose presence changed and
agents whose consoles must hear of it (`agent_changed`), agents whose directory card may have
changed (`agent_listed`: chat.agents.directory). On a clean exit it stores the
teams' presence and the outbox in the same transaction and commits; then it wakes the outbox
relay (when it stored records) and tells the agents' consoles. On an exception nothing of it
happened.

`lock=True` holds the site's assignment lock for the transaction: every change that moves a
conversation between queue and agents takes it, so concurrent requests on any number of
instances never put an agent above their limit.

`uow.read(site_id)` is the same without a transaction, for use cases that only read (it
refuses to emit). Stores are classes built on the connection (`tx.store(Kind)`), so a use
case can be run against fakes in a unit test (`tests/fake_uow.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

import asyncpg
import orjson
from beckon_contracts.presence import AgentPresence
from beckon_observability import continued_span, trace_carrier
from opentelemetry import trace

from chat import outbox
from chat.adapters import store
from chat.agents import directory
from chat.agents.store import DirectoryStore
from chat.outbox import OutboxRecord

S = TypeVar("S")
# the site a unit names when its queries span every site (a login by e-mail, the presence
# sweep, the live list's start-up read, the sites.config fill) or its site is not known yet
# (a set-password link); such a unit must not `emit` chat events (they belong to one site)
EVERY_SITE = "*"
tracer = trace.get_tracer("chat")


class UnitOfWork:
    """One use case's transaction on one site, and what it will tell the world."""

    def __init__(self, conn: asyncpg.Connection, site_id: str, *, writes: bool = True) -> None:
        self.conn = conn
        self.site_id = site_id
        self.writes = writes
        self.records: list[OutboxRecord] = []
        self.teams: set[str] = set()  # whose presence to republish
        self.agents: set[str] = set()  # whose consoles hear of the change
        self.listed: set[str] = set()  # whose directory card may have changed
        self.trace: dict[str, str] | None = None  # None: the current span's (the request's)
        self._stores: dict[Callable[[asyncpg.Connection], Any], Any] = {}

    def store(self, kind: Callable[[asyncpg.Connection], S]) -> S:
        """The store `kind` on this unit's connection (one per unit)."""
        found = self._stores.get(kind)
        if found is None:
            found = self._stores[kind] = kind(self.conn)
        return found  # type: ignore[no-any-return]

    def emit(self, kind: str, visitor_id: str, key: str, **payload: Any) -> None:
        """A fact of this site's chat, for `chat.events` once committed."""
        if self.site_id == EVERY_SITE:
            raise RuntimeError("a unit of work that spans every site cannot emit chat events")
        self.publish(
            outbox.chat_event(
                kind, site_id=self.site_id, visitor_id=visitor_id, payload=payload, key=key
            )
        )

    def publish(self, *records: OutboxRecord) -> None:
        """Records for any topic (e.g. `rules.config`), published once committed."""
        if not self.writes:
            raise RuntimeError("a read-only unit of work cannot publish")
        self.records.extend(records)

    async def agent_changed(self, agent_id: str) -> None:
        """The agent's load or status changed: their teams' presence is republished and
        their consoles hear of it."""
        self.agents.add(agent_id)
        for team in await self.conn.fetch(
            "SELECT team FROM chat.team_members WHERE agent_id = $1", agent_id
        ):
            self.teams.add(team["team"])

    def agent_listed(self, agent_id: str) -> None:
        """The agent's e-mail, name, language, role, teams or activity may have changed:
        their `agents.directory` card is compared and republished if it did."""
        if not self.writes:
            raise RuntimeError("a read-only unit of work cannot publish")
        self.listed.add(agent_id)

    def continue_invitation_trace(self, invitation: asyncpg.Record, what: str) -> None:
        """This transaction's facts go on in the invitation's trace (tracker → triggers →
        chat → the widget's answer), marked by a span linked to the request's."""
        stored = orjson.loads(invitation["trace"] or "{}")
        with continued_span(tracer, what, stored):
            self.trace = trace_carrier()

    async def finish(self) -> None:
        """Store the teams' presence, the changed directory cards and the outbox (inside
        the transaction)."""
        if self.listed:
            self.records.extend(await directory.relist(self.store(DirectoryStore), self.listed))
        for team in sorted(self.teams):
            members = await store.team_members(self.conn, self.site_id, team)
            self.records.append(
                outbox.team_presence(
                    site_id=self.site_id,
                    team=team,
                    agents=[
                        AgentPresence(
                            agent_id=row["agent_id"],
                            name=row["name"],
                            avatar_url=row["avatar_url"],
                            status=row["status"],
                            open_chats=row["open_chats"],
                            max_chats=row["max_chats"],
                        )
                        for row in members
                    ],
                )
            )
        await store.add_outbox(self.conn, self.records, trace=self.trace)


class UnitsOfWork(Protocol):
    """What a use case is given to open units of work (`uow(site_id)`, `uow.read(site_id)`)."""

    def __call__(self, site_id: str, *, lock: bool = False) -> Any: ...

    def read(self, site_id: str) -> Any: ...


class UnitOfWorkFactory:
    """Opens units of work on the pool; after each commit wakes the relay and tells agents."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        on_commit: Callable[[], None],
        on_agents_changed: Callable[[str, Iterable[str]], Awaitable[None]],
    ) -> None:
        self.pool = pool
        self._on_commit = on_commit
        self._on_agents_changed = on_agents_changed

    @asynccontextmanager
    async def __call__(self, site_id: str, *, lock: bool = False) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction():
            if lock:
                await store.lock_site(conn, site_id)
            tx = UnitOfWork(conn, site_id)
            yield tx
            await tx.finish()
        await self.committed(tx)

    @asynccontextmanager
    async def read(self, site_id: str) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn:
            yield UnitOfWork(conn, site_id, writes=False)

    async def committed(self, tx: UnitOfWork) -> None:
        """What follows a committed unit: the relay publishes, consoles hear of agents."""
        if tx.records:
            self._on_commit()
        if tx.agents:
            await self._on_agents_changed(tx.site_id, tx.agents)
