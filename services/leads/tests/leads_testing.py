"""Test support for the leads service: throw-away databases on the session's Postgres,
`python -m leads` as a command and as a running process."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from beckon_devstack.testing import (
    ServiceProcess,
    create_database,
    database_url_for,
    drop_database,
    unique,
)
from beckon_devstack.testing import wait_ready as shared_wait_ready

__all__ = ["create_database", "database_url_for", "drop_database", "unique"]

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0


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
    await shared_wait_ready(
        ServiceProcess("leads", instance.port, instance.process, instance.log_path), timeout_s
    )
