"""Capture through Kafka: `python -m leads` consumes chat.events, a lead mark becomes a lead
whose `lead.created` reaches leads.events, and malformed records go to chat.events.dlq with
their reason while the consumer goes on to the next record."""

from __future__ import annotations

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.leads import parse_lead_event
from beckon_devstack.kafka_probe import read_records
from capture_testing import lead_marked, raw
from leads_testing import unique

pytestmark = pytest.mark.integration


async def test_a_lead_mark_on_chat_events_becomes_a_lead_and_poison_is_dead_lettered(
    empty_database, start_leads, kafka_bootstrap
):
    url = await empty_database()
    await start_leads(
        url,
        LEADS_MIGRATE_ON_START="true",
        LEADS_OUTBOX_POLL_S="0.2",
        LEADS_CAPTURE_ENABLED="true",
        LEADS_CONSUMER_GROUP=unique("leads-capture-test"),
        LEADS_CAPTURE_VISITOR_STATES_WAIT_S="5",
    )
    site = unique("site")
    marker = unique("poison")
    not_json = f"not json {marker}".encode()
    bad_site = orjson.dumps(
        {**orjson.loads(raw(lead_marked(site, "v-1"))), "site_id": f"Not A Site {marker}"}
    )
    mark = lead_marked(site, "v-1", email="ann@example.com")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        # one partition (one key): the poison comes first, the lead mark after it
        for value in (not_json, bad_site, raw(mark)):
            await producer.send_and_wait("chat.events", value, key=site.encode())
    finally:
        await producer.stop()

    created = await read_records(
        kafka_bootstrap,
        "leads.events",
        match=lambda r: site.encode() in r.value and b'"lead.created"' in r.value,
        timeout_s=60,
    )
    event = parse_lead_event(created[0].value)
    assert event.type == "lead.created"
    assert event.payload.touch.source_event_id == mark.event_id
    assert event.payload.lead.contact.email == "ann@example.com"

    letters = await read_records(
        kafka_bootstrap,
        "chat.events.dlq",
        match=lambda r: marker.encode() in r.value,
        count=2,
        timeout_s=60,
    )
    reasons = {
        DeadLettered.model_validate_json(r.value).payload.reason: DeadLettered.model_validate_json(
            r.value
        )
        for r in letters
    }
    assert set(reasons) == {"malformed_json", "schema_invalid"}
    assert reasons["malformed_json"].payload.raw == not_json.decode()
    assert reasons["malformed_json"].payload.topic == "chat.events"
    assert any(e.loc.endswith("site_id") for e in reasons["schema_invalid"].payload.errors)

    conn = await asyncpg.connect(url)
    try:
        leads = await conn.fetch("SELECT * FROM leads.leads WHERE site_id = $1", site)
        assert [lead["email_key"] for lead in leads] == ["ann@example.com"]
        recorded = await conn.fetch(
            "SELECT reason FROM leads.dead_letters WHERE position($1::bytea in value) > 0",
            marker.encode(),
        )
        assert sorted(row["reason"] for row in recorded) == ["malformed_json", "schema_invalid"]
    finally:
        await conn.close()
