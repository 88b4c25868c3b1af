"""The tracker against a real broker: what lands, where, in what order, and what is refused."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.ids import uuid7
from beckon_contracts.tracking import parse_tracking_event
from beckon_devstack.kafka_probe import read_records
from beckon_devstack.ports import free_port

pytestmark = pytest.mark.integration
KEY = "pk_test_site_key"


def _event(kind, payload):
    return {
        "event_id": str(uuid7()),
        "type": kind,
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }


def _batch(visitor, *events):
    return {
        "visitor_id": visitor,
        "session_id": "s1",
        "sent_at": datetime.now(UTC).isoformat(),
        "context": {"page": {"url": "https://shop.example/"}},
        "events": list(events),
    }


def _key_is(visitor):
    return lambda record: record.key == f"demo:{visitor}".encode()


async def test_events_land_in_order_with_keys_and_trace_headers(tracker, kafka_bootstrap, unique):
    visitor = unique("v")
    product = {"product_id": "p1", "name": "Boot", "price": 129.0, "currency": "EUR"}
    cart = {
        "items": [{"product_id": "p1", "price": 129.0, "quantity": 1}],
        "value": 129,
        "currency": "EUR",
    }
    sent = [
        _event("page_viewed", {"page_type": "home"}),
        _event("product_viewed", product),
        _event("cart_updated", cart),
        _event("checkout_started", {"value": 129, "currency": "EUR"}),
        _event("order_completed", {"order_id": "o-1", "value": 129, "currency": "EUR"}),
    ]
    first = await tracker.post(f"/v1/collect?k={KEY}", json=_batch(visitor, *sent[:2]))
    second = await tracker.post(f"/v1/collect?k={KEY}", json=_batch(visitor, *sent[2:]))
    assert (first.status_code, first.json()) == (200, {"accepted": 2})
    assert (second.status_code, second.json()) == (200, {"accepted": 3})

    records = await read_records(
        kafka_bootstrap, "tracking.events", match=_key_is(visitor), count=5
    )
    assert len({record.partition for record in records}) == 1
    events = [parse_tracking_event(record.value) for record in records]
    assert [str(e.event_id) for e in events] == [e["event_id"] for e in sent]
    assert [e.type for e in events] == [
        "page_viewed",
        "product_viewed",
        "cart_updated",
        "checkout_started",
        "order_completed",
    ]
    assert all(e.received_at is not None and e.site_id == "demo" for e in events)
    assert all(str(e.context.ip) == "203.0.113.0" for e in events)
    for record, event in zip(records, events, strict=True):
        headers = dict(record.headers)
        assert headers["event_type"] == event.type.encode()
        assert headers["traceparent"].startswith(b"00-")
    # one request, one trace: both records of the first request share its trace id
    assert (
        dict(records[0].headers)["traceparent"][3:35]
        == dict(records[1].headers)["traceparent"][3:35]
    )


async def test_invalid_events_go_to_the_dead_letter_topic_with_reason_and_raw(
    tracker, kafka_bootstrap, unique
):
    visitor = unique("v")
    bad = _event(
        "product_viewed", {"product_id": "p1", "name": "Boot", "price": "free", "currency": "EUR"}
    )
    good = _event("page_viewed", {})
    response = await tracker.post(f"/v1/collect?k={KEY}", json=_batch(visitor, good, bad))
    assert response.status_code == 422
    body = response.json()
    assert body["accepted"] == 1
    (rejected,) = body["rejected"]
    assert rejected["index"] == 1
    assert rejected["event_id"] == bad["event_id"]
    assert rejected["errors"][0]["loc"] == "events.1.payload.price"

    (letter_record,) = await read_records(
        kafka_bootstrap, "tracking.dlq", match=_key_is(visitor), count=1
    )
    letter = DeadLettered.model_validate_json(letter_record.value)
    assert letter.payload.reason == "schema_invalid"
    assert letter.payload.source == "POST /v1/collect"
    assert letter.payload.errors[0].loc == "events.1.payload.price"
    assert json.loads(letter.payload.raw) == bad
    (kept,) = await read_records(
        kafka_bootstrap, "tracking.events", match=_key_is(visitor), count=1
    )
    assert parse_tracking_event(kept.value).event_id.hex == good["event_id"].replace("-", "")


async def test_malformed_json_is_400_and_dead_lettered_raw(tracker, kafka_bootstrap, unique):
    marker = unique("garbage")
    response = await tracker.post(
        f"/v1/collect?k={KEY}", content=f'{{"visitor_id": "{marker}", oops'.encode()
    )
    assert response.status_code == 400
    assert response.json()["error"] == "malformed_json"
    (record,) = await read_records(
        kafka_bootstrap, "tracking.dlq", match=lambda r: marker.encode() in r.value, count=1
    )
    letter = DeadLettered.model_validate_json(record.value)
    assert letter.payload.reason == "malformed_json"
    assert marker in letter.payload.raw


async def test_schema_errors_in_the_batch_shape_name_the_field(tracker):
    response = await tracker.post(f"/v1/collect?k={KEY}", json={"visitor_id": "v 1", "events": "x"})
    assert response.status_code == 422
    locs = {detail["loc"] for detail in response.json()["details"]}
    assert locs == {"visitor_id", "events"}


async def test_unknown_keys_are_401_and_origins_are_checked(tracker, unique):
    batch = _batch(unique("v"), _event("page_viewed", {}))
    assert (await tracker.post("/v1/collect?k=pk_nope_nope", json=batch)).status_code == 401
    assert (await tracker.post("/v1/collect", json=batch)).status_code == 401
    in_body = await tracker.post("/v1/collect", json=batch | {"site_key": KEY})
    assert in_body.status_code == 200
    foreign = await tracker.post(
        f"/v1/collect?k={KEY}", json=batch, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    # refusals are readable by the page, so the snippet drops instead of retrying blindly
    assert foreign.headers["access-control-allow-origin"] == "https://evil.example"
    own = await tracker.post(
        f"/v1/collect?k={KEY}", json=batch, headers={"origin": "https://shop.example"}
    )
    assert own.status_code == 200
    assert own.headers["access-control-allow-origin"] == "https://shop.example"
    assert own.headers["access-control-expose-headers"] == "Retry-After"
    unknown = await tracker.post(
        "/v1/collect?k=pk_nope_nope", json=batch, headers={"origin": "https://shop.example"}
    )
    assert unknown.status_code == 401
    assert unknown.headers["access-control-allow-origin"] == "https://shop.example"


async def test_cors_preflight(tracker):
    ok = await tracker.options(
        f"/v1/collect?k={KEY}",
        headers={"origin": "https://shop.example", "access-control-request-method": "POST"},
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in ok.headers["access-control-allow-methods"]
    denied = await tracker.options(
        f"/v1/collect?k={KEY}", headers={"origin": "https://evil.example"}
    )
    assert denied.status_code == 403


async def test_gzip_bodies_are_inflated_with_a_hard_limit(tracker, kafka_bootstrap, unique):
    visitor = unique("v")
    body = gzip.compress(orjson.dumps(_batch(visitor, _event("page_viewed", {}))))
    response = await tracker.post(
        f"/v1/collect?k={KEY}", content=body, headers={"content-encoding": "gzip"}
    )
    assert response.status_code == 200
    await read_records(kafka_bootstrap, "tracking.events", match=_key_is(visitor), count=1)

    bomb = gzip.compress(b"[" + b" " * 5_000_000 + b"]")  # 5 MB of nothing, ~5 KB on the wire
    response = await tracker.post(
        f"/v1/collect?k={KEY}", content=bomb, headers={"content-encoding": "gzip"}
    )
    assert response.status_code == 413
    truncated = await tracker.post(
        f"/v1/collect?k={KEY}", content=body[:-12], headers={"content-encoding": "gzip"}
    )
    assert truncated.status_code == 400
    brotli = await tracker.post(
        f"/v1/collect?k={KEY}", content=b"x", headers={"content-encoding": "br"}
    )
    assert brotli.status_code == 415


async def test_bodies_over_the_limit_are_413(tracker, unique):
    big = _batch(unique("v"), _event("custom", {"event": "x", "properties": {"b": "y" * 600_000}}))
    response = await tracker.post(f"/v1/collect?k={KEY}", json=big)
    assert response.status_code == 413
    assert "larger than" in response.json()["message"]
    many = _batch(unique("v"), *[_event("page_viewed", {}) for _ in range(101)])
    assert (await tracker.post(f"/v1/collect?k={KEY}", json=many)).status_code == 413


async def test_snippet_files_are_served_compressed(tracker):
    plain = await tracker.get("/beckon.js", headers={"accept-encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["content-type"].startswith("application/javascript")
    zipped = await tracker.get("/loader.js", headers={"accept-encoding": "gzip"})
    assert zipped.status_code == 200


async def test_health_readiness_and_metrics_on_their_own_port(start_tracker, make_settings):
    port = free_port()
    async with start_tracker(make_settings(metrics_port=port)) as tracker:
        assert (await tracker.get("/healthz")).json() == {"status": "ok"}
        assert (await tracker.get("/readyz")).json()["broker"] == "reachable"
        batch = _batch("metrics-visitor", _event("page_viewed", {}))
        assert (await tracker.post(f"/v1/collect?k={KEY}", json=batch)).status_code == 200
        assert (await tracker.get("/metrics")).status_code == 404  # not on the public app
        async with httpx.AsyncClient() as internal:
            metrics = (await internal.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'tracker_http_requests_total{route="POST /v1/collect",status="200"}' in metrics
    assert 'tracker_events_total{outcome="accepted"}' in metrics
