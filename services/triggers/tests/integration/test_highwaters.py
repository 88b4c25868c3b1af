"""Table recovery needs each changelog partition's true end; Tansu's ListOffsets gets it wrong
after a multi-record batch, a fetch gets it right (see triggers.adapters.faust_tuning)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from triggers.adapters.faust_tuning import true_highwaters

pytestmark = pytest.mark.integration


async def test_true_highwaters_count_every_record_of_a_batched_partition(
    kafka_bootstrap: str,
) -> None:
    topic = f"highwater-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=50)
    await producer.start()
    futures = [await producer.send(topic, b"x", partition=0) for _ in range(10)]
    await producer.flush()
    await producer.stop()
    assert [f.result().offset for f in futures] == list(range(10))  # one batch of ten

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    reported = await consumer.end_offsets(tps)
    await consumer.stop()

    ends = await true_highwaters(kafka_bootstrap, reported)
    assert ends == {tps[0]: 10, tps[1]: 0}
