"""Reading what landed on a topic, for tests and tools."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

Record: TypeAlias = ConsumerRecord


async def read_records(
    bootstrap: str,
    topic: str,
    *,
    match: Callable[[Record], bool] = lambda _record: True,
    count: int = 1,
    until: Callable[[list[Record]], bool] | None = None,
    drain: bool = False,
    timeout_s: float = 30.0,
) -> list[Record]:
    """Read the topic from the beginning until enough records satisfy `match`.

    Enough is `count` of them, or `until(found)` when given. With `drain`, reading then goes on
    to every partition's high watermark, so late duplicates are seen too. Returns the matching
    records in the order read; raises TimeoutError saying how many were found, so a failing
    test says what was missing.
    """
    done = until or (lambda found: len(found) >= count)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        # A consumer's own metadata only covers topics it subscribed to: ask for all of them.
        partitions = (await consumer._client.fetch_all_metadata()).partitions_for_topic(topic)
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic!r} does not exist")
            await asyncio.sleep(0.1)
            metadata = await consumer._client.fetch_all_metadata()
            partitions = metadata.partitions_for_topic(topic)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: list[Record] = []
        satisfied = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                wanted = "the condition" if until else f"{count}"
                raise TimeoutError(
                    f"found {len(found)} matching records on {topic!r}; wanted {wanted}"
                    + (" and a drained topic" if satisfied else "")
                )
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batches.values():
                found.extend(record for record in records if match(record))
            satisfied = satisfied or done(found)
            if satisfied and (not drain or await _caught_up(consumer, assigned)):
                return found
    finally:
        await consumer.stop()


async def _caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    for tp in partitions:
        highwater = consumer.highwater(tp)
        if highwater is not None and await consumer.position(tp) < highwater:
            return False
    return True
