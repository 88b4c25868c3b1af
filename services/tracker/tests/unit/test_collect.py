from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from beckon_contracts.ids import uuid7
from pydantic import ValidationError
from tracker.domain.admission import Edge, admit
from tracker.domain.collect import CollectBatch, batch_candidates
from tracker.domain.enrichment import clock_offset

RECEIVED = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
EDGE = Edge(
    received_at=RECEIVED,
    ip="203.0.113.77",
    user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36",
)


def _batch(*events, **overrides):
    data = {
        "visitor_id": "v_123",
        "session_id": "s_1",
        "sent_at": (RECEIVED - timedelta(minutes=5)).isoformat(),
        "context": {
            "page": {"url": "https://shop.example/p/1", "title": "Shoe"},
            "campaign": {"source": "newsletter", "medium": "email"},
            "locale": "fi-FI",
            # Server-side fields are never taken from the browser:
            "ip": "1.2.3.4",
            "is_bot": True,
        },
        "events": list(events),
    } | overrides
    return CollectBatch.model_validate(data)


def _admit(batch):
    candidates = batch_candidates(batch, site_id="demo", edge=EDGE)
    return admit(
        candidates,
        offset=clock_offset(batch.sent_at, RECEIVED),
        received_at=RECEIVED,
        max_event_bytes=2048,
        check_sizes=True,
        loc_prefix="events",
    )


def _event(kind, payload, **extra):
    occurred = (RECEIVED - timedelta(minutes=5, seconds=2)).isoformat()
    return {
        "event_id": str(uuid7()),
        "type": kind,
        "occurred_at": occurred,
        "payload": payload,
    } | extra


def test_valid_events_get_server_context_and_corrected_time():
    product = {"product_id": "p1", "name": "Shoe", "price": "59.90", "currency": "eur"}
    result = _admit(
        _batch(_event("page_viewed", {"page_type": "product"}), _event("product_viewed", product))
    )
    assert result.rejected == []
    page, viewed = result.accepted
    assert (page.type, viewed.type) == ("page_viewed", "product_viewed")
    assert viewed.payload.price == Decimal("59.90")
    assert viewed.payload.currency == "EUR"
    assert viewed.site_id == "demo"
    assert viewed.visitor_id == "v_123"
    assert viewed.session_id == "s_1"
    assert viewed.received_at == RECEIVED
    # the browser's clock was 5 minutes behind: 2 s before it sent is 2 s before we received
    assert viewed.occurred_at == RECEIVED - timedelta(seconds=2)
    context = viewed.context
    assert str(context.ip) == "203.0.113.0"
    assert context.is_bot is False
    assert context.user_agent_info is not None
    assert context.user_agent_info.browser == "Chrome"
    assert context.campaign is not None
    assert context.campaign.source == "newsletter"
    assert context.locale == "fi-FI"
    assert context.source == "snippet"


def test_each_event_may_override_page_and_campaign():
    event = _event("page_viewed", {}, context={"page": {"url": "https://shop.example/cart"}})
    (accepted,) = _admit(_batch(event)).accepted
    assert accepted.context.page is not None
    assert accepted.context.page.url == "https://shop.example/cart"
    assert accepted.context.locale == "fi-FI"


def test_invalid_events_are_rejected_one_by_one_with_the_field_and_why():
    bad_price = _event(
        "product_viewed", {"product_id": "p1", "name": "Shoe", "price": -1, "currency": "EUR"}
    )
    unknown_type = _event("teleported", {})
    good = _event("checkout_started", {"value": 120, "currency": "EUR"})
    result = _admit(_batch(bad_price, unknown_type, good))
    assert [event.type for event in result.accepted] == ["checkout_started"]
    price, kind = result.rejected
    assert price.index == 0
    assert price.reason == "schema_invalid"
    assert [error.loc for error in price.errors] == ["events.0.payload.price"]
    assert "greater than or equal to 0" in price.errors[0].msg
    assert kind.index == 1
    assert kind.errors[0].loc == "events.1.type"
    assert price.raw == bad_price  # the raw input travels to the dead-letter topic untouched


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("just a string", "each event must be a JSON object"),
        ({"type": "page_viewed", "payload": {}, "sneaky": 1}, "unexpected field(s): sneaky"),
        ({"type": "page_viewed", "context": "x"}, "context must be an object"),
    ],
)
def test_malformed_items_are_rejected_not_raised(raw, problem):
    (rejection,) = _admit(_batch(raw)).rejected
    assert rejection.detail == problem
    assert rejection.errors[0].loc == "events.0"


def test_event_ids_must_be_uuid7_but_missing_ones_are_assigned():
    v4 = _event("page_viewed", {}, event_id=str(uuid4()))
    missing = _event("page_viewed", {})
    del missing["event_id"]
    result = _admit(_batch(v4, missing))
    assert result.rejected[0].errors[0].loc == "events.0.event_id"
    assert "UUIDv7" in result.rejected[0].errors[0].msg
    assert result.accepted[0].event_id.version == 7


def test_oversized_events_are_rejected_as_too_large():
    huge = _event("custom", {"event": "x", "properties": {"blob": "y" * 5000}})
    (rejection,) = _admit(_batch(huge)).rejected
    assert rejection.reason == "too_large"


def test_the_batch_shape_is_validated():
    with pytest.raises(ValidationError) as caught:
        CollectBatch.model_validate({"visitor_id": "has space", "events": []})
    locs = {error["loc"] for error in caught.value.errors()}
    assert locs == {("visitor_id",), ("events",)}


def test_an_invalid_shared_context_is_reported_on_every_event():
    batch = _batch(_event("page_viewed", {}), _event("page_viewed", {}))
    batch = batch.model_copy(
        update={"context": batch.context.model_copy(update={"screen_width": -5})}
    )
    result = _admit(batch)
    assert result.accepted == []
    assert [r.errors[0].loc for r in result.rejected] == [
        "events.0.context.screen_width",
        "events.1.context.screen_width",
    ]
