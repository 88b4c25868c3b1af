"""One trace end to end: a tracking request with a known `traceparent` goes through the real
tracker, a real triggers worker and two chat instances, and the same trace id is in the Kafka
headers of every record it leads to, up to the widget's answer on `chat.events`. And what a
widget request writes through the outbox carries the request's trace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts import topics
from beckon_contracts.ids import uuid7
from beckon_contracts.rules import SiteRules
from beckon_devstack.kafka_probe import Record, read_records
from chat_testing import eventually, frame_is
from tracker.config import Settings as TrackerSettings
from tracker.main import create_app as create_tracker
from triggers_testing import Kafka, Worker

pytestmark = pytest.mark.integration

TRACE_ID = uuid.uuid4().hex  # this run's own: the shared broker holds earlier runs' records
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
DELIVERY_TIMEOUT_S = 90.0


@pytest.fixture(scope="module")
def triggers(chat, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    app_id = f"triggers-trace-{uuid.uuid4().hex[:8]}"
    log_path = tmp_path_factory.mktemp("triggers-trace") / f"{app_id}.log"
    worker = Worker(chat.bootstrap, app_id, log_path).start()
    yield worker
    worker.stop()


@pytest.fixture
async def kafka(chat) -> AsyncIterator[Kafka]:
    producer = AIOKafkaProducer(bootstrap_servers=chat.bootstrap)
    await producer.start()
    try:
        yield Kafka(producer)
    finally:
        await producer.stop()


def trace_id(record: Record) -> str | None:
    traceparent = dict(record.headers).get("traceparent")
    return traceparent.decode().split("-")[1] if traceparent else None


async def records_of(
    bootstrap: str, topic: str, site_id: str, visitor_id: str, **kw: Any
) -> list[Record]:
    def match(record: Record) -> bool:
        raw = record.value or b""
        return site_id.encode() in raw and visitor_id.encode() in raw

    return await read_records(bootstrap, topic, match=match, drain=True, **kw)


async def ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


async def test_one_events_trace_id_is_on_every_hop_to_the_widgets_answer(
    chat, triggers, kafka, make_site, clients
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    await clients.agent(chat.a.url, site.agent("ann"), online=True)  # presence → triggers
    await kafka.rules(
        SiteRules.model_validate(
            {
                "site_id": site.site_id,
                "min_browsing": "0s",
                "rules": [
                    {
                        "id": "traced",
                        "name": "Looks at a product",
                        "when": {"event": "product_viewed"},
                        "message": "Hi, {agent_name} here. Questions about the {product_name}?",
                        "holdout_percent": 0,
                    }
                ],
            }
        )
    )
    triggers.wait_for(site.site_id, free_slots=5)

    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    widget = await visitor.connect(chat.b.ws_url)
    await widget.recv_until(frame_is("hello"))

    site_key = f"pk_{site.site_id.replace('-', '_')}"
    tracker = create_tracker(
        TrackerSettings(
            kafka_bootstrap=chat.bootstrap,
            ack_timeout_s=5.0,
            sites=[{"site_id": site.site_id, "site_key": site_key, "allowed_origins": ["*"]}],
        )
    )
    batch = {
        "visitor_id": visitor.visitor_id,
        "session_id": "s1",
        "context": {"page": {"url": "https://shop.example/product/p1"}},
        "events": [
            {
                "event_id": str(uuid7()),
                "type": "product_viewed",
                "occurred_at": datetime.now(UTC).isoformat(),
                "payload": {
                    "product_id": "p1",
                    "name": "Trail Shoe",
                    "price": 89.9,
                    "currency": "EUR",
                },
            }
        ],
    }
    async with tracker.router.lifespan_context(tracker):
        transport = httpx.ASGITransport(app=tracker, client=("203.0.113.7", 5555))
        async with httpx.AsyncClient(transport=transport, base_url="http://tracker") as http:
            await eventually(
                lambda: ready(http), timeout_s=30, what="the tracker's producer is ready"
            )
            collected = await http.post(
                f"/v1/collect?k={site_key}",
                json=batch,
                headers={
                    "traceparent": TRACEPARENT,
                    "user-agent": BROWSER,
                    "origin": site.origin,  # chat publishes the site with its origins
                },
            )
    assert collected.status_code == 200, collected.text

    frame = await widget.recv_until(frame_is("invitation"), timeout=DELIVERY_TIMEOUT_S)
    invitation_id = frame["invitation"]["id"]
    answer = await visitor.post(chat.a.url, f"/invitations/{invitation_id}/shown")
    assert answer.status_code == 204, answer.text

    hops = {}
    for topic in (
        topics.TRACKING_EVENTS,
        topics.VISITORS_STATE,
        topics.TRIGGERS_CANDIDATES,
        topics.TRIGGERS_OUTCOMES,
        topics.CHAT_INVITATIONS,
        topics.TRIGGERS_FEEDBACK,
    ):
        found = await records_of(chat.bootstrap, topic.name, site.site_id, visitor.visitor_id)
        hops[topic.name] = {trace_id(record) for record in found}
    # the instances' news of the invitation (other signals about the visitor have their own)
    signals = await records_of(
        chat.bootstrap, topics.CHAT_SIGNALS.name, site.site_id, invitation_id
    )
    hops[topics.CHAT_SIGNALS.name] = {trace_id(record) for record in signals}

    def shown(records: list[Record]) -> bool:
        return any(orjson.loads(r.value)["type"] == "invitation.shown" for r in records)

    facts = await records_of(
        chat.bootstrap, topics.CHAT_EVENTS.name, site.site_id, visitor.visitor_id, until=shown
    )
    hops[topics.CHAT_EVENTS.name] = {trace_id(record) for record in facts}
    assert hops == {topic: {TRACE_ID} for topic in hops}


async def test_what_a_widget_request_writes_carries_the_requests_trace(
    chat, make_site, clients
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.b.url)).status_code == 200
    request_trace = uuid.uuid4().hex
    started = await visitor.post(
        chat.b.url,
        "/conversations",
        {"text": "Do you ship to Finland?"},
        headers={"traceparent": f"00-{request_trace}-00f067aa0ba902b7-01"},
    )
    assert started.status_code == 201, started.text

    def complete(records: list[Record]) -> bool:
        kinds = {orjson.loads(r.value)["type"] for r in records}
        return {"conversation.started", "message.sent"} <= kinds

    facts = await records_of(
        chat.bootstrap, topics.CHAT_EVENTS.name, site.site_id, visitor.visitor_id, until=complete
    )
    assert {trace_id(record) for record in facts} == {request_trace}
