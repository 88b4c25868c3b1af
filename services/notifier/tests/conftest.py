"""Fixtures for the notifier's integration tests: a migrated `notifier` schema in a database
of its own on the session's Postgres, and a real SMTP server (the dev stack's sink)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from beckon_devstack.smtp_sink import SmtpSink
from beckon_devstack.testing import create_database, drop_database
from notifier.adapters import migrations


@pytest.fixture
async def notifier_database(database_url: str) -> AsyncIterator[str]:
    name, url = await create_database(database_url, "notifier_test")
    conn = await asyncpg.connect(url)
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    yield url
    await drop_database(database_url, name)


@pytest.fixture
async def notifier_pool(notifier_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(notifier_database, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink(smtp_port=0, http_port=0) as running:
        yield running
