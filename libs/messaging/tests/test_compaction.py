"""The compacted topics are really compacted: once the log cleaner has run, the older values of a
key are gone from the log, and a reader starting late gets only the latest value per key.

Each test runs on a twin of the registry topic (its configs, created the way the session's
topics are), so the services' consumers on the real topic never read its test values."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from beckon_contracts import topics
from beckon_contracts.topics import Topic
from beckon_devstack.pytest_plugin import COMPACTED_SEGMENT_MS
from beckon_messaging import CompactedTopicFollower, ensure_topics, make_producer

pytestmark = pytest.mark.integration

VERSIONS = 5
DEADLINE_S = 180  # generous: the cleaner looks every second (beckon_devstack.kafka)


async def _log(bootstrap: str, partitions: list[TopicPartition]) -> list[tuple[bytes, bytes]]:
    """Every record now in these partitions, from the beginning to the end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[tuple[bytes, bytes]] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(*partitions, timeout_ms=1000)
            for records in batches.values():
                found.extend((record.key, record.value) for record in records)
        return found
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    "topic",
    [topics.VISITORS_STATE, topics.AGENTS_PRESENCE, topics.RULES_CONFIG],
    ids=lambda topic: topic.name,
)
async def test_a_late_reader_sees_the_latest_value_per_key_after_compaction(
    kafka_bootstrap: str, topic: Topic
) -> None:
    run = uuid.uuid4().hex[:8]
    topic = replace(topic, name=f"test.{topic.name}.{run}")
    await ensure_topics(kafka_bootstrap, [topic], compacted_segment_ms=COMPACTED_SEGMENT_MS)
    keys = [f"compaction-{run}:{n}".encode() for n in range(3)]
    producer = make_producer(kafka_bootstrap, "compaction-test", idempotent=True)
    await producer.start()
    try:
        partitions: set[int] = set()
        for version in range(VERSIONS):
            for key in keys:
                sent = await producer.send_and_wait(topic.name, f"v{version}".encode(), key=key)
                partitions.add(sent.partition)
        assigned = [TopicPartition(topic.name, number) for number in sorted(partitions)]

        # The cleaner never touches a partition's active segment; an append after the topic's
        # segment.ms rolls it. So keep appending a tick per partition until the older values
        # of our keys are gone from the log (or the deadline passes: then it never compacted).
        deadline = time.monotonic() + DEADLINE_S
        while True:
            for number in partitions:
                tick = f"compaction-{run}:tick".encode()
                await producer.send_and_wait(topic.name, b"tick", key=tick, partition=number)
            values: dict[bytes, list[bytes]] = defaultdict(list)
            for key, value in await _log(kafka_bootstrap, assigned):
                if key in keys:
                    values[key].append(value)
            if all(values[key] == [f"v{VERSIONS - 1}".encode()] for key in keys):
                break
            assert time.monotonic() < deadline, f"{topic.name} not compacted: {dict(values)}"
            await asyncio.sleep(0.5)
    finally:
        await producer.stop()

    seen: dict[bytes, list[bytes | None]] = defaultdict(list)

    def on_record(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.key in keys:
            seen[record.key].append(record.value)

    late = CompactedTopicFollower(kafka_bootstrap, topic, on_record, client_id="late-reader")
    await late.start()
    try:
        assert await late.wait_caught_up(60)
    finally:
        await late.stop()
    assert dict(seen) == {key: [f"v{VERSIONS - 1}".encode()] for key in keys}
