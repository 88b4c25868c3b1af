"""The unit of work: every notifier use case runs inside one.

    async with uow(site_id) as tx:
        if not await tx.first_delivery("intake", event.event_id):
            return  # a redelivered event: its e-mails were intended before
        await emails.intend(tx, intent)  # an e-mail row, unique by its idempotency key
        tx.publish(record)  # an OutboxRecord built from a contract (chat.inbound, a DLQ)

It owns the connection and the transaction. On a clean exit it lets its stores write what
they held back (a store's `flush()`: the site's hourly count), stores the outbox records in
the same transaction and commits, then wakes the outbox relay (records stored) and the
sender (e-mails intended). On an exception nothing of it happened.

`uow.alone(site_id)` is a unit without a transaction, for a use case that is one statement
and must be in effect the moment Postgres has it (the sender's results: no BEGIN or COMMIT
round trip between the SMTP server's 250 and the write); it neither publishes nor records
deliveries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar
from uuid import UUID

import asyncpg
from beckon_messaging.outbox import OutboxRecord, add_outbox

from notifier.adapters.bus import OUTBOX_TABLE

S = TypeVar("S")
EVERY_SITE = "*"  # a unit whose queries span every site (the sender's claims)


class UnitOfWork:
    """One use case's transaction on one site, and what it will publish."""

    def __init__(
        self, conn: asyncpg.Connection, site_id: str, *, writes: bool = True, alone: bool = False
    ) -> None:
        self.conn = conn
        self.site_id = site_id
        self.writes = writes
        self.alone = alone  # no transaction: each statement commits by itself
        self.records: list[OutboxRecord] = []
        self.intended = 0  # e-mails this unit made due (wakes the sender)
        self._stores: dict[Callable[[asyncpg.Connection], Any], Any] = {}

    def store(self, kind: Callable[[asyncpg.Connection], S]) -> S:
        """The store `kind` on this unit's connection (one per unit)."""
        found = self._stores.get(kind)
        if found is None:
            found = self._stores[kind] = kind(self.conn)
        return found  # type: ignore[no-any-return]

    def publish(self, *records: OutboxRecord) -> None:
        if not self.writes or self.alone:
            raise RuntimeError("only a unit of work with a transaction can publish")
        self.records.extend(records)

    async def first_delivery(self, consumer: str, event_id: UUID) -> bool:
        """Whether `consumer` handles this event for the first time (recorded in this
        transaction: a redelivery after the commit answers False, one after a rollback True)."""
        self._in_a_transaction()
        inserted = await self.conn.fetchval(
            """INSERT INTO notifier.processed_events (consumer, event_id) VALUES ($1, $2)
               ON CONFLICT DO NOTHING RETURNING true""",
            consumer,
            event_id,
        )
        return bool(inserted)

    async def first_deliveries(self, consumer: str, event_ids: list[UUID]) -> set[UUID]:
        """`first_delivery` for many events in one query: the ids handled for the first time
        (an id twice in `event_ids` is in the answer once: only its first is new)."""
        self._in_a_transaction()
        rows = await self.conn.fetch(
            """INSERT INTO notifier.processed_events (consumer, event_id)
               SELECT $1, id FROM unnest($2::uuid[]) AS id
               ON CONFLICT DO NOTHING RETURNING event_id""",
            consumer,
            event_ids,
        )
        return {row["event_id"] for row in rows}

    def _in_a_transaction(self) -> None:
        if not self.writes or self.alone:
            raise RuntimeError("a processed event is recorded only in a unit with a transaction")

    async def flush(self) -> None:
        """Write what the unit's stores held back (each store's `flush`), before the commit."""
        for store in self._stores.values():
            flush = getattr(store, "flush", None)
            if flush is not None:
                await flush()


class UnitsOfWork(Protocol):
    def __call__(self, site_id: str) -> Any: ...

    def read(self, site_id: str) -> Any: ...

    def alone(self, site_id: str) -> Any: ...


class UnitOfWorkFactory:
    """Opens units of work on the pool; after a commit wakes the relay (records stored) and
    the sender (e-mails due)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        on_records: Callable[[], None] = lambda: None,
        on_emails: Callable[[], None] = lambda: None,
    ) -> None:
        self.pool = pool
        self.on_records = on_records
        self.on_emails = on_emails

    @asynccontextmanager
    async def __call__(self, site_id: str) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction():
            tx = UnitOfWork(conn, site_id)
            yield tx
            await tx.flush()
            await add_outbox(conn, OUTBOX_TABLE, tx.records)
        if tx.records:
            self.on_records()
        if tx.intended:
            self.on_emails()

    @asynccontextmanager
    async def read(self, site_id: str) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn:
            yield UnitOfWork(conn, site_id, writes=False)

    @asynccontextmanager
    async def alone(self, site_id: str) -> AsyncIterator[UnitOfWork]:
        """A unit whose statements each commit by themselves (see the module's text)."""
        async with self.pool.acquire() as conn:
            yield UnitOfWork(conn, site_id, alone=True)
