"""The live feed hands each record of chat.events and chat.signals to the socket hub. A
record whose frame needs a row and meets Postgres away is tried again, not dropped: during
the chaos battery's Postgres restart the hub's conversation lookup failed
(InternalClientError) and consoles missed a conversation they had just been given."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from chat.adapters import bus as bus_module
from chat.adapters.bus import Feed


class Hub:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0
        self.handled: list[tuple[str, dict[str, Any]]] = []

    async def handle(self, topic: str, record: dict[str, Any]) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.handled.append((topic, record))


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_module, "FEED_DATABASE_PAUSES_S", (0.01, 0.01, 0.01))


async def hand_over(hub: Hub) -> None:
    feed = Feed("b:9092", "c", hub.handle, 10)  # never started: no broker is reached
    try:
        await feed._handle("chat.events", RECORD)
    finally:
        await feed.consumer.stop()


RECORD = {"type": "conversation.assigned", "site_id": "s", "visitor_id": "v"}


async def test_a_record_that_met_the_database_away_is_handed_over_again() -> None:
    hub = Hub(
        [
            asyncpg.InternalClientError("cannot switch to state 12; another operation"),
            asyncpg.ConnectionDoesNotExistError("connection was closed in the middle"),
        ]
    )
    await hand_over(hub)
    assert hub.handled == [("chat.events", RECORD)]
    assert hub.calls == 3


async def test_a_database_away_longer_than_the_pauses_passes_the_record_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = Hub([asyncpg.CannotConnectNowError("starting up")] * 10)
    await hand_over(hub)
    assert (hub.handled, hub.calls) == ([], 4)
    assert "feed handler failed" in caplog.text


async def test_a_bug_is_not_tried_again() -> None:
    hub = Hub([KeyError("conversation_id")])
    await hand_over(hub)
    assert (hub.handled, hub.calls) == ([], 1)


async def test_the_hubs_batch_end_follows_each_batch_and_is_retried_like_a_record() -> None:
    """Work one answer serves for a whole batch (queued visitors' places) runs once after
    the batch's records, never for an empty fetch, and is tried again when Postgres blinks."""
    hub = Hub([])
    ends: list[int] = []
    failures = [asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")]

    async def batch_end() -> None:
        ends.append(len(hub.handled))
        if failures:
            raise failures.pop(0)

    feed = Feed("b:9092", "c", hub.handle, 10, batch_end=batch_end)
    record = type("Record", (), {"value": b'{"type": "conversation.closed"}'})
    fetches: list[dict[Any, list[Any]]] = [{TopicPartition("chat.events", 0): [record, record]}, {}]

    async def getmany(**_: Any) -> dict[Any, list[Any]]:
        if not fetches:
            raise asyncio.CancelledError
        return fetches.pop(0)

    feed.consumer.getmany = getmany  # type: ignore[method-assign]
    try:
        with pytest.raises(asyncio.CancelledError):
            await feed._listen()
    finally:
        await feed.consumer.stop()
    assert len(hub.handled) == 2
    assert ends == [2, 2]  # after both records; once more after the failure; not for {}
