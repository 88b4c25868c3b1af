"""The worker's Faust consumer never loses records it has fetched: it asks aiokafka for a copy of
the active partitions, and what Faust would drop is sought back instead of handed over."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import IllegalStateError
from faust.types import TP
from triggers.adapters.faust_consumer import App, Consumer, Transport

STREAM = TP("tracking.events", 0)
OTHER = TP("tracking.events", 1)
CHANGELOG = TP("triggers-visitors-changelog", 0)


@dataclass
class Record:
    offset: int


def batch(*offsets: int) -> list[Record]:
    return [Record(offset) for offset in offsets]


class AioKafka:
    """The aiokafka consumer: where each partition is sought to."""

    def __init__(self, gone: set[TP] | None = None) -> None:
        self.sought: dict[TP, int] = {}
        self.gone = gone or set()

    def seek(self, tp: TP, offset: int) -> None:
        if tp in self.gone:
            raise IllegalStateError(f"No current assignment for partition {tp}")
        self.sought[tp] = offset


class ConsumerThread:
    """Faust's consumer thread around aiokafka's `fetched_records`: it waits for records (Faust
    changes its partitions and flow meanwhile), then returns the fetched ones of the partitions
    asked for, or of *every* partition when the set it holds is empty, as aiokafka does."""

    def __init__(self, fetched: dict[TP, list[Record]], meanwhile: Callable[[], None]) -> None:
        self.fetched = fetched
        self.meanwhile = meanwhile
        self.asked: list[Any] = []
        self.aiokafka = AioKafka()

    async def getmany(self, partitions: Any, timeout: float) -> dict[TP, list[Record]]:
        self.asked.append(partitions)
        await asyncio.sleep(0)
        self.meanwhile()
        return {tp: r for tp, r in self.fetched.items() if not partitions or tp in partitions}

    async def call_thread(self, fun: Callable[..., Any], *args: Any) -> Any:
        return await fun(*args)

    def _ensure_consumer(self) -> AioKafka:
        return self.aiokafka


def consumer(active: set[TP], thread: ConsumerThread) -> Consumer:
    made = Consumer.__new__(Consumer)
    made.flow_active = True
    made._active_partitions = active
    made._buffered_partitions = set()
    made._thread = thread  # type: ignore[assignment]
    return made


async def test_a_fetch_waking_while_faust_has_paused_everything_takes_nothing() -> None:
    # End of table recovery: the changelog is paused and the stream not resumed yet, so Faust's
    # live set of active partitions is empty for a moment.
    live = {CHANGELOG}
    thread = ConsumerThread({STREAM: batch(0, 1), CHANGELOG: batch(7)}, meanwhile=live.clear)
    worker = consumer(live, thread)

    records = await worker._getmany(live, timeout=1.0)

    # The stream's records stay in aiokafka (with the live set passed on, they came back here
    # and Faust dropped them); the changelog's, asked for but no longer wanted, are sought back.
    assert records == {}
    assert thread.aiokafka.sought == {CHANGELOG: 7}


async def test_records_fetched_while_a_rebalance_stopped_the_flow_are_fetched_again() -> None:
    # The broker came back, the member had expired: Faust stopped its flow for the re-join
    # while this fetch waited. Faust would drop these and seek to a commit that does not exist.
    live = {STREAM, OTHER}
    thread = ConsumerThread({STREAM: batch(0, 1, 2), OTHER: batch(5)}, meanwhile=lambda: None)
    worker = consumer(live, thread)
    thread.meanwhile = lambda: setattr(worker, "flow_active", False)

    records = await worker._getmany(live, timeout=1.0)

    assert records == {}
    assert thread.aiokafka.sought == {STREAM: 0, OTHER: 5}


async def test_records_faust_takes_are_handed_over_and_nothing_is_sought() -> None:
    live = {STREAM}
    thread = ConsumerThread({STREAM: batch(3, 4)}, meanwhile=lambda: None)
    worker = consumer(live, thread)
    worker._buffered_partitions = {OTHER}  # a full stream buffer: still taken, as Faust does
    thread.fetched[OTHER] = batch(9)

    records = await worker._getmany({STREAM, OTHER}, timeout=1.0)

    assert records == {STREAM: batch(3, 4), OTHER: batch(9)}
    assert thread.aiokafka.sought == {}


async def test_the_partitions_asked_for_are_a_copy() -> None:
    live = {STREAM}
    thread = ConsumerThread({}, meanwhile=lambda: None)
    worker = consumer(live, thread)

    await worker._getmany(live, timeout=1.0)
    await worker._getmany(None, timeout=1.0)  # client-only apps ask for everything

    assert thread.asked == [{STREAM}, None]
    assert thread.asked[0] is not live


async def test_a_partition_lost_meanwhile_is_left_to_its_next_owner() -> None:
    live = {STREAM}
    thread = ConsumerThread({STREAM: batch(0), OTHER: batch(2)}, meanwhile=lambda: None)
    thread.aiokafka.gone = {OTHER}
    worker = consumer(live, thread)

    records = await worker._getmany({STREAM, OTHER}, timeout=1.0)

    assert records == {STREAM: batch(0)}
    assert thread.aiokafka.sought == {}


def test_the_app_runs_on_this_consumer() -> None:
    app = App("faust-consumer-test", broker="kafka://localhost:9092")
    assert isinstance(app.transport, Transport)
    assert app.transport.Consumer is Consumer
