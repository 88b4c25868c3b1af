"""Rate limits and broker outages: the answer is 429 or 503, never a 2xx for unstored events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from beckon_contracts.ids import uuid7
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker
from beckon_devstack.ports import free_port
from beckon_messaging import ensure_topics
from tracker.main import create_app

pytestmark = pytest.mark.integration
SHOP_PAGE = {"origin": "https://shop.example"}  # the snippet answers browsers only

KEY = "pk_test_site_key"
# Not a measurement: it only turns a hang (the idempotent producer's stop() against a broker
# that is down never returned) into a failure instead of a stuck run.
HANG_GUARD_S = 60


def _batch(visitor, n=1):
    now = datetime.now(UTC).isoformat()
    events = [
        {"event_id": str(uuid7()), "type": "page_viewed", "occurred_at": now, "payload": {}}
        for _ in range(n)
    ]
    return {"visitor_id": visitor, "events": events}


async def test_too_many_requests_from_one_client_get_429_with_retry_after(
    start_tracker, make_settings
):
    # one token per 100 s: the burst alone decides, however long the broker's acks take (at 1/s
    # a token came back while the first requests waited for Kafka's acks)
    settings = make_settings(requests_per_s_per_client=0.01, request_burst_per_client=3)
    async with start_tracker(settings) as client:
        statuses = [
            (await client.post(f"/v1/collect?k={KEY}", json=_batch(f"v{i}"))).status_code
            for i in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        refused = await client.post(f"/v1/collect?k={KEY}", json=_batch("v9"))
        assert int(refused.headers["retry-after"]) >= 1
        # another site's key from the same address has its own budget
        other = await client.post("/v1/collect?k=pk_other_site_key", json=_batch("v1"))
        assert other.status_code == 200


async def test_a_runaway_visitor_is_refused_without_slowing_others(start_tracker, make_settings):
    settings = make_settings(events_per_s_per_visitor=0.01, event_burst_per_visitor=20)
    async with start_tracker(settings) as client:
        assert (
            await client.post(f"/v1/collect?k={KEY}", json=_batch("hot", 20))
        ).status_code == 200
        hot = await client.post(f"/v1/collect?k={KEY}", json=_batch("hot", 5))
        assert hot.status_code == 429
        assert "retry-after" in hot.headers
        calm = await client.post(f"/v1/collect?k={KEY}", json=_batch("calm", 5))
        assert calm.status_code == 200


@pytest.mark.parametrize("kafka_client", ["confluent", "aiokafka"])
async def test_broker_down_means_503_never_2xx(
    kafka_client, start_tracker, make_settings, tmp_path
):
    # a broker of its own: this test stops it
    broker = await asyncio.to_thread(KafkaBroker(tmp_path / "kafka").start)
    try:
        await wait_until_serving(broker.bootstrap, timeout_s=60)
        await ensure_topics(broker.bootstrap)
        settings = make_settings(broker.bootstrap, ack_timeout_s=2.0, kafka_client=kafka_client)
        assert settings.kafka_idempotent  # the default: and the tracker still stops in the end
        async with start_tracker(settings) as client:
            assert (await client.post(f"/v1/collect?k={KEY}", json=_batch("v1"))).status_code == 200
            await asyncio.to_thread(broker.stop)
            response = await client.post(f"/v1/collect?k={KEY}", json=_batch("v2"))
            assert response.status_code == 503
            assert response.json()["error"] == "broker_unavailable"
            assert "retry-after" in response.headers
            # the Segment routes too: 503 with Retry-After, in Segment's shape, never a 2xx
            segment = await client.post(
                "/v1/track",
                json={"anonymousId": "v3", "event": "Outage", "messageId": str(uuid7())},
                auth=("wk_test_write_key", ""),
            )
            assert segment.status_code == 503
            assert segment.json()["code"] == "broker_unavailable"
            assert segment.json()["success"] is False
            assert "retry-after" in segment.headers
            await asyncio.sleep(1.1)  # readiness is cached for a second
            assert (await client.get("/readyz")).status_code == 503
    finally:
        broker.stop()


@pytest.mark.parametrize("kafka_client", ["confluent", "aiokafka"])
async def test_requests_awaiting_acks_when_the_tracker_stops_get_503(
    kafka_client, make_settings, tmp_path
):
    """With the broker down, stopping ends after the close grace period, and a request still
    awaiting its acks then gets a 503: not a 2xx, and not a wait for its own ack timeout."""
    broker = await asyncio.to_thread(KafkaBroker(tmp_path / "kafka").start)
    try:
        await wait_until_serving(broker.bootstrap, timeout_s=60)
        await ensure_topics(broker.bootstrap)
        settings = make_settings(
            broker.bootstrap,
            kafka_client=kafka_client,
            kafka_close_grace_s=0.5,
            ack_timeout_s=HANG_GUARD_S * 2,  # only the close can end the request in time
        )
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.77", 5555))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tracker", headers=SHOP_PAGE
        ) as client:
            lifespan = app.router.lifespan_context(app)
            await lifespan.__aenter__()
            try:
                while (await client.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.05)
                await asyncio.to_thread(broker.stop)
                request = asyncio.create_task(
                    client.post(f"/v1/collect?k={KEY}", json=_batch("v1", 3))
                )
                publisher = app.state.edge.ingest.publisher
                while not publisher.in_flight and not request.done():
                    await asyncio.sleep(0.01)
                assert publisher.in_flight == 1
            finally:
                async with asyncio.timeout(HANG_GUARD_S):
                    await lifespan.__aexit__(None, None, None)  # the tracker stops
            async with asyncio.timeout(HANG_GUARD_S):
                response = await request
            assert response.status_code == 503
            assert response.json()["error"] == "broker_unavailable"
    finally:
        broker.stop()


@pytest.mark.parametrize("kafka_client", ["confluent", "aiokafka"])
async def test_no_broker_at_start_means_not_ready_and_503(
    kafka_client, start_tracker, make_settings
):
    nowhere = f"127.0.0.1:{free_port()}"
    settings = make_settings(nowhere, kafka_client=kafka_client)
    async with start_tracker(settings, wait_ready=False) as client:
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get("/healthz")).status_code == 200
        response = await client.post(f"/v1/collect?k={KEY}", json=_batch("v1"))
        assert response.status_code == 503
