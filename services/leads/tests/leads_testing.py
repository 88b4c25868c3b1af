"""Test support for the leads service: throw-away databases on the session's Postgres,
`python -m leads` as a command and as a running process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
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


# --- databases ------------------------------------------------------------------------------


def database_url_for(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def create_database(server_url: str, prefix: str) -> tuple[str, str]:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, database_url_for(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    # The embedded server (no DATABASE_URL) cannot survive DROP DATABASE's checkpoint when
    # tests run as root (see chat_testing.can_drop_databases); it is thrown away anyway.
    if not os.environ.get("DATABASE_URL"):
        return
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# --- processes ------------------------------------------------------------------------------


def leads_env(database_url: str, bootstrap: str, port: int, instance: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEADS_DATABASE_URL": database_url,
        "LEADS_KAFKA_BOOTSTRAP": bootstrap,
        "LEADS_HOST": HOST,
        "LEADS_PORT": str(port),
        "LEADS_INSTANCE_ID": instance,
        "LEADS_ENVIRONMENT": "test",
        "LEADS_LOG_JSON": "false",
        "LEADS_CREATE_TOPICS": "false",  # kafka_bootstrap created every registry topic
        # Test processes on different databases share the session's broker: capture (the
        # consumer group on chat.events / tracking.events) only where a test asks for it, and
        # then in a group of its own, so no process takes another test's records
        "LEADS_CAPTURE_ENABLED": "false",
        "LEADS_CONSUMER_GROUP": instance,
    }


def run_leads_command(database_url: str, *args: str) -> str:
    """`python -m leads <args>` against a database; returns its output, fails loudly."""
    done = subprocess.run(
        [sys.executable, "-m", "leads", *args],
        env=leads_env(database_url, "127.0.0.1:1", 1, "cli"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"python -m leads {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@dataclass
class LeadsProcess:
    """One `python -m leads` instance as a child process."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


async def wait_ready(instance: LeadsProcess, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=5.0) as client:
        while True:
            if instance.process.poll() is not None:
                raise RuntimeError(
                    f"leads exited with {instance.process.returncode} during start-up:\n"
                    f"{instance.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{instance.url}/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"leads not ready:\n{instance.log_tail()}")
            await asyncio.sleep(0.1)
