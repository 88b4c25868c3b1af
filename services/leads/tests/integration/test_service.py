"""`python -m leads` as a process on the session's Postgres and broker: it migrates on start
(dev), answers /healthz and /readyz, and its relay publishes what is in the outbox. In
process: the lifespan starts its parts in order and stops them in reverse, also after one
failed to start."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest
from beckon_devstack.kafka_probe import read_records
from beckon_messaging.outbox import OutboxRecord, OutboxRelay, add_outbox
from leads.adapters import migrations
from leads.adapters.bus import Bus
from leads.assignment.presence import PresenceFollower
from leads.capture.consumer import Capturing
from leads.config import Settings
from leads.main import create_app
from leads.runtime import Runtime
from leads.sla.scheduler import SlaScheduler
from leads.webhooks.sender import Sender
from leads_testing import unique

pytestmark = pytest.mark.integration
HANG_GUARD_S = 60


async def test_a_started_instance_is_migrated_ready_and_relays_its_outbox(
    empty_database, start_leads, kafka_bootstrap, scratch_topic
):
    url = await empty_database()
    instance = await start_leads(url, LEADS_MIGRATE_ON_START="true", LEADS_OUTBOX_POLL_S="0.2")

    async with httpx.AsyncClient(base_url=instance.url, timeout=10.0) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        missing = await http.get("/no-such-route/")
        assert missing.status_code == 404

    conn = await asyncpg.connect(url)
    try:
        versions = await conn.fetch("SELECT version FROM leads.schema_migrations ORDER BY 1")
        assert [row["version"] for row in versions] == [
            version for version, _ in migrations.migration_files()
        ]
        # a row some unit of work committed (here: written directly): the instance's relay
        # finds it at its next poll
        key = unique("lead").encode()
        await add_outbox(conn, "leads.outbox", [OutboxRecord(scratch_topic, key, b"hello")])
        found = await read_records(kafka_bootstrap, scratch_topic, match=lambda r: r.key == key)
        assert found[0].value == b"hello"
    finally:
        await conn.close()


# --- the lifespan: its parts start in order and stop in reverse ----------------------------
def _settings(database_url: str, bootstrap: str) -> Settings:
    instance = unique("leads")
    return Settings(
        environment="test",
        database_url=database_url,
        kafka_bootstrap=bootstrap,
        instance_id=instance,
        consumer_group=instance,  # a group of its own: it takes no other test's records
        create_topics=False,
        migrate_on_start=False,
        capture_enabled=True,
        follow_presence=True,
        sla_scheduler=True,
        webhook_sender=True,
    )


def _record_stops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the parts whose `stop` ran, in the order they ran."""
    stopped: list[str] = []
    parts = {
        "bus": Bus,
        "relay": OutboxRelay,
        "webhooks": Sender,
        "sla": SlaScheduler,
        "presence": PresenceFollower,
        "capture": Capturing,
    }
    for name, part in parts.items():

        def recorded(stop: Any, name: str = name) -> Any:
            async def stop_and_record(self: Any, *args: Any, **kwargs: Any) -> None:
                stopped.append(name)
                await stop(self, *args, **kwargs)

            return stop_and_record

        monkeypatch.setattr(part, "stop", recorded(part.stop))
    return stopped


async def test_every_part_starts_behind_its_setting_and_stops_in_reverse(
    leads_database, kafka_bootstrap, monkeypatch
):
    stopped = _record_stops(monkeypatch)
    app = create_app(_settings(leads_database, kafka_bootstrap))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.leads
        assert runtime.ready
        assert runtime.presence is not None
        assert isinstance(app.state.capture, Capturing)
        assert not stopped
    assert not runtime.ready
    assert stopped == ["capture", "presence", "sla", "webhooks", "relay", "bus"]
    assert runtime.pool.is_closing()


async def test_a_part_that_fails_to_start_stops_those_started_before_it(
    leads_database, kafka_bootstrap, monkeypatch
):
    stopped = _record_stops(monkeypatch)

    async def refuse(self: Capturing) -> None:
        raise RuntimeError("capture cannot start")

    monkeypatch.setattr(Capturing, "start", refuse)
    app = create_app(_settings(leads_database, kafka_bootstrap))
    # Not a measurement: a part left running holds its pool connection, and closing the pool
    # would wait for it for ever; the guard turns that hang into a failure.
    async with asyncio.timeout(HANG_GUARD_S):
        with pytest.raises(RuntimeError, match="capture cannot start"):
            async with app.router.lifespan_context(app):
                pytest.fail("the app must not serve when a part did not start")
    runtime: Runtime = app.state.leads
    assert not runtime.ready
    assert stopped == ["presence", "sla", "webhooks", "relay", "bus"]
    assert runtime.pool.is_closing()
