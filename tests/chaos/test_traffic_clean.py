"""The battery's traffic against a real single-instance Beckon with no faults: every check
passes, and every path carried something (a check over nothing proves nothing).

The system is the dev supervisor (`python -m beckon_devstack.supervisor`) as a subprocess on
free ports, a fresh database on the session's Postgres and its own Kafka broker; the chaos
harness's `ChaosStack` will take its place.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from beckon_devstack.chaos.checks import run_checks, table, wait_for_sla_timers
from beckon_devstack.chaos.target import Target, from_dev
from beckon_devstack.chaos.traffic import Traffic, TrafficConfig
from beckon_devstack.config import PORT_FIELDS, DevStackSettings
from beckon_devstack.ports import free_port
from beckon_devstack.supervisor import READY_MARKER
from beckon_devstack.testing import create_database

from .conftest import assert_every_path_held

START_TIMEOUT_S = 240.0
TRIGGERS_TOKEN = "chaos-triggers-token-0123456789"
INBOUND_SECRET = "chaos-inbound-secret-0123456789"
# one load generator is one client address: lift the per-address limits meant for browsers
UNTHROTTLED = {
    "CHAT_WIDGET_REQUESTS_PER_S": "10000",
    "CHAT_WIDGET_REQUEST_BURST": "100000",
    "TRACKER_REQUESTS_PER_S_PER_CLIENT": "10000",
    "TRACKER_REQUEST_BURST_PER_CLIENT": "100000",
}


@pytest.fixture
async def clean_target(database_url: str, tmp_path: Path) -> AsyncIterator[Target]:
    taken: set[int] = set()
    ports: dict[str, int] = {}
    for name in PORT_FIELDS:
        port = free_port("127.0.0.1")
        while port in taken:
            port = free_port("127.0.0.1")
        taken.add(port)
        ports[name] = port
    _, url = await create_database(database_url, "chaos")
    env = {
        **os.environ,
        **UNTHROTTLED,
        **{f"BECKON_DEV_{name.upper()}": str(port) for name, port in ports.items()},
        "BECKON_DEV_STATE_DIR": str(tmp_path / "dev"),
        "BECKON_DEV_TRIGGERS_TOKEN": TRIGGERS_TOKEN,
        "BECKON_DEV_INBOUND_SECRET": INBOUND_SECRET,
        "DATABASE_URL": url,
        "NO_COLOR": "1",
    }
    settings = DevStackSettings.model_validate(
        {
            **ports,
            "state_dir": tmp_path / "dev",
            "triggers_token": TRIGGERS_TOKEN,
            "inbound_secret": INBOUND_SECRET,
        }
    )
    log_path = tmp_path / "supervisor.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "beckon_devstack.supervisor", "--no-store"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY_MARKER not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dev stack did not start:\n{log_path.read_text()[-4000:]}")
            await asyncio.sleep(0.5)
        yield from_dev(settings, url)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_clean_traffic_passes_every_check(clean_target: Target) -> None:
    config = TrafficConfig(
        visitors_per_s=1.0,
        max_visitors=12,
        persons=4,
        messages_per_chat=3,
        sla_first_contact_s=15,
        reply_share=0.5,
        drain_s=120.0,
    )
    traffic = Traffic(clean_target, config)
    await traffic.start()
    try:
        await traffic.arrived()
        await traffic.stop()
        # the last leads' timers run on after the traffic stopped: let them all come due, so
        # the SLA row counts fired timers whatever the speed of the run
        await wait_for_sla_timers(clean_target, timeout_s=120.0)
        results = await run_checks(clean_target, traffic.ledger, settle_s=120.0)
    finally:
        await traffic.close()
    report = (
        table(results) + f"\nledger: {traffic.ledger.summary()}\nerrors: {traffic.ledger.errors}"
    )
    print(report)
    summary = traffic.ledger.summary()
    assert_every_path_held(results, traffic.ledger, report)
    assert summary["lead_marks"] > summary["persons_marked"], "no person marked twice"
