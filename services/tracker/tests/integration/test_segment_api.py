"""Samples from Segment's published spec are accepted through the compatible endpoints."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from beckon_contracts.tracking import parse_tracking_event
from beckon_devstack.kafka_probe import read_records

pytestmark = pytest.mark.integration
AUTH = ("wk_test_write_key", "")
SAMPLES = json.loads((Path(__file__).parent / "segment_samples.json").read_text())


def _with_ids(message, anonymous_id):
    message = copy.deepcopy(message)
    message["anonymousId"] = anonymous_id
    message.pop("userId", None)
    return message


@pytest.mark.parametrize(
    ("route", "sample", "expected_type"),
    [
        ("/v1/track", SAMPLES["track"], "custom"),
        ("/v1/page", SAMPLES["page"], "page_viewed"),
        ("/v1/identify", SAMPLES["identify"], "identified"),
        ("/v1/track", SAMPLES["order_completed"], "order_completed"),
    ],
)
async def test_published_single_call_samples_are_accepted(
    tracker, kafka_bootstrap, unique, route, sample, expected_type
):
    visitor = unique("seg")
    message = _with_ids(sample, visitor)
    if route != "/v1/track":
        message.pop("type")  # the route names the call
    response = await tracker.post(route, json=message, auth=AUTH)
    assert (response.status_code, response.json()) == (200, {"success": True})
    (record,) = await read_records(
        kafka_bootstrap,
        "tracking.events",
        match=lambda r: r.key == f"demo:{visitor}".encode(),
        count=1,
    )
    event = parse_tracking_event(record.value)
    assert event.type == expected_type
    assert event.context.source == "segment"
    assert event.context.message_id == (sample.get("messageId") or None)


async def test_published_batch_sample_is_accepted_in_order(tracker, kafka_bootstrap, unique):
    batch = copy.deepcopy(SAMPLES["batch"])
    user = unique("u")
    for message in batch["batch"]:
        message["userId"] = user
    response = await tracker.post("/v1/batch", json=batch, auth=AUTH)
    assert response.status_code == 200
    records = await read_records(
        kafka_bootstrap,
        "tracking.events",
        match=lambda r: r.key == f"demo:{user}".encode(),
        count=3,
    )
    events = [parse_tracking_event(r.value) for r in records]
    assert [e.type for e in events] == ["identified", "custom", "custom"]
    assert events[1].payload.properties["artist"] == "Dan Gibson"


async def test_write_key_in_the_body_is_accepted_like_analytics_js_sends_it(tracker, unique):
    message = _with_ids(SAMPLES["track"], unique("seg")) | {"writeKey": "wk_test_write_key"}
    assert (await tracker.post("/v1/track", json=message)).status_code == 200


async def test_unknown_or_missing_write_key_is_401_with_a_challenge(tracker, unique):
    message = _with_ids(SAMPLES["track"], unique("seg"))
    missing = await tracker.post("/v1/track", json=message)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Basic")
    wrong = await tracker.post("/v1/track", json=message, auth=("wk_wrong_key_x", ""))
    assert wrong.status_code == 401
    garbled = await tracker.post(
        "/v1/track",
        json=message,
        headers={"authorization": "Basic !!!" + base64.b64encode(b"x").decode()},
    )
    assert garbled.status_code == 401


async def test_an_invalid_message_in_a_batch_is_dead_lettered_and_named(tracker, unique):
    user = unique("u")
    batch = {
        "batch": [
            {"type": "track", "userId": user, "event": "Fine"},
            {"type": "track", "event": "No ids at all"},
        ]
    }
    response = await tracker.post("/v1/batch", json=batch, auth=AUTH)
    # 200: no Segment SDK retries (or reports as lost) the part that was accepted
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["accepted"] == 1
    assert body["rejected"][0]["index"] == 1
    assert body["rejected"][0]["detail"] == "anonymousId or userId is required"


async def test_a_call_rejected_whole_is_a_400_with_segment_shaped_fields(tracker):
    response = await tracker.post("/v1/track", json={"event": "No ids"}, auth=AUTH)
    assert response.status_code == 400  # reported by every SDK, retried by none
    body = response.json()
    assert (body["success"], body["code"], body["error"]) == (
        False,
        "schema_invalid",
        "schema_invalid",
    )
    assert body["message"]
