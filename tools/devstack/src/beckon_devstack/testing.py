"""What the services' test suites share: throw-away databases on the session's Postgres and
a service's `python -m <service>` as a child process that tests wait for and read the log of."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def database_url_for(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def create_database(server_url: str, prefix: str) -> tuple[str, str]:
    """A new, empty database on the server: (its name, its URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, database_url_for(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    # The embedded server (no DATABASE_URL) cannot survive DROP DATABASE's checkpoint when
    # tests run as root; it is thrown away with the session anyway.
    if not os.environ.get("DATABASE_URL"):
        return
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class ServiceProcess:
    """One service instance as a child process, its output in `log_path`."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def wait_ready(instance: ServiceProcess, timeout_s: float = START_TIMEOUT_S) -> None:
    """Until its /readyz answers 200; its log's tail in the error when it exits or times out."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            if instance.process.poll() is not None:
                raise RuntimeError(
                    f"{instance.name} exited with {instance.process.returncode} during start-up:"
                    f"\n{instance.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{instance.url}/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance.name} not ready:\n{instance.log_tail()}")
            await asyncio.sleep(0.1)
