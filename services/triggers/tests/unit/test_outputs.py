"""Outputs while the broker is away: the stage waits and sends the same records again (a
restarted broker), and fails only on what waiting cannot cure."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    UnknownTopicOrPartitionError,
)
from triggers.adapters import outputs
from triggers.adapters.outputs import Outputs


class Batch:
    def __init__(self) -> None:
        self.records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = []

    def append(self, *, key: bytes, value: bytes, timestamp: None, headers: Any) -> object:
        self.records.append((key, value, headers))
        return object()


class AwayProducer:
    """Fails as aiokafka does while the broker is down, in the order given, then delivers."""

    def __init__(self, *failures: tuple[str, BaseException]) -> None:
        self.failures = list(failures)
        self.delivered: list[tuple[str, int, bytes]] = []

    def _fail(self, step: str) -> BaseException | None:
        if self.failures and self.failures[0][0] == step:
            return self.failures.pop(0)[1]
        return None

    def create_batch(self) -> Batch:
        return Batch()

    async def partitions_for(self, topic: str) -> set[int]:
        if (error := self._fail("metadata")) is not None:
            raise error
        return {0, 1, 2}

    def _partitioner(self, key: bytes, partitions: list[int], available: list[int]) -> int:
        return 1

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[None]:
        if (error := self._fail("send")) is not None:
            raise error
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if (error := self._fail("ack")) is not None:
            future.set_exception(error)
        else:
            self.delivered.extend((topic, partition, value) for _, value, _ in batch.records)
            future.set_result(None)
        return future


def _outputs(producer: AwayProducer) -> Outputs:
    out = Outputs("127.0.0.1:1", "test")
    out._producer = producer  # type: ignore[assignment]
    return out


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs, "RETRY_FIRST_S", 0.0, raising=False)


async def test_records_are_sent_again_until_a_returning_broker_takes_them() -> None:
    producer = AwayProducer(
        ("metadata", UnknownTopicOrPartitionError()),  # no metadata while it is down
        ("send", KafkaConnectionError("Connection refused")),
        ("ack", KafkaTimeoutError("Batch is expired")),  # written or not: sent again
    )
    out = _outputs(producer)
    await out.send("chat.invitations", "site:v1", b"one")
    await out.send("chat.invitations", "site:v1", b"two")
    await out.flush()
    assert producer.delivered == [("chat.invitations", 1, b"one"), ("chat.invitations", 1, b"two")]
    assert out.retries == 3


async def test_what_waiting_cannot_cure_fails_the_flush() -> None:
    producer = AwayProducer(("ack", MessageSizeTooLargeError()))
    out = _outputs(producer)
    await out.send("chat.invitations", "site:v1", b"one")
    with pytest.raises(MessageSizeTooLargeError):
        await out.flush()
    assert producer.delivered == []
