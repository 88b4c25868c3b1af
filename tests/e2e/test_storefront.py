"""A visitor shops in the demo store; what the snippet sends must land on `tracking.events`.

Chromium (Playwright) → demo store pages with the inline loader → beckon.js from the real
tracker → POST /v1/collect → Kafka. Nothing is faked between the browser and the topic.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Request, Route

pytestmark = pytest.mark.e2e

PRODUCT_A = ("trail-runner-x", "Trail Runner X", "shoes", Decimal("129.90"))
PRODUCT_B = ("city-sneaker", "City Sneaker", "shoes", Decimal("89.00"))
COLLECT = "**/v1/collect**"
FAILED_ATTEMPTS_JS = """() => Object.keys(localStorage)
    .filter((k) => k.startsWith('bk_q_'))
    .some((k) => JSON.parse(localStorage.getItem(k)).n >= 1)"""
QUEUED_EVENTS_JS = """() => Object.keys(localStorage)
    .filter((k) => k.startsWith('bk_q_'))
    .flatMap((k) => JSON.parse(localStorage.getItem(k)).e || [])"""


async def snippet_ready(page: Page) -> None:
    await page.wait_for_function("window.beckon && window.beckon.loaded === true")


async def visitor_id(page: Page) -> str:
    await snippet_ready(page)
    value = await page.evaluate("window.beckon.visitorId()")
    assert isinstance(value, str)
    assert value
    return value


def collect_requests(context: BrowserContext) -> list[Request]:
    """Every request the pages of this context make to the tracker's collect endpoint."""
    seen: list[Request] = []
    context.on("request", lambda r: seen.append(r) if "/v1/collect" in r.url else None)
    return seen


def first_of_each(records: list[Any]) -> list[Any]:
    """Delivery is at-least-once: consumers keep the first record of each event_id."""
    seen: set[str] = set()
    unique = []
    for record in records:
        if record.event["event_id"] not in seen:
            seen.add(record.event["event_id"])
            unique.append(record)
    return unique


def without_heartbeats(records: list[Any]) -> list[Any]:
    return [r for r in records if r.event["type"] != "heartbeat"]


async def test_a_shopping_visit_arrives_in_order_enriched_and_traced(
    stack: Any, new_context: Any, tracking_events: Any
) -> None:
    context = await new_context()
    page = await context.new_page()
    store = stack.store_url

    await page.goto(f"{store}/")
    visitor = await visitor_id(page)
    await page.get_by_test_id("category-shoes").click()
    await page.wait_for_url("**/c/shoes")
    await page.get_by_test_id(f"product-link-{PRODUCT_A[0]}").click()
    await page.wait_for_url(f"**/p/{PRODUCT_A[0]}")
    await page.get_by_test_id("nav-shoes").click()
    await page.wait_for_url("**/c/shoes")
    await page.get_by_test_id(f"product-link-{PRODUCT_B[0]}").click()
    await page.wait_for_url(f"**/p/{PRODUCT_B[0]}")
    await page.goto(f"{store}/p/{PRODUCT_A[0]}")  # back to A, from a bookmark
    await page.get_by_test_id("add-to-cart").click()
    await page.get_by_test_id("added-notice").wait_for()
    await page.get_by_test_id("go-to-cart").click()
    await page.wait_for_url("**/cart")
    await page.get_by_test_id("checkout").click()
    await page.wait_for_url("**/checkout")
    await page.get_by_test_id("place-order").click()
    await page.wait_for_url("**/order/*")
    order_id = (await page.get_by_test_id("order-id").inner_text()).strip()
    assert await page.evaluate("window.beckon.visitorId()") == visitor

    records = await tracking_events(
        visitor,
        lambda rs: any(r.event["type"] == "order_completed" for r in rs),
    )
    events = [r.event for r in without_heartbeats(first_of_each(records))]
    assert [e["type"] for e in events] == [
        "page_viewed",
        "page_viewed",
        "page_viewed",
        "product_viewed",
        "page_viewed",  # the category again, on the way to B
        "page_viewed",
        "product_viewed",
        "page_viewed",
        "product_viewed",
        "cart_updated",
        "page_viewed",
        "page_viewed",
        "checkout_started",
        "page_viewed",
        "order_completed",
    ]
    page_types = [e["payload"].get("page_type") for e in events if e["type"] == "page_viewed"]
    assert page_types == [
        "home",
        "category",
        "product",
        "category",
        "product",
        "product",
        "cart",
        "checkout",
        "confirmation",
    ]

    viewed = [e["payload"] for e in events if e["type"] == "product_viewed"]
    expected_views = [PRODUCT_A, PRODUCT_B, PRODUCT_A]
    assert [(v["product_id"], v["name"], v["category"]) for v in viewed] == [
        p[:3] for p in expected_views
    ]
    assert [Decimal(str(v["price"])) for v in viewed] == [p[3] for p in expected_views]
    assert {v["currency"] for v in viewed} == {"EUR"}

    (cart,) = [e["payload"] for e in events if e["type"] == "cart_updated"]
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(PRODUCT_A[0], 1)]
    assert Decimal(str(cart["value"])) == PRODUCT_A[3]
    assert cart["currency"] == "EUR"
    (checkout,) = [e["payload"] for e in events if e["type"] == "checkout_started"]
    assert Decimal(str(checkout["value"])) == PRODUCT_A[3]
    (order,) = [e["payload"] for e in events if e["type"] == "order_completed"]
    assert order["order_id"] == order_id
    assert Decimal(str(order["value"])) == PRODUCT_A[3]
    assert order["currency"] == "EUR"
    assert [i["product_id"] for i in order["items"]] == [PRODUCT_A[0]]

    assert {r.key for r in records} == {f"demo:{visitor}"}
    assert len({r.partition for r in records}) == 1
    assert all(r.headers.get("traceparent") for r in records)
    for event in events:
        assert event["site_id"] == "demo"
        assert event["received_at"]
        assert event["session_id"] == events[0]["session_id"]
        context_ = event["context"]
        assert context_["ip"].endswith(".0")
        assert context_["user_agent_info"]["browser"]
        assert context_["is_bot"] is False
        assert context_["library"].startswith("beckon.js/")
        assert context_["page"]["url"].startswith(store)
    confirmation = events[-1]["context"]["page"]
    assert confirmation["path"] == f"/order/{order_id}"


