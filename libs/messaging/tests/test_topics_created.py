import pytest
from aiokafka.admin import AIOKafkaAdminClient
from beckon_contracts.topics import ALL_TOPICS
from beckon_messaging import ensure_topics

pytestmark = pytest.mark.integration


async def test_topics_are_created_with_their_partitions_and_creation_is_idempotent(kafka_bootstrap):
    # the session fixture already created them; a second call creates nothing
    assert await ensure_topics(kafka_bootstrap) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic.name for topic in ALL_TOPICS])
    finally:
        await admin.close()
    partitions = {entry["topic"]: len(entry["partitions"]) for entry in described}
    assert partitions == {topic.name: topic.partitions for topic in ALL_TOPICS}
