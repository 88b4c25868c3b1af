"""Both Kafka clients behind the publisher: same keys, partitions, headers and guarantees."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from aiokafka.partitioner import murmur2
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import TRACKING_EVENTS
from beckon_devstack.kafka_probe import read_records

pytestmark = pytest.mark.integration
KEY = "pk_test_site_key"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _batch(visitor, n):
    now = datetime.now(UTC).isoformat()
    events = [
        {"event_id": str(uuid7()), "type": "page_viewed", "occurred_at": now, "payload": {}}
        for _ in range(n)
    ]
    return {"visitor_id": visitor, "events": events}


def java_partition(key: bytes, partitions: int) -> int:
    """What the Java client's default partitioner picks for a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize("client", ["confluent", "aiokafka"])
async def test_keys_land_on_the_java_clients_partitions_in_order_with_trace_headers(
    client, start_tracker, make_settings, kafka_bootstrap, unique
):
    visitors = [unique(f"{client}-v") for _ in range(12)]
    sent: dict[bytes, list[str]] = {f"demo:{visitor}".encode(): [] for visitor in visitors}
    async with start_tracker(make_settings(kafka_client=client)) as http:
        for round_ in range(2):
            for visitor in visitors:
                batch = _batch(visitor, 3)
                response = await http.post(
                    f"/v1/collect?k={KEY}", json=batch, headers={"traceparent": TRACEPARENT}
                )
                assert (response.status_code, response.json()) == (200, {"accepted": 3}), round_
                sent[f"demo:{visitor}".encode()] += [e["event_id"] for e in batch["events"]]

    keys = {f"demo:{visitor}".encode() for visitor in visitors}
    records = await read_records(
        kafka_bootstrap, TRACKING_EVENTS.name, match=lambda r: r.key in keys, count=72
    )
    assert len(records) == 72
    for record in records:
        assert record.partition == java_partition(record.key, TRACKING_EVENTS.partitions)
        headers = dict(record.headers)
        assert headers["event_type"] == b"page_viewed"
        assert headers["traceparent"].split(b"-")[1] == TRACEPARENT.split("-")[1].encode()
    for key, event_ids in sent.items():  # one visitor's events keep their order
        landed = [orjson.loads(r.value)["event_id"] for r in records if r.key == key]
        assert landed == event_ids
