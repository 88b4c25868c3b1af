"""Segment's calls as documented in its Tracking API spec, mapped to Beckon's events."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tracker.domain.admission import Edge, admit
from tracker.domain.segment import event_id_for, segment_candidates

RECEIVED = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
SERVER_EDGE = Edge(received_at=RECEIVED, ip="198.51.100.20", user_agent="analytics-node/2.0")


def _map(*messages, **kwargs):
    candidates = segment_candidates(list(messages), site_id="demo", edge=SERVER_EDGE, **kwargs)
    return admit(
        candidates,
        offset=timedelta(0),
        received_at=RECEIVED,
        max_event_bytes=32_768,
        check_sizes=False,
        loc_prefix="batch",
    )


def test_product_viewed_becomes_a_typed_event_with_the_visitors_own_context():
    result = _map(
        {
            "type": "track",
            "anonymousId": "507f191e810c19729de860ea",
            "event": "Product Viewed",
            "messageId": "ajs-1",
            "timestamp": "2026-11-23T11:59:00Z",
            "properties": {
                "product_id": "507f1f77bcf86cd799439011",
                "sku": "G-32",
                "category": "Games",
                "name": "Monopoly: 3rd Edition",
                "price": 18.99,
                "currency": "usd",
            },
            "context": {
                "ip": "8.8.8.8",
                "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148",
                "page": {"url": "https://shop.example/monopoly", "path": "/monopoly"},
            },
        }
    )
    assert result.rejected == []
    (event,) = result.accepted
    assert event.type == "product_viewed"
    assert event.payload.product_id == "507f1f77bcf86cd799439011"
    assert str(event.payload.price) == "18.99"
    assert event.payload.currency == "USD"
    assert event.visitor_id == "507f191e810c19729de860ea"
    assert str(event.context.ip) == "8.8.8.0"  # the visitor's, not the calling server's
    assert event.context.user_agent_info is not None
    assert event.context.user_agent_info.device == "mobile"
    assert event.context.source == "segment"
    assert event.context.message_id == "ajs-1"
    assert event.occurred_at == datetime(2026, 11, 23, 11, 59, tzinfo=UTC)


def test_order_completed_takes_total_and_products():
    (event,) = _map(
        {
            "type": "track",
            "userId": "user-42",
            "event": "Order Completed",
            "properties": {
                "order_id": "50314b8e9bcf000000000000",
                "total": 27.5,
                "revenue": 25.0,
                "currency": "EUR",
                "products": [
                    {"product_id": "a1", "name": "Mug", "price": 12.5, "quantity": 2},
                    {"sku": "b2", "price": 2.5},
                ],
            },
        }
    ).accepted
    assert event.type == "order_completed"
    assert event.payload.order_id == "50314b8e9bcf000000000000"
    assert str(event.payload.value) == "27.5"
    assert [(item.product_id, item.quantity) for item in event.payload.items] == [
        ("a1", 2),
        ("b2", 1),
    ]
    assert event.visitor_id == "user-42"


def test_a_cart_without_a_value_is_summed_exactly_from_its_items():
    (event,) = _map(
        {
            "type": "track",
            "anonymousId": "anon-7",
            "event": "Cart Viewed",
            "properties": {
                "currency": "EUR",
                "products": [
                    {"product_id": "a", "price": 0.1, "quantity": 1},
                    {"product_id": "b", "price": 0.2, "quantity": 1},
                    {"product_id": "c", "price": 19.99, "quantity": 3},
                ],
            },
        }
    ).accepted
    assert event.type == "cart_updated"
    assert str(event.payload.value) == "60.27"  # 0.1 + 0.2 + 3 x 19.99, no float residue


def test_other_calls_are_kept_as_custom_events_nothing_is_dropped():
    result = _map(
        {
            "type": "track",
            "anonymousId": "a",
            "event": "Tweet Shared",
            "properties": {"tweet_text": "hi"},
        },
        {"type": "screen", "anonymousId": "a", "name": "Home"},
        {"type": "group", "anonymousId": "a", "groupId": "g1", "traits": {"plan": "pro"}},
        {"type": "alias", "userId": "u1", "previousId": "a"},
    )
    assert result.rejected == []
    assert [(e.type, e.payload.event) for e in result.accepted] == [
        ("custom", "Tweet Shared"),
        ("custom", "screen"),
        ("custom", "group"),
        ("custom", "alias"),
    ]
    assert result.accepted[0].payload.properties == {"tweet_text": "hi"}


def test_page_and_identify():
    page, identify = _map(
        {
            "type": "page",
            "anonymousId": "a",
            "name": "Checkout",
            "category": "checkout",
            "properties": {
                "url": "https://shop.example/checkout",
                "title": "Checkout",
                "search": "",
            },
        },
        {
            "type": "identify",
            "anonymousId": "a",
            "userId": "u1",
            "traits": {"email": "p@example.com"},
        },
    ).accepted
    assert page.type == "page_viewed"
    assert page.payload.page_type == "checkout"
    assert page.context.page is not None
    assert page.context.page.url == "https://shop.example/checkout"
    assert identify.type == "identified"
    assert identify.payload.user_id == "u1"
    assert identify.payload.traits == {"email": "p@example.com"}


def test_original_timestamp_is_corrected_by_sent_at_like_segment_does():
    (event,) = _map(
        {
            "type": "track",
            "anonymousId": "a",
            "event": "X",
            "originalTimestamp": "2026-11-23T10:00:00Z",
            "sentAt": "2026-11-23T10:00:05Z",
        }
    ).accepted
    # receivedAt - (sentAt - originalTimestamp)
    assert event.occurred_at == RECEIVED - timedelta(seconds=5)


def test_bad_messages_are_rejected_with_reasons():
    result = _map(
        {"type": "track", "event": "No ids"},
        {"type": "bogus", "anonymousId": "a"},
        "not an object",
        {"type": "track", "anonymousId": "a", "properties": {"name": "x"}},
        {
            "type": "track",
            "anonymousId": "a",
            "event": "Cart Viewed",
            "properties": {"currency": 5},
        },
    )
    assert result.accepted == []
    reasons = [r.detail for r in result.rejected]
    assert reasons[0] == "anonymousId or userId is required"
    assert reasons[1].startswith("type must be one of")
    assert reasons[2] == "each message must be an object"
    # Segment requires a track call's name; a currency must be an ISO 4217 code
    assert [e.loc for e in result.rejected[3].errors] == ["batch.3.payload.event"]
    assert [e.loc for e in result.rejected[4].errors] == ["batch.4.payload.currency"]


# ---- Segment's spec makes every e-commerce property optional ---------------------------


def _track(event, properties):
    return {"type": "track", "anonymousId": "a", "event": event, "properties": properties}


def _one(message):
    result = _map(message)
    assert result.rejected == []
    (event,) = result.accepted
    return event


def test_a_product_view_needs_no_name_price_or_currency():
    event = _one(_track("Product Viewed", {"product_id": "p1"}))
    assert event.type == "product_viewed"
    assert event.payload.model_dump() == {
        "product_id": "p1",
        "name": None,
        "category": None,
        "price": None,
        "currency": "USD",
    }


def test_a_product_view_with_only_a_sku_is_keyed_on_it():
    event = _one(_track("Product Viewed", {"sku": "G-32", "name": "Monopoly"}))
    assert (event.type, event.payload.product_id) == ("product_viewed", "G-32")


def test_a_product_view_without_any_product_id_is_kept_as_the_custom_event_it_was():
    event = _one(_track("Product Viewed", {"name": "Monopoly", "price": 18.99}))
    assert event.type == "custom"
    assert event.payload.event == "Product Viewed"
    assert event.payload.properties == {"name": "Monopoly", "price": 18.99}


def test_cart_products_need_no_id_price_or_quantity():
    products = [{"name": "Gift wrap"}, {"sku": "G-32", "price": 10, "quantity": None}]
    event = _one(_track("Cart Viewed", {"products": products}))
    assert event.type == "cart_updated"
    assert [(i.product_id, i.price, i.quantity) for i in event.payload.items] == [
        (None, None, 1),
        ("G-32", Decimal(10), 1),
    ]
    assert event.payload.value == Decimal(10)  # what the priced products add up to


def test_a_checkout_without_a_value_is_worth_its_products_or_nothing():
    priced = _one(_track("Checkout Started", {"products": [{"price": 2.5, "quantity": 2}]}))
    bare = _one(_track("Checkout Started", {}))
    assert (priced.type, priced.payload.value) == ("checkout_started", Decimal("5.0"))
    assert (bare.payload.value, bare.payload.currency, bare.payload.items) == (0, "USD", [])


def test_an_order_needs_no_order_id_nor_total():
    event = _one(_track("Order Completed", {"products": [{"product_id": "p1", "price": 30}]}))
    assert event.type == "order_completed"
    assert (event.payload.order_id, event.payload.value) == (None, Decimal(30))


def test_event_ids_are_stable_per_message_id_so_retries_deduplicate():
    first = event_id_for("demo", "msg-1", "2026-11-23T10:00:00Z")
    again = event_id_for("demo", "msg-1", "2026-11-23T10:00:00Z")
    other_site = event_id_for("shop2", "msg-1", "2026-11-23T10:00:00Z")
    assert first == again != other_site
    assert first.version == 7
    assert event_id_for("demo", None, None) != event_id_for("demo", None, None)