async def test_the_served_snippet_is_the_one_the_store_pastes(stack: Any) -> None:
    """The demo store inlines a copy of loader.js; it must match what the tracker serves."""
    async with httpx.AsyncClient() as client:
        loader = (await client.get(f"{stack.tracker_url}/loader.js")).text.strip()
        home = (await client.get(f"{stack.store_url}/")).text
        beckon_js = await client.get(f"{stack.tracker_url}/beckon.js")
    assert loader
    assert loader in home
    assert beckon_js.status_code == 200
    assert "javascript" in beckon_js.headers["content-type"]


async def test_automated_browsers_are_not_tracked_unless_the_site_allows_it(
    stack: Any, new_context: Any
) -> None:
    context = await new_context()
    sent = collect_requests(context)
    page = await context.new_page()
    assert await page.evaluate("navigator.webdriver") is True

    await page.goto(f"{stack.strict_store_url}/p/{PRODUCT_A[0]}")
    await snippet_ready(page)
    await page.get_by_test_id("add-to-cart").click()
    await page.evaluate("beckon('flush')")
    await page.goto(f"{stack.strict_store_url}/cart")  # a page change flushes on pagehide
    await snippet_ready(page)
    await page.evaluate("beckon('flush')")

    assert await page.evaluate("window.beckon.visitorId()") is None
    assert await page.evaluate(QUEUED_EVENTS_JS) == []
    assert "bk_vid" not in {c["name"] for c in await context.cookies()}
    assert sent == []


async def test_do_not_track_sends_nothing(stack: Any, new_context: Any) -> None:
    context = await new_context()
    await context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})"
    )
    sent = collect_requests(context)
    page = await context.new_page()

    await page.goto(f"{stack.store_url}/p/{PRODUCT_A[0]}")
    await snippet_ready(page)
    assert await page.evaluate("navigator.doNotTrack") == "1"
    await page.get_by_test_id("add-to-cart").click()
    await page.evaluate("beckon('flush')")
    await page.goto(f"{stack.store_url}/cart")
    await snippet_ready(page)
    await page.evaluate("beckon('flush')")

    assert await page.evaluate("window.beckon.visitorId()") is None
    assert await page.evaluate(QUEUED_EVENTS_JS) == []
    assert sent == []


