"""What a partly invalid request is answered, and what is published for it (fake broker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.ids import uuid7
from beckon_contracts.tracking import parse_tracking_event
from tracker.adapters.kafka import OutboundRecord
from tracker.config import Settings
from tracker.domain.admission import MAX_NESTING, Edge, nested_deeper_than, raw_json
from tracker.domain.sites import Site
from tracker.ingest import Inbound, Ingest
from tracker.metrics import TrackerMetrics

SITE = Site("demo", "pk_test_site_key", "wk_test_write_key", frozenset({"*"}))


class FakePublisher:
    def __init__(self) -> None:
        self.records: list[OutboundRecord] = []

    async def publish(self, records):
        self.records.extend(records)

    def on(self, topic: str) -> list[bytes]:
        return [r.value for r in self.records if r.topic == topic]


@pytest.fixture
def ingest():
    publisher = FakePublisher()
    return Ingest(Settings(), publisher, TrackerMetrics()), publisher  # type: ignore[arg-type]


def inbound(segment: bool) -> Inbound:
    edge = Edge(received_at=datetime.now(UTC), ip="198.51.100.7", user_agent=None)
    route = "POST /v1/batch" if segment else "POST /v1/collect"
    return Inbound(SITE, edge, route, [], segment=segment)


def nested(levels: int) -> dict:
    deep: dict = {}
    for _ in range(levels):
        deep = {"a": deep}
    return deep


def segment_batch(*messages) -> bytes:
    return json.dumps({"batch": list(messages)}).encode()  # orjson stops at 255 levels


GOOD = {"type": "track", "anonymousId": "v1", "event": "Fine", "messageId": "m1"}


async def test_a_partly_rejected_segment_batch_is_a_200_that_names_the_rejects(ingest):
    service, publisher = ingest
    bad = {"type": "track", "event": "No ids"}
    outcome = await service.segment(inbound(True), None, segment_batch(GOOD, bad))
    assert outcome.status == 200  # every Segment SDK takes it as delivered: no retry, no drop
    assert outcome.body["success"] is True
    assert outcome.body["accepted"] == 1
    assert [r["index"] for r in outcome.body["rejected"]] == [1]
    assert len(publisher.on("tracking.events")) == 1
    assert len(publisher.on("tracking.dlq")) == 1


async def test_a_wholly_rejected_segment_batch_is_a_400_that_no_sdk_retries(ingest):
    service, publisher = ingest
    outcome = await service.segment(inbound(True), None, segment_batch({"type": "track"}))
    assert outcome.status == 400
    assert (outcome.body["success"], outcome.body["code"]) == (False, "schema_invalid")
    assert outcome.body["message"].startswith("1 event(s) rejected")
    assert publisher.on("tracking.events") == []
    assert len(publisher.on("tracking.dlq")) == 1


async def test_a_too_deep_segment_message_is_dead_lettered_and_the_rest_accepted(ingest):
    service, publisher = ingest
    deep = {"type": "track", "anonymousId": "v1", "event": "Deep", "properties": nested(260)}
    outcome = await service.segment(inbound(True), None, segment_batch(deep, GOOD))
    assert outcome.status == 200
    assert outcome.body["rejected"][0]["index"] == 0
    assert "deeper than 32 levels" in outcome.body["rejected"][0]["detail"]
    (event,) = publisher.on("tracking.events")
    assert parse_tracking_event(event).payload.event == "Fine"
    (letter,) = publisher.on("tracking.dlq")
    raw = json.loads(DeadLettered.model_validate_json(letter).payload.raw)
    assert raw["event"] == "Deep"  # kept, with its depth cut to what can be encoded


async def test_a_too_deep_snippet_event_is_dead_lettered_and_the_rest_accepted(ingest):
    service, publisher = ingest
    now = datetime.now(UTC).isoformat()

    def event(properties):
        payload = {"event": "x", "properties": properties}
        return {"event_id": str(uuid7()), "type": "custom", "occurred_at": now, "payload": payload}

    body = json.dumps({"visitor_id": "v1", "events": [event({}), event(nested(260))]}).encode()
    outcome = await service.collect(inbound(False), body)
    assert (outcome.status, outcome.body["accepted"]) == (422, 1)
    assert outcome.body["rejected"][0]["index"] == 1
    assert len(publisher.on("tracking.events")) == 1
    assert len(publisher.on("tracking.dlq")) == 1


def test_nesting_is_measured_without_recursion():
    assert not nested_deeper_than(nested(MAX_NESTING - 1), MAX_NESTING)
    assert nested_deeper_than(nested(MAX_NESTING + 1), MAX_NESTING)
    assert nested_deeper_than([[[[]]]], 3)
    assert nested_deeper_than(nested(100_000), MAX_NESTING)  # far past Python's own limit
    assert raw_json({"a": [1, 2]}) == b'{"a":[1,2]}'
