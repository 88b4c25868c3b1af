"""Fixtures for the leads service's integration tests: throw-away databases on the session's
Postgres (the root plugin's `database_url`), the `leads` schema migrated by the service's own
runner, `python -m leads` as a real process, and topics of their own on the session's broker
(`kafka_bootstrap`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from leads.adapters import migrations
from leads_testing import (
    LeadsProcess,
    create_database,
    drop_database,
    leads_env,
    unique,
    wait_ready,
)

MakeDatabase = Callable[[], Awaitable[str]]


@pytest.fixture
async def empty_database(database_url: str) -> AsyncIterator[MakeDatabase]:
    """`await empty_database()`: the URL of a new, empty database (dropped afterwards)."""
    made: list[str] = []

    async def make() -> str:
        name, url = await create_database(database_url, "leads_test")
        made.append(name)
        return url

    try:
        yield make
    finally:
        for name in made:
            await drop_database(database_url, name)


@pytest.fixture(scope="session")
async def leads_database(database_url: str) -> AsyncIterator[str]:
    """One database for the session with the `leads` schema migrated; tests keep apart by
    using sites of their own (`unique("site")`)."""
    name, url = await create_database(database_url, "leads_shared")
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        yield url
    finally:
        await drop_database(database_url, name)


@pytest.fixture(scope="session")
async def leads_pool(leads_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(leads_database, min_size=1, max_size=6)
    try:
        yield pool
    finally:
        await pool.close()


# --- topics ---------------------------------------------------------------------------------


@pytest.fixture
async def scratch_topic(kafka_bootstrap: str) -> str:
    """A new single-partition topic on the session's broker, for records only this test
    writes."""
    name = unique("leads-test")
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return name


# --- processes ------------------------------------------------------------------------------


StartLeads = Callable[..., Awaitable[LeadsProcess]]


@pytest.fixture
def start_leads(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartLeads]:
    """`await start_leads(database_url, **env)`: a ready instance, stopped after the test."""
    started: list[LeadsProcess] = []

    async def start(database_url: str, **extra_env: str) -> LeadsProcess:
        port = free_port()
        log_path = tmp_path_factory.mktemp("leads-logs") / "leads.log"
        env = leads_env(database_url, kafka_bootstrap, port, unique("leads"))
        env.update(extra_env)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "leads"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        instance = LeadsProcess(port, process, log_path)
        started.append(instance)
        await wait_ready(instance)
        return instance

    try:
        yield start
    finally:
        for instance in started:
            stop_process(instance.process, timeout_s=15)
