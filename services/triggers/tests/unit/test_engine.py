"""The visitor step and the admission step together, without a broker: what the worker does
with one batch, as plain function calls."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from beckon_contracts.presence import AgentPresence, TeamPresence
from beckon_contracts.rules import SiteRules
from triggers.domain.decide import SiteDecider, VisitorMarks
from triggers.domain.engine import CANDIDATE_RETRY_S, Site, apply_feedback, step
from triggers.domain.observation import BadRecord, observe
from triggers.domain.state import VisitorState
from triggers_testing import T0, product_view, tracking_event

NOW = T0.timestamp()


def rules(**overrides: Any) -> Site:
    rule = {
        "id": "fourth-view",
        "name": "4th view",
        "when": {"product_views": {"gte": 4}},
        "message": "{agent_name} here: questions about the {product_name}?",
        "holdout_percent": 0,
    } | overrides
    return Site.of(SiteRules.model_validate({"site_id": "demo", "rules": [rule]}))


def presence(open_chats: int = 0, max_chats: int = 5) -> TeamPresence:
    return TeamPresence(
        event_id="019a0000-0000-7000-8000-000000000001",
        occurred_at=T0,
        site_id="demo",
        team="sales",
        agents=[
            AgentPresence(
                agent_id="a1",
                name="Aino",
                status="online",
                open_chats=open_chats,
                max_chats=max_chats,
            )
        ],
    )


def run(site: Site, state: VisitorState, *events: dict[str, Any]) -> list[Any]:
    candidates = []
    for event in events:
        result = step(site, state, observe(event))
        if result.candidate is not None:
            candidates.append(result.candidate)
    return candidates


def test_observe_names_the_field_it_cannot_use() -> None:
    event = product_view("demo", "v1", 0)
    del event["payload"]["product_id"]
    with pytest.raises(BadRecord) as error:
        observe(event)
    assert error.value.field == "payload.product_id"
    with pytest.raises(BadRecord, match="type"):
        observe({**event, "type": "teleported"})
    with pytest.raises(BadRecord, match="occurred_at"):
        observe({**product_view("demo", "v1", 0), "occurred_at": "yesterday"})


def test_a_product_view_without_name_or_price_counts_but_shows_no_price() -> None:
    """Segment's spec makes both optional, and the tracker passes such views on."""
    event = product_view("demo", "v1", 0)
    del event["payload"]["name"], event["payload"]["price"]
    state = VisitorState("demo", "v1")
    step(rules(), state, observe(event))
    assert state.views_of("p1") == 1
    assert state.seen_price is False
    step(rules(), state, observe(product_view("demo", "v1", 5)))
    assert (state.views_of("p1"), state.seen_price) == (2, True)


def test_an_order_without_an_order_id_still_counts() -> None:
    payload = {"value": 30.0, "currency": "EUR"}
    state = VisitorState("demo", "v1")
    step(
        rules(), state, observe(tracking_event("demo", "v1", "order_completed", 0, payload=payload))
    )
    assert (state.orders, state.revenue) == (1, 30.0)


def test_the_fourth_view_makes_one_candidate_and_retries_wait() -> None:
    site, state = rules(), VisitorState("demo", "v1")
    views = [product_view("demo", "v1", t) for t in (30, 40, 50, 60, 65)]
    candidates = run(site, state, *views)
    assert [c.trigger_event_id for c in candidates] == [views[3]["event_id"]]
    [candidate] = candidates
    assert candidate.variables["product_name"] == "Trail Shoe P1"
    assert candidate.rule_id == "fourth-view"
    # still matching, but admission is asked again only after CANDIDATE_RETRY_S
    later = product_view("demo", "v1", 60 + CANDIDATE_RETRY_S)
    assert len(run(site, state, later)) == 1


def test_bots_and_visitors_already_chatting_get_no_candidate() -> None:
    site, state = rules(), VisitorState("demo", "bot")
    bot_views = [product_view("demo", "bot", 30 + 10 * i) for i in range(4)]
    for event in bot_views:
        event["context"]["is_bot"] = True
    assert run(site, state, *bot_views) == []


def test_a_session_without_ids_still_has_sessions() -> None:
    state = VisitorState("demo", "v1")
    first = tracking_event("demo", "v1", "page_viewed", 0)
    back = tracking_event("demo", "v1", "page_viewed", 3 * 3600)
    for event in (first, back):
        del event["session_id"]
        step(rules(), state, observe(event))
    assert state.sessions == 2
    assert state.returning
    assert state.session_id == "auto-2"


def decide(site: Site, candidates: list[Any], marks: dict[str, VisitorMarks], **kw: Any) -> Any:
    decider = SiteDecider.load(site, None, {"sales": presence(**kw)})
    return decider, decider.decide(candidates, marks, NOW)


def test_admission_issues_a_rendered_invitation_and_counts_it() -> None:
    site, state = rules(), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    marks = {"demo:v1": VisitorMarks()}
    _, [decision] = decide(site, [candidate], marks)
    assert decision.kind == "issued"
    record = orjson.loads(decision.record)
    assert record["payload"]["message"] == "Aino here: questions about the Trail Shoe P1?"
    assert record["event_id"] == candidate.invitation_id
    assert [o.kind for o in decision.outcomes] == ["eligible", "invited"]

    # The visitor stage hears about it and won't be asked again this session
    apply_feedback(site, state, record, NOW)
    assert [m.arm for m in state.invitations] == ["invited"]


