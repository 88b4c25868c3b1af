"""A unit of work without Postgres or Kafka, for unit tests of the use cases.

    uow = FakeUnitsOfWork(stores={CannedStore: FakeCannedStore()})
    await toolkit.service.create_canned(uow=uow, agent=..., ...)
    assert uow.committed[0].records == [...]

Each `uow(site_id, lock=...)` hands out a `FakeUnitOfWork` that serves the given fake stores
(`tx.store(Kind)`), collects what the use case emits, and on a clean exit is appended to
`committed` (on an exception to `rolled_back`, and what it collected is dropped, as a real
transaction's would be). Fake stores are plain objects with the methods the use case calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
from beckon_contracts.topics import CHAT_EVENTS
from chat import outbox
from chat.outbox import OutboxRecord

S = TypeVar("S")


class FakeUnitOfWork:
    def __init__(self, site_id: str, stores: Mapping[Any, Any], *, lock: bool, writes: bool):
        self.site_id = site_id
        self.lock = lock
        self.writes = writes
        self._stores = stores
        self.records: list[OutboxRecord] = []
        self.teams: set[str] = set()
        self.agents: set[str] = set()
        self.listed: set[str] = set()  # agents whose directory card a real unit relists
        self.trace: dict[str, str] | None = None

    @property
    def conn(self) -> Any:
        raise AssertionError("a use case under a fake unit of work must use its stores")

    def store(self, kind: Callable[[Any], S]) -> S:
        try:
            found: S = self._stores[kind]
        except KeyError:
            name = getattr(kind, "__name__", kind)
            raise AssertionError(f"no fake for store {name} in this test") from None
        return found

    def emit(self, kind: str, visitor_id: str, key: str, **payload: Any) -> None:
        self.publish(
            outbox.chat_event(
                kind, site_id=self.site_id, visitor_id=visitor_id, payload=payload, key=key
            )
        )

    def publish(self, *records: OutboxRecord) -> None:
        if not self.writes:
            raise RuntimeError("a read-only unit of work cannot publish")
        self.records.extend(records)

    async def agent_changed(self, agent_id: str) -> None:
        self.agents.add(agent_id)

    def agent_listed(self, agent_id: str) -> None:
        if not self.writes:
            raise RuntimeError("a read-only unit of work cannot publish")
        self.listed.add(agent_id)

    def continue_invitation_trace(self, invitation: Any, what: str) -> None:
        self.trace = {"continued": what}

    def kinds(self) -> list[str]:
        """The kinds (`type`) of the `chat.events` records this unit emitted, in order."""
        return [
            orjson.loads(record.value)["type"]
            for record in self.records
            if record.topic == CHAT_EVENTS.name
        ]


class FakeUnitsOfWork:
    """Stands where a use case takes `uow` (chat.uow.UnitOfWorkFactory)."""

    def __init__(self, stores: Mapping[Any, Any] | None = None) -> None:
        self.stores: dict[Any, Any] = dict(stores or {})
        self.committed: list[FakeUnitOfWork] = []
        self.rolled_back: list[FakeUnitOfWork] = []
        self.reads = 0

    @asynccontextmanager
    async def __call__(self, site_id: str, *, lock: bool = False) -> AsyncIterator[FakeUnitOfWork]:
        tx = FakeUnitOfWork(site_id, self.stores, lock=lock, writes=True)
        try:
            yield tx
        except BaseException:
            self.rolled_back.append(tx)
            raise
        self.committed.append(tx)

    @asynccontextmanager
    async def read(self, site_id: str) -> AsyncIterator[FakeUnitOfWork]:
        self.reads += 1
        yield FakeUnitOfWork(site_id, self.stores, lock=False, writes=False)

    @property
    def records(self) -> list[OutboxRecord]:
        """Every record of every committed unit, in commit order."""
        return [record for tx in self.committed for record in tx.records]
