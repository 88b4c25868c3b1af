"""`python -m leads` as a process on the session's Postgres and broker: it migrates on start
(dev), answers /healthz and /readyz, and its relay publishes what is in the outbox."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from beckon_devstack.kafka_probe import read_records
from beckon_messaging.outbox import OutboxRecord, add_outbox
from leads.adapters import migrations
from leads_testing import unique

pytestmark = pytest.mark.integration


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
