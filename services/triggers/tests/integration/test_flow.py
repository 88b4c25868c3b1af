"""The worker on the real broker: rules fire (or don't) exactly as the issue describes.

Every test uses a site of its own, so they share one worker without seeing each other's
records. Event time is simulated through `occurred_at` (T0 + seconds); the engine's "now"
is the event's time, so no test waits for wall-clock minutes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from beckon_contracts import topics
from beckon_contracts.invitations import parse_invitation_record
from beckon_contracts.rule_stats import RuleStats
from beckon_contracts.rules import SiteRules
from beckon_contracts.visitors import VisitorSnapshot
from beckon_devstack.kafka_probe import Record, read_records
from triggers_testing import Kafka, Worker, product_view, tracking_event

pytestmark = pytest.mark.integration


def site_rules(site_id: str, *rules: dict[str, Any], **settings: Any) -> SiteRules:
    return SiteRules.model_validate({"site_id": site_id, "rules": list(rules), **settings})


def _value(record: Record) -> dict[str, Any]:
    return dict(orjson.loads(record.value))


def _for_site(site_id: str, kind: str | None = None) -> Any:
    def match(record: Record) -> bool:
        # the session's broker is shared: other tests put deliberately broken records on it
        if site_id.encode() not in (record.value or b""):
            return False
        data = _value(record)
        return data.get("site_id") == site_id and (kind is None or data.get("type") == kind)

    return match


async def _outcomes(
    bootstrap: str, site_id: str, kind: str, count: int = 1
) -> list[dict[str, Any]]:
    records = await read_records(
        bootstrap,
        topics.TRIGGERS_OUTCOMES.name,
        match=lambda r: _value(r).get("site_id") == site_id and _value(r).get("kind") == kind,
        count=count,
    )
    return [_value(r) for r in records]


async def _invitations(bootstrap: str, site_id: str, **kw: Any) -> list[dict[str, Any]]:
    records = await read_records(
        bootstrap, topics.CHAT_INVITATIONS.name, match=_for_site(site_id), **kw
    )
    for record in records:
        parse_invitation_record(record.value)  # every record honours the contract
    return [_value(r) for r in records]


FOURTH_VIEW = {
    "id": "fourth-view",
    "name": "Keeps coming back to one product",
    "when": {"all": [{"event": "product_viewed"}, {"product_views": {"gte": 4}}]},
    "message": "Hi, {agent_name} here. Still thinking about the {product_name}? Ask me anything.",
    "holdout_percent": 0,
}


async def test_fourth_view_of_one_product_invites(
    worker: Worker, kafka: Kafka, kafka_bootstrap: str, site_id: str
) -> None:
    await kafka.rules(site_rules(site_id, FOURTH_VIEW))
    await kafka.presence(site_id)
    worker.wait_for(site_id, free_slots=5)
    views = [product_view(site_id, "v1", 30 + 15 * i) for i in range(4)]
    other = product_view(site_id, "v1", 35, product="p2")  # other products don't count
    await kafka.track(views[0], views[1], other, views[2], views[3])

    found = await _invitations(kafka_bootstrap, site_id, drain=True)
    assert len(found) == 1, found
    invitation = found[0]
    assert invitation["type"] == "invitation.issued"
    assert invitation["visitor_id"] == "v1"
    assert invitation["payload"]["rule_id"] == "fourth-view"
    assert invitation["payload"]["trigger_event_id"] == views[3]["event_id"]
    assert invitation["payload"]["message"] == (
        "Hi, Aino here. Still thinking about the Trail Shoe P1? Ask me anything."
    )
    assert invitation["payload"]["agent"]["name"] == "Aino"

    # The live visitor list hears about the visitor, in the contract's shape
    snapshots = await read_records(
        kafka_bootstrap, topics.VISITORS_STATE.name, match=_for_site(site_id), count=1
    )
    snapshot = VisitorSnapshot.model_validate_json(snapshots[-1].value)
    assert snapshot.visitor_id == "v1"
    assert snapshot.payload.current_product == "Trail Shoe P1"


async def test_cart_of_100_euros_invites_with_the_value_in_the_message(
    worker: Worker, kafka: Kafka, kafka_bootstrap: str, site_id: str
) -> None:
    rule = {
        "id": "big-cart",
        "name": "Cart over 100 €",
        "when": {"cart_value": {"gte": 100}},
        "message": "Your cart is {cart_value}. Shall I check delivery times for you?",
        "holdout_percent": 0,
    }
    await kafka.rules(site_rules(site_id, rule))
    await kafka.presence(site_id)
    worker.wait_for(site_id, free_slots=5)
    cart = {
        "items": [{"product_id": "p1", "name": "Tent", "price": 64.75, "quantity": 2}],
        "value": 129.5,
        "currency": "EUR",
    }
    small = {**cart, "items": [cart["items"][0] | {"quantity": 1}], "value": 64.75}
    await kafka.track(
        tracking_event(site_id, "small", "page_viewed", 0),
        tracking_event(site_id, "big", "page_viewed", 0),
        tracking_event(site_id, "small", "cart_updated", 40, payload=small),
        tracking_event(site_id, "big", "cart_updated", 40, payload=cart),
    )
    found = await _invitations(kafka_bootstrap, site_id, drain=True)
    assert [i["visitor_id"] for i in found] == ["big"]
    assert found[0]["payload"]["message"] == (
        "Your cart is €129.50. Shall I check delivery times for you?"
    )


async def test_nothing_fires_before_the_minimum_browsing_time(
    worker: Worker, kafka: Kafka, kafka_bootstrap: str, site_id: str
) -> None:
    rule = {
        "id": "any-product",
        "name": "Any product page",
        "when": {"page_type": "product"},
        "message": "Questions about the {product_name}? I'm here.",
        "holdout_percent": 0,
    }
    await kafka.rules(site_rules(site_id, rule, min_browsing="20s"))
    await kafka.presence(site_id)
    worker.wait_for(site_id, free_slots=5)
    early = [product_view(site_id, "v1", s, product=f"p{s}") for s in (0, 5, 12, 19)]
    late = product_view(site_id, "v1", 21, product="p21")
    await kafka.track(*early, late)
    found = await _invitations(kafka_bootstrap, site_id, drain=True)
    assert len(found) == 1
    assert found[0]["payload"]["trigger_event_id"] == late["event_id"]


async def test_no_capacity_means_no_invitation_and_the_default_rule_goes_quiet_first(
    worker: Worker, kafka: Kafka, kafka_bootstrap: str, site_id: str
) -> None:
    default = {
        "id": "default",
        "name": "Anyone after 2 minutes",
        "default": True,
        "priority": -10,
        "when": {"time_on_site": {"gte": "2m"}},
        "message": "Browsing for a while? {agent_name} can help you pick.",
        "holdout_percent": 0,
    }
    checkout = {
        "id": "checkout",
        "name": "On checkout",
        "priority": 10,
        "when": {"page_type": "checkout"},
        "message": "Any questions before you order? I'm {agent_name}.",
        "holdout_percent": 0,
    }
    await kafka.rules(site_rules(site_id, default, checkout, busy_above=0.5))
    # Busy (3 of 5 chats open, load 0.6 ≥ 0.5) but not full: the default rule is shed, the
    # checkout rule still invites.
    await kafka.presence(site_id, agents=[("Aino", 3, 5)])
    worker.wait_for(site_id, free_slots=2)

    def page(visitor: str, seconds: float, page_type: str) -> dict[str, Any]:
        return tracking_event(
            site_id,
            visitor,
            "page_viewed",
            seconds,
            payload={"page_type": page_type},
            url=f"https://shop.example/{page_type}/{seconds}",
        )

    await kafka.track(page("browser", 0, "home"), page("browser", 150, "category"))
    await kafka.track(page("buyer", 0, "home"), page("buyer", 30, "checkout"))
    eligible = await _outcomes(kafka_bootstrap, site_id, "eligible", count=2)
    assert {o["visitor_id"] for o in eligible} == {"browser", "buyer"}
    found = await _invitations(kafka_bootstrap, site_id, drain=True)
    assert [(i["visitor_id"], i["payload"]["rule_id"]) for i in found] == [("buyer", "checkout")]

    # Full (5 of 5): nobody is invited, whatever the rule.
    await kafka.presence(site_id, agents=[("Aino", 5, 5)])
    worker.wait_for(site_id, free_slots=0)
    await kafka.track(page("late", 0, "home"), page("late", 30, "checkout"))
    eligible = await _outcomes(kafka_bootstrap, site_id, "eligible", count=3)
    assert "late" in {o["visitor_id"] for o in eligible}
    found = await _invitations(kafka_bootstrap, site_id, drain=True)
    assert [i["visitor_id"] for i in found] == ["buyer"]


async def test_a_held_out_visitor_gets_no_invitation_but_is_counted(
    worker: Worker, kafka: Kafka, kafka_bootstrap: str, site_id: str
) -> None:
    control = {**FOURTH_VIEW, "id": "all-held-out", "holdout_percent": 100}
    await kafka.rules(site_rules(site_id, control))
    await kafka.presence(site_id)
    worker.wait_for(site_id, free_slots=5)
    await kafka.track(*[product_view(site_id, "v1", 30 + 10 * i) for i in range(4)])

    found = await _invitations(kafka_bootstrap, site_id, drain=True)
    assert [i["type"] for i in found] == ["invitation.held_out"]
    stats = await read_records(
        kafka_bootstrap,
        topics.RULES_STATS.name,
        match=lambda r: (
            _value(r).get("site_id") == site_id and _value(r)["payload"]["counts"]["held_out"] == 1
        ),
    )
    counts = RuleStats.model_validate_json(stats[-1].value).payload.counts.model_dump()
    assert counts["held_out"] == 1
    assert counts["invited"] == 0
    # ... and the same figures over HTTP, once the worker has followed rules.stats
    for _ in range(100):
        [row] = worker.stats(site_id)["rules"] or [None]
        if row and row["payload"]["counts"]["held_out"] == 1:
            break
        await asyncio.sleep(0.05)
    assert row is not None
    assert row["payload"]["rule_id"] == "all-held-out"
    assert row["payload"]["uplift"]["conversion_held_out"] == 0


def test_metrics_are_served_for_prometheus(worker: Worker) -> None:
    response = httpx.get(f"{worker.url}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "triggers_records_total" in response.text


async def test_a_record_the_engine_cannot_use_is_dead_lettered_with_the_reason(
    worker: Worker, kafka: Kafka, kafka_bootstrap: str, site_id: str
) -> None:
    # a product's name and price are optional (Segment's spec), its currency is not
    bad = tracking_event(site_id, "v1", "product_viewed", 10, payload={"product_id": "p1"})
    await kafka.track(bad)
    letters = await read_records(
        kafka_bootstrap,
        topics.TRACKING_DLQ.name,
        # chat's activity recorder dead-letters the same record to the same topic
        match=lambda r: (
            site_id in _value(r)["payload"]["raw"]
            and _value(r)["payload"]["source"].startswith("triggers:")
        ),
    )
    payload = _value(letters[0])["payload"]
    assert _value(letters[0])["site_id"] == site_id
    assert payload["source"] == "triggers:tracking.events"
    assert payload["reason"] == "schema_invalid"
    assert payload["errors"][0]["loc"] == "payload.currency"
