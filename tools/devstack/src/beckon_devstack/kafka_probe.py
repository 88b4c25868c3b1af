"""Reading what landed on a topic, for tests and tools (Tansu-safe: no end_offsets())."""

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
    count: int,
    timeout_s: float = 30.0,
) -> list[Record]:
    """Read the topic from the beginning until `count` records satisfy `match` (or time out).

    Returns the matching records in partition-then-offset order as read; raises TimeoutError
    naming how many were found, so a failing test says what was missing.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        deadline = time.monotonic() + timeout_s
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic!r} does not exist")
            await consumer.client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            await asyncio.sleep(0.1)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        found: list[Record] = []
        while len(found) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"found {len(found)} of {count} matching records on {topic!r}")
            batches = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for records in batches.values():
                found.extend(record for record in records if match(record))
        return found
    finally:
        await consumer.stop()
