"""`python -m leads` tells its liveness probe when capture stops making progress: a record
whose handling blocks (here on a table lock) turns /healthz to 503 once LEADS_STALL_AFTER_S
has passed, and back to 200 when it goes on; the metrics port shows the dead letter it wrote,
the probes' requests by route and the consumer gauges."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from beckon_devstack.ports import free_port
from leads_testing import unique

pytestmark = pytest.mark.integration
DEADLINE_S = 120


async def _until(check, what: str):
    """Poll `check()` until it returns something truthy (a generous deadline, no timing)."""
    async with asyncio.timeout(DEADLINE_S):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.2)
    raise AssertionError(what)


async def test_a_blocked_capture_turns_healthz_to_503_until_it_goes_on(
    empty_database, start_leads, kafka_bootstrap
):
    url = await empty_database()
    metrics_port = free_port()
    group = unique("leads-live")
    instance = await start_leads(
        url,
        LEADS_MIGRATE_ON_START="true",
        LEADS_CAPTURE_ENABLED="true",
        LEADS_CONSUMER_GROUP=group,
        LEADS_STALL_AFTER_S="1",
        LEADS_METRICS_PORT=str(metrics_port),
    )
    blocker = await asyncpg.connect(url)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        async with httpx.AsyncClient(base_url=instance.url, timeout=10.0) as http:

            async def live():
                return (await http.get("/healthz")).status_code == 200

            # live once its consumers have caught up: a new group reads the shared broker's
            # chat.events from the start, and on a busy machine one of those polls may take
            # longer than LEADS_STALL_AFTER_S (seen once: 503 before anything was blocked)
            await _until(live, "/healthz never answered 200")

            # the dead letter of an unreadable record waits for this lock
            locked = blocker.transaction()
            await locked.start()
            await blocker.execute("LOCK TABLE leads.dead_letters IN ACCESS EXCLUSIVE MODE")
            await producer.send_and_wait("chat.events", b"{not json", key=b"live")

            async def stalled():
                answer = await http.get("/healthz")
                return answer if answer.status_code == 503 else None

            answer = await _until(stalled, "/healthz never answered 503")
            body = answer.json()
            assert body["status"] == "stalled"
            # capture's group among them: the presence consumer may wait on the same lock
            # (the shared broker's agents.presence holds other tests' unreadable records)
            assert group in body["stalled"], body
            assert body["reason"] == "no_progress"
            assert body["since_s"] >= 1

            await locked.rollback()
            await _until(live, "/healthz stayed 503 after the consumer went on")

        async with httpx.AsyncClient(timeout=10.0) as scrape:

            async def dead_lettered():
                text = (await scrape.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                wanted = (
                    'beckon_dead_letters_total{reason="malformed_json",topic="chat.events.dlq"}'
                )
                return text if wanted in text else None

            text = await _until(dead_lettered, "no dead letter counted")
        assert 'beckon_http_requests_total{code="503",method="GET",route="/healthz"}' in text
        assert f'beckon_consumer_last_progress_timestamp_seconds{{group="{group}"}}' in text
        assert f'beckon_consumer_lag{{group="{group}",partition="0",topic="chat.events"}}' in text
        assert 'beckon_outbox_pending{outbox="leads.outbox"}' in text
    finally:
        await producer.stop()
        await blocker.close()
