"""Who reported an order is the tracker's finding from the authenticated path, never the
body's; browser claims past the caps are kept but flagged (the real app, a fake broker)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.tracking import OrderCompleted, OrderCompletedPayload, parse_tracking_event
from tracker.config import Settings
from tracker.domain.claims import BrowserOrderCap
from tracker.main import create_app

SITE = {
    "site_id": "demo",
    "site_key": "pk_test_site_key",
    "write_key": "wk_test_write_key",
    "allowed_origins": ["https://shop.example"],
}
COLLECT = "/v1/collect?k=pk_test_site_key"
ORIGIN = {"origin": "https://shop.example"}
AUTH = ("wk_test_write_key", "")
FORGED = {"reported_by": "server", "over_browser_cap": False, "source": "segment"}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TRACKER_"):
            monkeypatch.delenv(name)


class FakePublisher:
    def __init__(self) -> None:
        self.values: list[bytes] = []

    async def publish(self, records):
        self.values.extend(r.value for r in records if r.topic == "tracking.events")

    def orders(self) -> list[OrderCompleted]:
        events = [parse_tracking_event(value) for value in self.values]
        return [event for event in events if isinstance(event, OrderCompleted)]


@pytest.fixture
def tracker():
    app = create_app(Settings(sites=[SITE], browser_orders_per_visitor_per_day=2))
    publisher = FakePublisher()
    app.state.edge.ingest.publisher = publisher
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://tracker"), publisher


def snippet_order(visitor: str, value: float, *, context: dict | None = None) -> dict:
    event = {
        "event_id": str(uuid7()),
        "type": "order_completed",
        "payload": {"order_id": f"o-{uuid7()}", "value": value, "currency": "EUR"},
    }
    if context is not None:
        event["context"] = context
    return {"visitor_id": visitor, "context": context or {}, "events": [event]}


def segment_order(visitor: str, value: float, *, context: dict | None = None) -> dict:
    return {
        "anonymousId": visitor,
        "event": "Order Completed",
        "messageId": f"m-{uuid7()}",
        "properties": {"order_id": f"o-{uuid7()}", "total": value, "currency": "EUR"},
        "context": context or {},
    }


async def test_the_probes_order_from_the_snippet_is_a_flagged_browser_claim_whatever_it_says(
    tracker,
):
    client, publisher = tracker
    # the probe: 999,999,999 EUR through the public endpoint, claiming to be the server
    probe = snippet_order("v-probe", 999_999_999, context=FORGED)
    answer = await client.post(COLLECT, json=probe, headers=ORIGIN)
    assert answer.status_code == 200, answer.text
    (order,) = publisher.orders()
    assert order.payload.value == Decimal(999_999_999)  # kept whole: nothing is lost
    assert order.context.reported_by == "browser"
    assert order.context.over_browser_cap is True
    assert order.context.source == "snippet"


async def test_an_order_with_the_write_key_from_the_stores_server_is_the_servers(tracker):
    client, publisher = tracker
    answer = await client.post("/v1/track", json=segment_order("v-srv", 50_000), auth=AUTH)
    assert answer.status_code == 200, answer.text
    (order,) = publisher.orders()
    assert order.context.reported_by == "server"
    assert order.context.over_browser_cap is False  # the caps are for browser claims only


@pytest.mark.parametrize(
    "headers", [ORIGIN, {"sec-fetch-site": "cross-site"}], ids=["origin", "sec-fetch"]
)
async def test_a_write_key_call_made_from_a_page_is_the_browsers(tracker, headers):
    """analytics.js in the page: its write key is readable by anyone there."""
    client, publisher = tracker
    message = segment_order("v-ajs", 20, context=FORGED)
    answer = await client.post("/v1/track", json=message, auth=AUTH, headers=headers)
    assert answer.status_code == 200, answer.text
    (order,) = publisher.orders()
    assert order.context.reported_by == "browser"


async def test_a_visitor_past_the_daily_count_is_flagged_and_others_are_not(tracker):
    client, publisher = tracker
    for visitor in ("v-many", "v-many", "v-many", "v-other"):
        answer = await client.post(COLLECT, json=snippet_order(visitor, 30), headers=ORIGIN)
        assert answer.status_code == 200, answer.text
    flags = [(o.visitor_id, o.context.over_browser_cap) for o in publisher.orders()]
    assert flags == [("v-many", False), ("v-many", False), ("v-many", True), ("v-other", False)]


def _order(visitor: str, value: str, received: datetime) -> OrderCompleted:
    return OrderCompleted(
        event_id=uuid7(),
        site_id="demo",
        visitor_id=visitor,
        occurred_at=received,
        received_at=received,
        payload=OrderCompletedPayload(value=Decimal(value), currency="EUR"),
    )


def test_the_cap_counts_per_utc_day_and_forgets_the_oldest_visitors_first():
    cap = BrowserOrderCap(max_value=Decimal(100), per_visitor_per_day=1, max_visitors=2)
    day = datetime(2026, 11, 23, 23, 59, tzinfo=UTC)
    assert not cap.checked(_order("a", "100", day)).context.over_browser_cap  # at the cap: fine
    assert cap.checked(_order("b", "100.01", day)).context.over_browser_cap
    assert cap.checked(_order("a", "1", day)).context.over_browser_cap  # a's second today
    next_day = day + timedelta(minutes=2)
    assert not cap.checked(_order("a", "1", next_day)).context.over_browser_cap
    cap.checked(_order("b", "1", next_day))
    cap.checked(_order("c", "1", next_day))  # three visitors: a, counted longest ago, goes
    assert not cap.checked(_order("a", "1", next_day)).context.over_browser_cap
