"""Live-list snapshots: sent on a visible change, at most once per interval per visitor."""

from __future__ import annotations

import orjson
from beckon_contracts.rules import SiteRules
from beckon_contracts.visitors import AGENT_TEXT_MAX, TEXT_MAX, ScoreCrossed, VisitorSnapshot
from triggers.domain.engine import Site, step
from triggers.domain.observation import observe
from triggers.domain.snapshot import (
    score_crossed,
    score_crossed_record,
    snapshot,
    snapshot_if_due,
    snapshot_record,
)
from triggers.domain.state import VisitorState
from triggers_testing import T0, product_view, tracking_event

SITE = Site.of(SiteRules(site_id="demo", rules=[]))
NOW = T0.timestamp()


def visit(state: VisitorState, *events: dict) -> None:
    for event in events:
        step(SITE, state, observe(event))


def test_a_change_is_sent_once_and_a_quick_second_change_waits() -> None:
    state = VisitorState("demo", "v1")
    visit(state, tracking_event("demo", "v1", "page_viewed", 0))
    record, waiting = snapshot_if_due(state, NOW, 1.0)
    assert record is not None
    assert not waiting
    snapshot = VisitorSnapshot.model_validate_json(record)
    assert snapshot.payload.url == "https://shop.example/"
    assert snapshot.payload.invited is False

    assert snapshot_if_due(state, NOW + 0.2, 1.0) == (None, False)  # nothing changed

    visit(state, product_view("demo", "v1", 5))
    assert snapshot_if_due(state, NOW + 0.5, 1.0) == (None, True)  # changed, too soon
    record, waiting = snapshot_if_due(state, NOW + 1.1, 1.0)
    assert record is not None
    assert VisitorSnapshot.model_validate_json(record).payload.current_product == "Trail Shoe P1"


def test_heartbeats_alone_change_nothing_the_list_shows() -> None:
    state = VisitorState("demo", "v1")
    visit(state, tracking_event("demo", "v1", "page_viewed", 0))
    snapshot_if_due(state, NOW, 1.0)
    beat = tracking_event("demo", "v1", "heartbeat", 15, payload={"seconds_on_page": 15})
    visit(state, beat)
    assert snapshot_if_due(state, NOW + 15, 1.0) == (None, False)


def test_the_score_crossed_record_honours_its_contract() -> None:
    state = VisitorState("demo", "v1")
    checkout = {"value": 250.0, "currency": "EUR", "items": []}
    visit(state, tracking_event("demo", "v1", "checkout_started", 0, payload=checkout))
    result = SITE.scorer.current(state.score_state, state.last_seen)
    record = ScoreCrossed.model_validate_json(score_crossed_record(state, result, "e1"))
    assert record.payload.score == result.score
    assert orjson.loads(score_crossed_record(state, result, "e1")) == orjson.loads(
        score_crossed_record(state, result, "e1")
    )  # the same event gives the same record id (replays deduplicate)


def test_the_snapshot_says_device_browser_and_an_external_referrer_only() -> None:
    state = VisitorState("demo", "v1")
    first = tracking_event(
        "demo", "v1", "page_viewed", 0, referrer="https://news.example/story?id=1"
    )
    first["context"]["user_agent_info"] = {
        "browser": "Firefox",
        "os": "Android",
        "device": "mobile",
    }
    visit(state, first)
    payload = VisitorSnapshot.model_validate_json(
        snapshot_if_due(state, NOW, 1.0)[0] or b""
    ).payload
    assert (payload.device, payload.browser, payload.os) == ("mobile", "Firefox", "Android")
    assert payload.referrer == "https://news.example/story?id=1"
    assert payload.source == "news.example"

    other = VisitorState("demo", "v2")  # arrived from the store's own page: direct
    visit(other, tracking_event("demo", "v2", "page_viewed", 0, referrer="https://shop.example/a"))
    payload = VisitorSnapshot.model_validate_json(
        snapshot_if_due(other, NOW, 1.0)[0] or b""
    ).payload
    assert (payload.source, payload.referrer) == ("direct", None)


def test_a_snapshot_from_a_batch_that_did_not_score_still_explains_the_score() -> None:
    state = VisitorState("demo", "v1")
    visit(state, product_view("demo", "v1", 0), product_view("demo", "v1", 5, product="p2"))
    assert state.score > 0
    record = snapshot_if_due(state, NOW + 5, 1.0)[0]  # no breakdown passed: a heartbeat batch
    payload = VisitorSnapshot.model_validate_json(record or b"").payload
    assert payload.score_breakdown
    assert abs(sum(payload.score_breakdown.values()) - payload.score) < 0.2


def _wire(record: VisitorSnapshot | ScoreCrossed) -> bytes:
    return record.model_dump_json(exclude={"received_at"}).encode()


def test_records_are_built_from_their_contract_and_round_trip() -> None:
    state = VisitorState("demo", "v1")
    checkout = {"value": 250.0, "currency": "EUR", "items": [{"quantity": 2}]}
    visit(
        state,
        product_view("demo", "v1", 0),
        tracking_event("demo", "v1", "checkout_started", 7.25, payload=checkout),
    )
    raw = snapshot_record(state)
    assert snapshot(state) == VisitorSnapshot.model_validate_json(raw)
    assert _wire(VisitorSnapshot.model_validate_json(raw)) == raw  # nothing lost or added
    # the wire format chat has always read: no received_at, session_id and nulls written
    data = orjson.loads(raw)
    assert "received_at" not in data
    assert data["session_id"] == state.session_id
    assert data["occurred_at"] == data["payload"]["last_seen_at"] == "2026-11-02T10:00:07.250000Z"
    assert data["payload"]["cart_items"] == 2
    assert data["payload"]["title"] is None

    result = SITE.scorer.current(state.score_state, state.last_seen)
    raw = score_crossed_record(state, result, "e1")
    assert score_crossed(state, result, "e1") == ScoreCrossed.model_validate_json(raw)
    assert _wire(ScoreCrossed.model_validate_json(raw)) == raw
    assert "received_at" not in orjson.loads(raw)


def test_free_form_traits_and_agent_names_are_clipped_to_the_contract() -> None:
    state = VisitorState("demo", "v1")
    identified = tracking_event(
        "demo", "v1", "identified", 0, payload={"traits": {"name": "N" * 5000, "email": "e@x"}}
    )
    identified["context"]["user_agent_info"] = {"browser": "B" * 300, "os": "O" * 300}
    visit(state, identified)
    payload = VisitorSnapshot.model_validate_json(snapshot_record(state)).payload
    assert payload.name == "N" * TEXT_MAX
    assert payload.email == "e@x"
    assert (payload.browser, payload.os) == ("B" * AGENT_TEXT_MAX, "O" * AGENT_TEXT_MAX)
