"""Fuzzing the public endpoints: whatever arrives, the answer is never a 5xx."""

from __future__ import annotations

import json

import pytest
from beckon_contracts.tracking import TRACKING_EVENT_TYPES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

# A 503 only ever means "broker unavailable"; the broker is up here, so any 5xx is a defect.
ALLOWED = {200, 400, 401, 403, 413, 415, 422, 429}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
event_types = st.sampled_from([*TRACKING_EVENT_TYPES, "nonsense"])
near_valid_events = st.fixed_dictionaries(
    {"type": event_types},
    optional={
        "event_id": st.uuids().map(str) | st.text(max_size=40),
        "occurred_at": st.datetimes().map(lambda d: d.isoformat())
        | st.text(max_size=30)
        | st.integers(),
        "payload": st.dictionaries(
            st.sampled_from(
                [
                    "product_id",
                    "name",
                    "price",
                    "currency",
                    "items",
                    "value",
                    "order_id",
                    "event",
                    "properties",
                    "seconds_on_page",
                    "traits",
                    "page_type",
                ]
            ),
            json_values,
            max_size=6,
        ),
        "context": st.dictionaries(
            st.sampled_from(["page", "campaign", "x"]), json_values, max_size=2
        ),
    },
)
near_valid_batches = st.fixed_dictionaries(
    {"events": st.lists(near_valid_events | json_values, max_size=5)},
    optional={
        "visitor_id": st.text(max_size=40) | st.integers(),
        "session_id": st.text(max_size=40),
        "sent_at": st.datetimes().map(lambda d: d.isoformat()) | st.text(max_size=10),
        "context": st.dictionaries(
            st.sampled_from(["page", "campaign", "locale", "screen_width"]), json_values
        ),
        "site_key": st.text(max_size=20),
    },
)
segment_messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "page", "identify", "screen", "group", "alias", "bad"]),
        "anonymousId": st.text(max_size=30) | st.integers() | json_values,
        "userId": st.text(max_size=30) | st.integers(),
        "event": st.sampled_from(
            ["Product Viewed", "Order Completed", "Cart Viewed", "Checkout Started"]
        )
        | st.text(max_size=20)
        | json_values,
        "properties": st.dictionaries(st.text(max_size=12), json_values, max_size=6),
        "context": st.dictionaries(
            st.sampled_from(["ip", "userAgent", "page", "campaign", "screen", "library"]),
            json_values,
        ),
        "timestamp": st.text(max_size=30),
        "originalTimestamp": st.datetimes().map(lambda d: d.isoformat()) | st.text(max_size=5),
        "sentAt": st.text(max_size=30),
        "messageId": st.text(max_size=30) | st.integers(),
        "traits": json_values,
    },
)


def _check(response):
    assert response.status_code in ALLOWED, (response.status_code, response.text)


@FUZZ
@given(body=near_valid_batches)
async def test_collect_never_fails_on_structured_input(tracker, body):
    _check(await tracker.post("/v1/collect?k=pk_test_site_key", content=json.dumps(body)))


@FUZZ
@given(body=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
async def test_collect_never_fails_on_arbitrary_bytes(tracker, body):
    _check(await tracker.post("/v1/collect?k=pk_test_site_key", content=body))
    _check(await tracker.post("/v1/collect", content=body, headers={"content-encoding": "gzip"}))


@FUZZ
@given(
    message=segment_messages,
    route=st.sampled_from(["track", "page", "identify", "screen", "group", "alias"]),
)
async def test_segment_calls_never_fail(tracker, message, route):
    _check(
        await tracker.post(
            f"/v1/{route}", content=json.dumps(message), auth=("wk_test_write_key", "")
        )
    )


@FUZZ
@given(batch=st.lists(segment_messages | json_values, max_size=5), extra=json_values)
async def test_segment_batch_never_fails(tracker, batch, extra):
    body = {"batch": batch, "context": extra, "sentAt": extra}
    _check(
        await tracker.post("/v1/batch", content=json.dumps(body), auth=("wk_test_write_key", ""))
    )
