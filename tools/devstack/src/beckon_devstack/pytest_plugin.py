"""Session fixtures every Beckon test suite shares: a real broker and a real Postgres.

One Apache Kafka broker (`beckon_devstack.kafka.KafkaBroker`, KRaft, from Maven Central's jars)
starts on free ports for the whole session, with its log directory in pytest's temporary
directory; tests that stop or kill a broker start one of their own. With a Docker engine
present and BECKON_TEST_CONTAINERS=1, a Kafka container from testcontainers is used instead.
Postgres comes from DATABASE_URL, or an embedded server otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator

import pytest

from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker
from beckon_devstack.postgres import resolve_database_url

COMPACTED_SEGMENT_MS = 1000


def _docker_requested() -> bool:
    return os.environ.get("BECKON_TEST_CONTAINERS") == "1" and shutil.which("docker") is not None


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bootstrap_servers of a real Kafka-protocol broker, with every registry topic created."""
    from beckon_messaging import ensure_topics

    if _docker_requested():
        try:
            from testcontainers.kafka import KafkaContainer  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeError(
                "BECKON_TEST_CONTAINERS=1 asks for a Kafka container: "
                "`uv pip install 'testcontainers[kafka]'` first, or unset it to use the embedded "
                "Apache Kafka"
            ) from exc

        with KafkaContainer() as container:
            bootstrap = container.get_bootstrap_server()
            asyncio.run(ensure_topics(bootstrap))
            yield bootstrap
        return
    with KafkaBroker(tmp_path_factory.mktemp("kafka")) as broker:
        asyncio.run(wait_until_serving(broker.bootstrap, timeout_s=60))
        # compacted topics roll a segment every second, so compaction runs while tests look
        asyncio.run(ensure_topics(broker.bootstrap, compacted_segment_ms=COMPACTED_SEGMENT_MS))
        yield broker.bootstrap


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Postgres: DATABASE_URL when set, otherwise an embedded server for the session."""
    url, embedded = resolve_database_url(
        os.environ.get("DATABASE_URL"), tmp_path_factory.mktemp("pg")
    )
    try:
        yield url
    finally:
        if embedded is not None:
            embedded.stop()
