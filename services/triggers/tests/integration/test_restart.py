"""A worker killed mid-stream (SIGKILL) and restarted: no visitor invited twice, counts kept."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import defaultdict
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

VISITORS = 240
SESSION_TIMEOUT_S = 6  # TRIGGERS_SESSION_TIMEOUT_S of the test workers (triggers_testing)


def _value(record: Record) -> dict[str, Any]:
    return dict(orjson.loads(record.value))


async def _processes_records(worker: Worker, within_s: float = 30) -> bool:
    """Whether the worker's visitor stage takes any record within `within_s`."""
    pattern = re.compile(r'^triggers_records_total\{stage="visitors"\} (\S+)$', re.M)
    for _ in range(int(within_s / 0.5)):
        found = pattern.search(httpx.get(f"{worker.url}/metrics", timeout=5).text)
        if found and float(found.group(1)) > 0:
            return True
        await asyncio.sleep(0.5)
    return False


def _visit(site_id: str, visitor: str) -> list[dict[str, Any]]:
    cart = {
        "items": [{"product_id": "tent", "name": "Tent", "price": 150.0, "quantity": 1}],
        "value": 150.0,
        "currency": "EUR",
    }
    return [
        tracking_event(site_id, visitor, "page_viewed", 0, payload={"page_type": "home"}),
        tracking_event(site_id, visitor, "cart_updated", 30, payload=cart),
        tracking_event(site_id, visitor, "page_viewed", 45, payload={"page_type": "cart"}),
    ]


async def test_a_killed_worker_restarts_without_inviting_anyone_twice(
    kafka: Kafka, kafka_bootstrap: str, site_id: str, tmp_path: Path
) -> None:
    worker = Worker(kafka_bootstrap, f"triggers-restart-{uuid.uuid4().hex[:6]}", tmp_path / "w.log")
    rules = SiteRules.model_validate(
        {
            "site_id": site_id,
            "rules": [
                {
                    "id": "big-cart",
                    "name": "Cart over 100 €",
                    "when": {"cart_value": {"gte": 100}},
                    "message": "Your cart is {cart_value}; shall I check delivery?",
                    "limits": {"once_per": "visitor"},
                    "holdout_percent": 0,
                }
            ],
        }
    )
    await kafka.rules(rules)
    await kafka.presence(site_id, agents=[(f"Agent {i}", 0, 50) for i in range(20)])
    worker.start()
    try:
        worker.wait_for(site_id, free_slots=1000)
        visitors = [f"v{i:04d}" for i in range(VISITORS)]
        half = VISITORS // 2
        for visitor in visitors[:half]:
            await kafka.track(*_visit(site_id, visitor))
        # Mid-stream: some invitations are out, and the rest of the first half is in flight.
        await read_records(
            kafka_bootstrap,
            topics.CHAT_INVITATIONS.name,
            match=lambda r: _value(r).get("site_id") == site_id,
            count=20,
        )
        worker.kill()
        for visitor in visitors[half:]:
            await kafka.track(*_visit(site_id, visitor))
        # Come back after the dead member's session has expired, as a crashed pod would: a
        # member joining within that window sometimes gets partitions it then never fetches
        # on Tansu 0.6.0 (the consumer-join bug TANSU.md mentions; fixed upstream later).
        # Tansu only drops a dead member when someone joins, so there is nothing to poll.
        await asyncio.sleep(SESSION_TIMEOUT_S + 1)
        await asyncio.to_thread(worker.start)
        # Even so, about one restart in four on Tansu 0.6.0 is assigned its partitions and
        # then fetches nothing (no error anywhere; the worker's tasks are idle). A crashed pod
        # would be restarted again by its liveness probe; here we crash it once more, which
        # exercises the claim under test a second time.
        for _attempt in range(2):
            if await _processes_records(worker):
                break
            print("restarted worker fetched nothing in 30 s (Tansu join bug): crashing it again")
            worker.kill()
            await asyncio.sleep(SESSION_TIMEOUT_S + 1)
            await asyncio.to_thread(worker.start)

        def every_visitor_invited(found: list[Record]) -> bool:
            return len({_value(r)["visitor_id"] for r in found}) >= VISITORS

        try:
            found = await read_records(
                kafka_bootstrap,
                topics.CHAT_INVITATIONS.name,
                match=lambda r: _value(r).get("site_id") == site_id,
                until=every_visitor_invited,
                drain=True,
                timeout_s=120,
            )
        except TimeoutError as exc:  # say where the restarted worker is waiting
            tasks = httpx.get(f"{worker.url}/v1/debug/tasks", timeout=5).text
            raise AssertionError(f"{exc}; the worker's tasks: {tasks}") from exc
        invitations: dict[str, set[str]] = defaultdict(set)
        for record in found:
            data = _value(record)
            assert data["type"] == "invitation.issued"
            invitations[data["visitor_id"]].add(data["payload"]["invitation_id"])
        # At least once on the wire, but one invitation per visitor: a record sent again
        # after the crash carries the same invitation id (the widget shows it once).
        assert sorted(invitations) == visitors
        assert all(len(ids) == 1 for ids in invitations.values()), {
            v: ids for v, ids in invitations.items() if len(ids) > 1
        }

        def counted_everyone(found: list[Record]) -> bool:
            return bool(found) and _value(found[-1])["payload"]["counts"]["invited"] >= VISITORS

        stats = await read_records(
            kafka_bootstrap,
            topics.RULES_STATS.name,
            match=lambda r: _value(r).get("site_id") == site_id,
            until=counted_everyone,
            drain=True,
            timeout_s=60,
        )
        counts = _value(stats[-1])["payload"]["counts"]
        assert counts["invited"] == VISITORS
        assert counts["eligible"] <= VISITORS
    finally:
        worker.stop()
