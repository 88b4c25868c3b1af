"""A fetch asks aiokafka for the partitions active when it began, not for Faust's live set."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP
from triggers.adapters.faust_consumer import App, Consumer, Transport

STREAM = TP("tracking.events", 0)
CHANGELOG = TP("triggers-visitors-changelog", 0)


class FetchThread:
    """aiokafka's `fetched_records` as Faust's consumer thread calls it: it waits for records,
    then returns the buffered ones of the partitions asked for, or of *every* partition when
    the set it holds is empty."""

    def __init__(self, buffered: dict[TP, list[str]], while_waiting: Any) -> None:
        self.buffered = buffered
        self.while_waiting = while_waiting

    async def getmany(self, partitions: Any, timeout: float) -> dict[TP, list[str]]:
        await asyncio.sleep(0)
        self.while_waiting()  # Faust pauses and resumes partitions meanwhile
        return {tp: r for tp, r in self.buffered.items() if not partitions or tp in partitions}


async def test_a_fetch_that_wakes_while_faust_has_paused_everything_drains_nothing_else() -> None:
    # End of table recovery: the changelog partition is paused and the stream partition is not
    # resumed yet, so Faust's live set of active partitions is empty for a moment.
    live = {CHANGELOG}
    consumer = Consumer.__new__(Consumer)
    consumer._thread = FetchThread(  # type: ignore[assignment]
        {STREAM: ["event 0", "event 1"], CHANGELOG: ["row"]}, while_waiting=live.clear
    )

    records = await consumer._getmany(live, timeout=1.0)

    # The stream's records stay in aiokafka's buffer (its position does not move past them);
    # with the live set passed on they came back here and Faust dropped them as not active.
    assert records == {CHANGELOG: ["row"]}


async def test_the_partitions_asked_for_are_a_copy() -> None:
    asked: list[Any] = []

    class Thread:
        async def getmany(self, partitions: Any, timeout: float) -> dict[TP, list[str]]:
            asked.append(partitions)
            return {}

    consumer = Consumer.__new__(Consumer)
    consumer._thread = Thread()  # type: ignore[assignment]
    live = {STREAM}
    await consumer._getmany(live, timeout=1.0)
    await consumer._getmany(None, timeout=1.0)  # client-only apps ask for everything

    assert asked == [{STREAM}, None]
    assert asked[0] is not live


def test_the_app_runs_on_this_consumer() -> None:
    app = App("faust-consumer-test", broker="kafka://localhost:9092")
    assert isinstance(app.transport, Transport)
    assert app.transport.Consumer is Consumer
