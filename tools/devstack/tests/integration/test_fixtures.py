"""The shared session fixtures give real components, not stand-ins."""

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker

pytestmark = pytest.mark.integration


async def test_database_url_is_a_real_postgres(database_url):
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute("create schema if not exists fixture_check")
            await connection.execute("create table fixture_check.t (n int)")
            await connection.execute("insert into fixture_check.t values ($1)", 41)
            assert await connection.fetchval("select n + 1 from fixture_check.t") == 42
            await connection.execute("drop schema fixture_check cascade")
        assert (await connection.fetchval("show server_version")).split(".")[0].isdigit()
    finally:
        await connection.close()


async def test_kafka_bootstrap_is_a_real_broker_with_the_registry_topics(kafka_bootstrap):
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        assert {"tracking.events", "tracking.dlq"} <= set(await admin.list_topics())
    finally:
        await admin.close()


async def test_a_serving_broker_has_its_group_coordinator_ready(tmp_path):
    """On a new broker `__consumer_offsets` is created by the first FindCoordinator; until then
    every first group join logs GroupCoordinatorNotAvailable (which failed the bench's
    no-errors check). wait_until_serving waits for it."""
    with KafkaBroker(tmp_path / "kafka") as broker:
        await wait_until_serving(broker.bootstrap, timeout_s=60)
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            assert "__consumer_offsets" in await admin.list_topics()
            assert await admin.find_coordinator("any-group") == 1
        finally:
            await admin.close()
