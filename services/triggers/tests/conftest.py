"""Fixtures for the triggers worker: a real worker process on the session's real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka import AIOKafkaProducer
from triggers_testing import Kafka, Worker


@pytest.fixture(scope="module")
def worker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    app_id = f"triggers-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path_factory.mktemp("triggers") / f"{app_id}.log"
    started = Worker(kafka_bootstrap, app_id, log_path).start()
    yield started
    started.stop()


@pytest.fixture
def site_id() -> str:
    return f"site-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def kafka(kafka_bootstrap: str) -> AsyncIterator[Kafka]:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=1)
    await producer.start()
    try:
        yield Kafka(producer)
    finally:
        await producer.stop()
