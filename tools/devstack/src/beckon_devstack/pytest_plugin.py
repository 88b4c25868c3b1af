"""Session fixtures every Beckon test suite shares: a real broker and a real Postgres.

Tansu starts on a free port for the session. With a Docker engine present and
BECKON_TEST_CONTAINERS=1, a Kafka container from testcontainers is used instead.
Postgres comes from DATABASE_URL, or an embedded server otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator

import pytest

from beckon_devstack.broker import TansuBroker, wait_until_serving
from beckon_devstack.postgres import resolve_database_url


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
                "`uv pip install 'testcontainers[kafka]'` first, or unset it to use Tansu"
            ) from exc

        with KafkaContainer() as container:
            bootstrap = container.get_bootstrap_server()
            asyncio.run(ensure_topics(bootstrap))
            yield bootstrap
        return
    log_path = tmp_path_factory.mktemp("tansu") / "tansu.log"
    with TansuBroker(log_path=log_path) as broker:
        asyncio.run(wait_until_serving(broker.bootstrap))
        asyncio.run(ensure_topics(broker.bootstrap))
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
