"""`caught_up` means "read to where the topic ended at start-up", not "one poll came back empty"
(a poll can come back empty while the broker is still answering slowly)."""

import asyncio
from types import SimpleNamespace

from aiokafka import TopicPartition
from beckon_contracts.topics import RULES_CONFIG
from beckon_messaging import CompactedTopicFollower

P0 = TopicPartition(RULES_CONFIG.name, 0)


class SlowBroker:
    """Answers the first poll with nothing, then the partition's two records."""

    def __init__(self) -> None:
        self.polls = [{}, {P0: [SimpleNamespace(offset=0), SimpleNamespace(offset=1)]}]
        self.at = 0

    async def getmany(self, **_: object) -> dict[TopicPartition, list[SimpleNamespace]]:
        batch = self.polls.pop(0) if self.polls else {}
        for records in batch.values():
            self.at = records[-1].offset + 1
        await asyncio.sleep(0)
        return batch

    async def position(self, partition: TopicPartition) -> int:
        return self.at


async def test_an_empty_first_poll_is_not_caught_up() -> None:
    applied: list[int] = []
    follower = CompactedTopicFollower(
        "unused:9092", RULES_CONFIG, lambda r: applied.append(r.offset)
    )
    broker = SlowBroker()
    follower._consumer = broker  # type: ignore[assignment]
    follower._ends = {P0: 2}  # the topic held two records when the follower started

    task = asyncio.create_task(follower._run())
    try:
        while broker.polls and broker.polls[0] == {}:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not follower.caught_up.is_set(), "caught up after an empty poll, nothing read"
        await asyncio.wait_for(follower.caught_up.wait(), 5)
        assert applied == [0, 1]
    finally:
        task.cancel()
