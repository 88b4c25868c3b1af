"""What a benchmark script starts under the service it measures: the broker, Postgres and a
database of its own, each stopped or dropped when the script's `ExitStack` closes.

Apart from `_common` (the load generator's worker processes import that one, and it stays
standard library plus uvloop).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import asyncpg
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KAFKA_VERSION, KafkaBroker
from beckon_devstack.postgres import resolve_database_url
from beckon_messaging import ensure_topics

from bench._common import parent_pid, with_database

Say = Callable[[str], None]


def start_broker(
    stack: contextlib.ExitStack, log_dir: Path, given: str | None, say: Say
) -> tuple[str, list[int]]:
    """The broker at `given` (`--bootstrap`), or an Apache Kafka started under `log_dir`;
    serving, with the registry's topics. Returns its bootstrap and the process ids whose CPU
    is the broker's (none for a broker the script did not start)."""
    pids: list[int] = []
    if given:
        bootstrap = given
        say(f"using the broker at {bootstrap}")
    else:
        broker = KafkaBroker(log_dir / "kafka", progress=say).start()
        stack.callback(broker.stop)
        bootstrap = broker.bootstrap
        assert broker.process is not None
        pids = [broker.process.pid]
        say(f"started Apache Kafka {KAFKA_VERSION} at {bootstrap}")
    asyncio.run(wait_until_serving(bootstrap, timeout_s=60))
    asyncio.run(ensure_topics(bootstrap))
    return bootstrap, pids


def start_postgres(stack: contextlib.ExitStack, log_dir: Path, say: Say) -> tuple[str, list[int]]:
    """The Postgres server of DATABASE_URL, or an embedded one under `log_dir`. Returns its
    URL and its postmaster's process id when it runs on this machine (the CPU of this server
    only, not of others the machine may run)."""
    server_url, embedded = resolve_database_url(os.environ.get("DATABASE_URL"), log_dir / "pg")
    if embedded is not None:
        stack.callback(embedded.stop)
        say(f"started an embedded Postgres ({log_dir / 'pg'})")
    else:
        say("using the Postgres server of DATABASE_URL")

    async def postmaster() -> int | None:
        conn = await asyncpg.connect(server_url)
        try:
            return parent_pid(int(await conn.fetchval("SELECT pg_backend_pid()")))
        finally:
            await conn.close()

    pid = asyncio.run(postmaster())
    return server_url, [pid] if pid and Path(f"/proc/{pid}").exists() else []


async def create_database(stack: contextlib.ExitStack, server_url: str, name: str) -> str:
    """A new database `name` on the server, dropped when `stack` closes (after whatever was
    registered later has stopped); its URL."""

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await execute(f'CREATE DATABASE "{name}"')
    stack.callback(lambda: asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))
    return with_database(server_url, name)