def test_a_replayed_candidate_gets_the_same_record_not_a_second_invitation() -> None:
    site, state = rules(), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    marks = {"demo:v1": VisitorMarks()}
    decider, [first] = decide(site, [candidate], marks)
    stored = {"demo:v1": VisitorMarks.from_json(marks["demo:v1"].to_json())}
    again = SiteDecider.load(site, decider.to_json(), {"sales": presence()})
    [second] = again.decide([candidate], stored, NOW + 1)
    assert second.kind == "resent"
    assert second.record == first.record


def test_once_per_session_holds_across_candidates_of_the_same_rule() -> None:
    site, state = rules(), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    marks = {"demo:v1": VisitorMarks()}
    decide(site, [candidate], marks)
    [retry] = run(site, state, product_view("demo", "v1", 90))
    _, [decision] = decide(site, [retry], marks)
    assert (decision.kind, decision.reason) == ("refused", "once_per_session")


def test_a_held_out_visitor_is_recorded_without_taking_a_slot() -> None:
    site, state = rules(holdout_percent=100), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    marks = {"demo:v1": VisitorMarks()}
    decider, [decision] = decide(site, [candidate], marks)
    assert decision.kind == "held_out"
    assert orjson.loads(decision.record)["type"] == "invitation.held_out"
    assert decider.admission.outstanding("sales", NOW) == 0
    assert [o.kind for o in decision.outcomes] == ["eligible", "held_out"]


def test_no_free_slot_means_no_invitation() -> None:
    site, state = rules(), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    _, [decision] = decide(site, [candidate], {"demo:v1": VisitorMarks()}, open_chats=5)
    assert (decision.kind, decision.reason) == ("refused", "no_capacity")
    assert decision.record is None


def test_an_order_after_an_invitation_is_attributed_to_the_rule_once_per_visitor() -> None:
    site, state = rules(), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    marks = {"demo:v1": VisitorMarks()}
    _, [decision] = decide(site, [candidate], marks)
    apply_feedback(site, state, orjson.loads(decision.record), NOW + 40)
    order = {"order_id": "o1", "value": 120.0, "currency": "EUR"}
    first = step(site, state, observe(server_order(60, order)))
    second = step(site, state, observe(server_order(90, order | {"order_id": "o2"})))
    assert [(o.kind, o.arm, o.value, o.first) for o in first.outcomes] == [
        ("order", "invited", 120.0, True)
    ]
    assert [(o.first, o.before) for o in second.outcomes] == [(False, 120.0)]


def server_order(seconds: float, order: dict[str, Any]) -> dict[str, Any]:
    return tracking_event(
        "demo", "v1", "order_completed", seconds, payload=order, reported_by="server"
    )


def test_a_browser_reported_order_is_a_conversion_without_revenue() -> None:
    """The probe's 999,999,999 EUR through the snippet: the rule converted, earned nothing."""
    site, state = rules(), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    _, [decision] = decide(site, [candidate], {"demo:v1": VisitorMarks()})
    apply_feedback(site, state, orjson.loads(decision.record), NOW + 40)
    claim = {"order_id": "o1", "value": 999_999_999.0, "currency": "EUR"}
    browser = step(
        site, state, observe(tracking_event("demo", "v1", "order_completed", 60, payload=claim))
    )
    server = step(site, state, observe(server_order(90, claim | {"order_id": "o2", "value": 80.0})))
    assert [(o.kind, o.value, o.first) for o in browser.outcomes] == [("order", 0.0, True)]
    assert [(o.value, o.before) for o in server.outcomes] == [(80.0, 0.0)]


def test_chat_feedback_moves_the_funnel_once_and_scores_an_accepted_chat() -> None:
    site, state = rules(), VisitorState("demo", "v1")
    [candidate] = run(site, state, *[product_view("demo", "v1", 30 + 10 * i) for i in range(4)])
    marks = {"demo:v1": VisitorMarks()}
    _, [decision] = decide(site, [candidate], marks)
    apply_feedback(site, state, orjson.loads(decision.record), NOW)
    before = state.score
    accepted = {
        "type": "invitation.accepted",
        "payload": {"invitation_id": candidate.invitation_id},
    }
    steps = apply_feedback(site, state, accepted, NOW + 5)
    assert [(o.kind, o.arm) for o in steps] == [("accepted", "invited")]
    assert apply_feedback(site, state, accepted, NOW + 6) == []  # said twice, counted once
    assert state.score > before


def test_one_order_counts_once_for_each_rule_that_invited_the_visitor() -> None:
    site = rules()
    state = VisitorState("demo", "v1")
    for rule_id, invitation_id in (("first", "i-1"), ("second", "i-2")):
        issued = {
            "type": "invitation.issued",
            "session_id": "s1",
            "payload": {"invitation_id": invitation_id, "rule_id": rule_id, "team": "sales"},
        }
        apply_feedback(site, state, issued, NOW)
    order = {"order_id": "o1", "value": 80.0, "currency": "EUR"}
    result = step(
        site, state, observe(tracking_event("demo", "v1", "order_completed", 60, payload=order))
    )
    assert sorted(o.rule_id for o in result.outcomes) == ["first", "second"]
    assert len({o.source_id for o in result.outcomes}) == 2  # each counted by the stats stage