async def test_consent_withdrawn_stops_collection_and_clears_the_queue(
    stack: Any, new_context: Any, tracking_events: Any
) -> None:
    context = await new_context()
    sent = collect_requests(context)
    page = await context.new_page()
    await context.route(COLLECT, lambda route: route.abort())  # hold events in the queue

    await page.goto(f"{stack.store_url}/p/{PRODUCT_A[0]}")
    visitor = await visitor_id(page)
    await page.wait_for_function(f"({QUEUED_EVENTS_JS})().length >= 2")

    await page.evaluate("beckon('consent', false)")
    assert await page.evaluate(QUEUED_EVENTS_JS) == []
    assert await page.evaluate("window.beckon.visitorId()") is None
    assert "bk_vid" not in {c["name"] for c in await context.cookies()}

    # The choice is remembered: later pages collect nothing either.
    await context.unroute(COLLECT)
    attempts_before = len(sent)
    await page.goto(f"{stack.store_url}/p/{PRODUCT_B[0]}")
    await snippet_ready(page)
    await page.get_by_test_id("add-to-cart").click()
    await page.evaluate("beckon('flush')")
    await page.goto(f"{stack.store_url}/cart")
    await snippet_ready(page)
    await page.evaluate("beckon('flush')")
    assert await page.evaluate("window.beckon.visitorId()") is None
    assert len(sent) == attempts_before

    # Consent given again: collection resumes under a new visitor id.
    await page.evaluate("beckon('consent', true)")
    renewed = await visitor_id(page)
    assert renewed != visitor
    await page.evaluate("beckon('page', {page_type: 'cart'}); beckon('flush')")
    records = await tracking_events(
        {visitor, renewed}, lambda rs: any(r.event["visitor_id"] == renewed for r in rs)
    )
    assert [(r.event["visitor_id"], r.event["type"]) for r in without_heartbeats(records)] == [
        (renewed, "page_viewed")
    ]


async def test_the_retry_queue_survives_a_reload_and_delivers_each_event_once(
    stack: Any, new_context: Any, tracking_events: Any
) -> None:
    context = await new_context()
    page = await context.new_page()
    refused: list[str] = []

    async def unavailable(route: Route) -> None:
        refused.append(route.request.url)
        await route.fulfill(
            status=503,
            headers={"Access-Control-Allow-Origin": stack.store_url, "Retry-After": "1"},
            content_type="application/json",
            body=json.dumps({"error": "unavailable", "message": "broker unavailable"}),
        )

    await context.route(COLLECT, unavailable)
    await page.goto(f"{stack.store_url}/p/{PRODUCT_A[0]}")
    visitor = await visitor_id(page)
    await page.get_by_test_id("add-to-cart").click()
    await page.evaluate("beckon('flush')")
    await page.wait_for_function(f"({QUEUED_EVENTS_JS})().some((e) => e.type == 'cart_updated')")
    await page.wait_for_function(FAILED_ATTEMPTS_JS)  # the 503 was seen and recorded
    assert refused
    before_reload = await page.evaluate(QUEUED_EVENTS_JS)
    held = {e["event_id"]: e["type"] for e in before_reload}
    assert {"page_viewed", "product_viewed", "cart_updated"} <= set(held.values())

    await page.reload()
    await snippet_ready(page)
    assert await page.evaluate("window.beckon.visitorId()") == visitor
    after_reload = {e["event_id"] for e in await page.evaluate(QUEUED_EVENTS_JS)}
    assert set(held) <= after_reload  # survived the reload, not lost at pagehide

    await context.unroute(COLLECT)
    await page.wait_for_function(f"({QUEUED_EVENTS_JS})().length == 0", timeout=60_000)
    records = await tracking_events(
        visitor, lambda rs: set(held) <= {r.event["event_id"] for r in rs}
    )

    counts = Counter(r.event["event_id"] for r in records)
    assert {event_id: counts[event_id] for event_id in held} == dict.fromkeys(held, 1)
    assert max(counts.values()) == 1  # nothing at all was delivered twice
    reloaded_views = [
        r for r in records if r.event["type"] == "page_viewed" and r.event["event_id"] not in held
    ]
    assert len(reloaded_views) == 1  # the reload's own page view, after the held events
    assert records.index(reloaded_views[0]) > max(
        i for i, r in enumerate(records) if r.event["event_id"] in held
    )


