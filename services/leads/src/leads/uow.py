"""The unit of work: every leads use case runs inside one.

    async with uow(site_id, teams=[lead.team]) as tx:
        if not await tx.first_delivery("capture", event.event_id):
            return  # a redelivered event: its effects were committed before
        leads = tx.store(LeadStore)
        ...
        tx.publish(record)  # an OutboxRecord built from the leads.events contract

It owns the connection and the transaction. While it is open it collects the outbox records
the change must publish; on a clean exit it lets its stores write what they held back
(a store's `flush()`, e.g. the leads' event numbers and the webhook deliveries, one query
each), stores the records in the same transaction and commits, then wakes the outbox relay
(when it stored records). On an exception nothing of it happened.

`teams=[...]` (or `await tx.lock_team(team)` once the team is known, e.g. after routing)
holds those teams' assignment locks until the transaction ends: every change that moves a
lead between a team's queue and its agents takes it, so concurrent captures, claims and
timers on any number of instances never put an agent above their cap or reorder the queue.
Take several teams' locks together (`teams=`, taken in sorted order) rather than one after
another, so two units never wait for each other.

`uow.read(site_id)` is the same without a transaction, for use cases that only read (it
refuses to publish). Stores are classes built on the connection (`tx.store(Kind)`), so a use
case can be run against fakes in a unit test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

import asyncpg
from beckon_messaging.outbox import OutboxRecord, add_outbox

from leads.adapters.bus import OUTBOX_TABLE

S = TypeVar("S")
# the site a unit names when its queries span every site (due timers, the webhook queue)
EVERY_SITE = "*"


def team_lock_key(site_id: str, team: str) -> str:
    """The text whose 64-bit hash is the advisory lock of one team's assignments."""
    return f"beckon.leads.assign:{site_id}:{team}"


class UnitOfWork:
    """One use case's transaction on one site, and what it will publish."""

    def __init__(self, conn: asyncpg.Connection, site_id: str, *, writes: bool = True) -> None:
        self.conn = conn
        self.site_id = site_id
        self.writes = writes
        self.records: list[OutboxRecord] = []
        self.trace: dict[str, str] | None = None  # None: the current span's (the request's)
        self.locked_teams: set[str] = set()
        self._stores: dict[Callable[[asyncpg.Connection], Any], Any] = {}

    def store(self, kind: Callable[[asyncpg.Connection], S]) -> S:
        """The store `kind` on this unit's connection (one per unit)."""
        found = self._stores.get(kind)
        if found is None:
            found = self._stores[kind] = kind(self.conn)
        return found  # type: ignore[no-any-return]

    def publish(self, *records: OutboxRecord) -> None:
        """Records for any topic (e.g. `leads.events`), published once committed."""
        if not self.writes:
            raise RuntimeError("a read-only unit of work cannot publish")
        self.records.extend(records)

    async def lock_team(self, *teams: str) -> None:
        """Hold these teams' assignment locks until the transaction ends (sorted order)."""
        if not self.writes:
            raise RuntimeError("a read-only unit of work has no transaction to lock in")
        if self.site_id == EVERY_SITE:
            raise RuntimeError("a team's lock belongs to one site: open the unit on it")
        for team in sorted(set(teams) - self.locked_teams):
            await self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                team_lock_key(self.site_id, team),
            )
            self.locked_teams.add(team)

    async def first_delivery(self, consumer: str, event_id: UUID) -> bool:
        """Whether `consumer` handles this event for the first time (recorded in this
        transaction: a redelivery after the commit answers False, one after a rollback True)."""
        if not self.writes:
            raise RuntimeError("a read-only unit of work cannot record a processed event")
        inserted = await self.conn.fetchval(
            """INSERT INTO leads.processed_events (consumer, event_id) VALUES ($1, $2)
               ON CONFLICT DO NOTHING RETURNING true""",
            consumer,
            event_id,
        )
        return bool(inserted)

    async def first_deliveries(self, consumer: str, event_ids: list[UUID]) -> set[UUID]:
        """`first_delivery` for many events in one query: the ids handled for the first
        time (an id twice in `event_ids` is in the answer once: only its first is new)."""
        if not self.writes:
            raise RuntimeError("a read-only unit of work cannot record a processed event")
        if not event_ids:
            return set()
        rows = await self.conn.fetch(
            """INSERT INTO leads.processed_events (consumer, event_id)
               SELECT $1, id FROM unnest($2::uuid[]) AS id
               ON CONFLICT DO NOTHING RETURNING event_id""",
            consumer,
            event_ids,
        )
        return {row["event_id"] for row in rows}

    async def flush(self) -> None:
        """Write what the unit's stores held back (each store's `flush`). `finish` does it;
        a unit nested on another's transaction, whose records that one publishes, calls it
        itself."""
        for store in self._stores.values():
            flush = getattr(store, "flush", None)
            if flush is not None:
                await flush()

    async def finish(self) -> None:
        """Write what the stores held back and store the outbox records (inside the
        transaction)."""
        await self.flush()
        await add_outbox(self.conn, OUTBOX_TABLE, self.records, trace=self.trace)


class UnitsOfWork(Protocol):
    """What a use case is given to open units of work (`uow(site_id)`, `uow.read(site_id)`)."""

    def __call__(self, site_id: str, *, teams: Iterable[str] = ()) -> Any: ...

    def read(self, site_id: str) -> Any: ...


class UnitOfWorkFactory:
    """Opens units of work on the pool; after each commit that stored records wakes the
    relay (`on_commit`)."""

    def __init__(self, pool: asyncpg.Pool, *, on_commit: Callable[[], None]) -> None:
        self.pool = pool
        self._on_commit = on_commit

    @asynccontextmanager
    async def __call__(
        self, site_id: str, *, teams: Iterable[str] = ()
    ) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction():
            tx = UnitOfWork(conn, site_id)
            wanted = tuple(teams)
            if wanted:  # a unit on EVERY_SITE has none (lock_team refuses it)
                await tx.lock_team(*wanted)
            yield tx
            await tx.finish()
        if tx.records:
            self._on_commit()

    @asynccontextmanager
    async def read(self, site_id: str) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn:
            yield UnitOfWork(conn, site_id, writes=False)
