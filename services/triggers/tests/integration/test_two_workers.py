"""Two workers of one app split the partitions and together invite every visitor once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from beckon_contracts import topics
from beckon_contracts.rules import SiteRules
from beckon_devstack.kafka_probe import Record, read_records
from triggers_testing import Kafka, Worker, tracking_event

pytestmark = pytest.mark.integration

VISITORS = 120


def _owned(worker: Worker) -> set[int]:
    view = httpx.get(f"{worker.url}/v1/worker", headers=worker.auth, timeout=5).json()
    return set(view["partitions"].get(topics.TRACKING_EVENTS.name, []))


async def test_two_workers_split_the_partitions_and_invite_each_visitor_once(
    kafka: Kafka, kafka_bootstrap: str, site_id: str, tmp_path: Path
) -> None:
    app_id = f"triggers-pair-{uuid.uuid4().hex[:6]}"
    first = Worker(kafka_bootstrap, app_id, tmp_path / "first.log")
    second = Worker(kafka_bootstrap, app_id, tmp_path / "second.log")
    rules = SiteRules.model_validate(
        {
            "site_id": site_id,
            "rules": [
                {
                    "id": "checkout",
                    "name": "On checkout",
                    "when": {"page_type": "checkout"},
                    "message": "Questions before you order? {agent_name} can help.",
                    "limits": {"once_per": "visitor"},
                    "holdout_percent": 0,
                }
            ],
        }
    )
    await kafka.rules(rules)
    await kafka.presence(site_id, agents=[(f"Agent {i}", 0, 50) for i in range(10)])
    try:
        await asyncio.gather(asyncio.to_thread(first.start), asyncio.to_thread(second.start))
        deadline = time.monotonic() + 60
        while True:  # the group settles: each owns a share, together all 12, none twice
            a, b = _owned(first), _owned(second)
            if a and b and not a & b and len(a | b) == topics.TRACKING_EVENTS.partitions:
                break
            assert time.monotonic() < deadline, f"partitions never split: {a} / {b}"
            await asyncio.sleep(0.2)
        for worker in (first, second):
            worker.wait_for(site_id, free_slots=500)

        visitors = [f"v{i:03d}" for i in range(VISITORS)]
        for visitor in visitors:
            await kafka.track(
                tracking_event(site_id, visitor, "page_viewed", 0, payload={"page_type": "home"}),
                tracking_event(
                    site_id, visitor, "page_viewed", 40, payload={"page_type": "checkout"}
                ),
            )

        def all_invited(found: list[Record]) -> bool:
            return len({orjson.loads(r.value)["visitor_id"] for r in found}) >= VISITORS

        def mine(record: Record) -> bool:
            data: dict[str, Any] = orjson.loads(record.value)
            return data.get("site_id") == site_id

        found = await read_records(
            kafka_bootstrap,
            topics.CHAT_INVITATIONS.name,
            match=mine,
            until=all_invited,
            drain=True,
            timeout_s=60,
        )
        per_visitor = Counter(orjson.loads(r.value)["visitor_id"] for r in found)
        assert sorted(per_visitor) == visitors
        assert set(per_visitor.values()) == {1}
    finally:
        first.stop()
        second.stop()