async def test_campaign_identity_custom_events_and_time_on_page(
    stack: Any, new_context: Any, tracking_events: Any
) -> None:
    context = await new_context()
    page = await context.new_page()
    landing = "/?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
    await page.goto(f"{stack.store_url}{landing}")
    visitor = await visitor_id(page)
    session = await page.evaluate("window.beckon.sessionId()")
    await page.evaluate(
        "beckon('identify', 'customer-42', {plan: 'gold'});"
        "beckon('track', 'newsletter_signup', {list: 'weekly'})"
    )
    await page.wait_for_timeout(1_100)  # a second on the page, reported when the page is left
    await page.get_by_test_id("category-apparel").click()
    await page.wait_for_url("**/c/apparel")
    await page.evaluate("beckon('flush')")
    assert await page.evaluate("window.beckon.sessionId()") == session

    def left_for_the_category_page(records: list[Any]) -> bool:
        types = {r.event["type"] for r in records}
        page_types = {r.event["payload"].get("page_type") for r in records}
        return "heartbeat" in types and "category" in page_types

    records = await tracking_events(visitor, left_for_the_category_page)
    events = [r.event for r in first_of_each(records)]
    landing_page = events[: [e["payload"].get("page_type") for e in events].index("category")]
    assert [e["type"] for e in landing_page if e["type"] != "heartbeat"] == [
        "page_viewed",
        "identified",
        "custom",
    ]
    identified, custom = (e["payload"] for e in landing_page[1:3])
    # no identity hash, on a site that does not enforce verification: kept, marked unverified
    assert identified == {"user_id": "customer-42", "traits": {"plan": "gold"}, "verified": False}
    assert custom == {"event": "newsletter_signup", "properties": {"list": "weekly"}}
    heartbeat = landing_page[-1]["payload"]  # sent as the visitor left the page
    assert heartbeat["seconds_on_page"] >= 1
    assert 0 <= heartbeat["active_seconds"] <= heartbeat["seconds_on_page"]
    # The campaign comes from the landing URL and stays with the session.
    for event in events:
        assert event["session_id"] == session
        assert event["context"]["campaign"] == {
            "source": "newsletter",
            "medium": "email",
            "name": "spring",
        }
    assert events[-1]["context"]["page"]["referrer"] == events[0]["context"]["page"]["url"]


async def test_refused_batches_are_dropped_and_the_wire_format_holds(
    stack: Any, new_context: Any
) -> None:
    context = await new_context()
    page = await context.new_page()
    attempts: list[Request] = []

    async def refuse(route: Route) -> None:
        attempts.append(route.request)
        await route.fulfill(
            status=422,
            headers={"Access-Control-Allow-Origin": stack.store_url},
            content_type="application/json",
            body=json.dumps({"accepted": 0, "rejected": [{"index": 0, "reason": "test"}]}),
        )

    await context.route(COLLECT, refuse)
    await page.goto(f"{stack.store_url}/p/{PRODUCT_A[0]}")
    await snippet_ready(page)
    await page.evaluate("beckon('flush')")
    await page.wait_for_function(f"({QUEUED_EVENTS_JS})().length == 0")
    # A later event goes out on its own: the refused batch is never sent again.
    await page.evaluate("beckon('track', 'probe'); beckon('flush')")
    await page.wait_for_function(f"({QUEUED_EVENTS_JS})().length == 0")
    bodies = [json.loads(request.post_data or "") for request in attempts]
    assert [[e["type"] for e in body["events"]] for body in bodies] == [
        ["page_viewed", "product_viewed"],
        ["custom"],
    ]

    request, body = attempts[0], bodies[0]
    assert request.method == "POST"
    assert request.url.startswith(f"{stack.tracker_url}/v1/collect?k=pk_demo_beckon")
    assert request.headers["content-type"].startswith("text/plain")  # no CORS preflight
    assert set(body) == {"visitor_id", "session_id", "sent_at", "context", "events"}
    assert body["context"]["library"] == "beckon.js/1.0.0"
    assert not {"ip", "user_agent", "user_agent_info", "is_bot"} & set(body["context"])
    for event in body["events"]:
        event_id = uuid.UUID(event["event_id"])
        assert event_id.version == 7
        assert event_id.variant == uuid.RFC_4122
        assert set(event) <= {"event_id", "type", "occurred_at", "payload", "context"}
