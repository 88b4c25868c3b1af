"""The compacted-topic follower on a real broker: reads what was there from the beginning,
says when it has, keeps following, and one record its callback raises on stops nothing."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.topics import SITES_CONFIG
from beckon_messaging import CompactedTopicFollower

pytestmark = pytest.mark.integration


async def test_reads_from_the_beginning_then_follows_past_a_bad_record(kafka_bootstrap):
    run = uuid.uuid4().hex[:8]
    keys = [f"{run}-{n}".encode() for n in range(4)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    seen: list[tuple[bytes, bytes | None]] = []
    late = asyncio.Event()

    def on_record(record):
        if record.key is None or not record.key.startswith(run.encode()):
            return  # other tests' records on the shared broker
        if record.value == b"boom":
            raise ValueError("a record the callback cannot use")
        seen.append((record.key, record.value))
        if record.key == keys[3]:
            late.set()

    follower = CompactedTopicFollower(kafka_bootstrap, SITES_CONFIG, on_record, client_id="t")
    try:
        await producer.send_and_wait(SITES_CONFIG.name, b"first", key=keys[0])
        await producer.send_and_wait(SITES_CONFIG.name, b"boom", key=keys[1])
        await producer.send_and_wait(SITES_CONFIG.name, None, key=keys[2])  # a tombstone
        await follower.start()
        assert await follower.wait_caught_up(30)
        assert seen == [(keys[0], b"first"), (keys[2], None)]

        await producer.send_and_wait(SITES_CONFIG.name, b"later", key=keys[3])
        await asyncio.wait_for(late.wait(), 30)
        assert seen[-1] == (keys[3], b"later")
    finally:
        await follower.stop()
        await producer.stop()
