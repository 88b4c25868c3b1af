"""Every record the worker produces is built from its contract, and the JSON on the wire for
`chat.invitations` and `rules.stats` is what chat has always read."""

from __future__ import annotations

from dataclasses import dataclass, replace

import orjson
from beckon_contracts.candidates import (
    CandidateSelected,
    InvitationResolved,
    parse_candidate_record,
)
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.invitations import (
    InvitationHeldOut,
    InvitationIssued,
    parse_invitation_record,
)
from beckon_contracts.outcomes import parse_funnel_step
from beckon_contracts.presence import AgentPresence, TeamPresence
from beckon_contracts.rule_stats import parse_rule_stats
from beckon_contracts.rules import SiteRules
from triggers.domain.decide import Decision, SiteDecider, VisitorMarks
from triggers.domain.engine import Candidate, Outcome, Site, step
from triggers.domain.observation import BadRecord, iso, observe
from triggers.domain.state import VisitorState
from triggers.domain.stats import RuleFunnel
from triggers.stages import _dead_letter, stats_record
from triggers_testing import T0, product_view

NOW = T0.timestamp()


def _candidate(holdout: int = 0) -> tuple[Site, Candidate]:
    rule = {
        "id": "fourth-view",
        "name": "4th view",
        "when": {"product_views": {"gte": 4}},
        "message": "{agent_name} here: questions about the {product_name}?",
        "holdout_percent": holdout,
    }
    site = Site.of(SiteRules.model_validate({"site_id": "demo", "rules": [rule]}))
    state = VisitorState("demo", "v1")
    found = [
        step(site, state, observe(product_view("demo", "v1", 30 + 10 * i))).candidate
        for i in range(4)
    ]
    assert found[-1] is not None
    return site, found[-1]


def decide(
    site: Site, candidates: list[Candidate], marks: dict[str, VisitorMarks]
) -> tuple[SiteDecider, list[Decision]]:
    presence = TeamPresence(
        event_id="019a0000-0000-7000-8000-000000000001",  # type: ignore[arg-type]
        occurred_at=T0,
        site_id="demo",
        team="sales",
        agents=[
            AgentPresence(agent_id="a1", name="Aino", status="online", open_chats=0, max_chats=5)
        ],
    )
    decider = SiteDecider.load(site, None, {"sales": presence})
    return decider, decider.decide(candidates, marks, NOW)


def test_an_issued_invitation_is_the_contract_and_the_json_chat_has_always_read() -> None:
    site, candidate = _candidate()
    _, [decision] = decide(site, [candidate], {"demo:v1": VisitorMarks()})
    assert isinstance(parse_invitation_record(decision.record), InvitationIssued)
    wire = orjson.loads(decision.record)
    expires_at = wire["payload"]["expires_at"]
    # what decide.py wrote as a hand-built dict before it used the contract
    assert wire == {
        "event_id": candidate.invitation_id,
        "type": "invitation.issued",
        "schema_version": 1,
        "occurred_at": iso(NOW),
        "site_id": "demo",
        "visitor_id": "v1",
        "session_id": candidate.session_id,
        "payload": {
            "invitation_id": candidate.invitation_id,
            "rule_id": "fourth-view",
            "rule_name": "4th view",
            "team": "sales",
            "message": "Aino here: questions about the Trail Shoe P1?",
            "agent": {"agent_id": "a1", "name": "Aino", "avatar_url": None},
            "expires_at": expires_at,
            "score": candidate.score,
            "segment": candidate.segment,
            "trigger_event_id": candidate.trigger_event_id,
        },
    }
    assert expires_at.endswith("Z")


def test_a_held_out_record_is_the_contract_and_the_json_it_always_was() -> None:
    site, candidate = _candidate(holdout=100)
    _, [decision] = decide(site, [candidate], {"demo:v1": VisitorMarks()})
    assert isinstance(parse_invitation_record(decision.record), InvitationHeldOut)
    assert orjson.loads(decision.record) == {
        "event_id": candidate.invitation_id,
        "type": "invitation.held_out",
        "schema_version": 1,
        "occurred_at": iso(NOW),
        "site_id": "demo",
        "visitor_id": "v1",
        "session_id": candidate.session_id,
        "payload": {
            "invitation_id": candidate.invitation_id,
            "rule_id": "fourth-view",
            "team": "sales",
            "score": candidate.score,
            "trigger_event_id": candidate.trigger_event_id,
        },
    }


def test_an_invitation_the_contract_refuses_is_not_sent_and_takes_no_slot() -> None:
    site, candidate = _candidate()
    # a store's product name long enough to push the message past the contract's 1000 chars
    long_name = replace(candidate, variables={**candidate.variables, "product_name": "x" * 1200})
    marks = {"demo:v1": VisitorMarks()}
    decider, [decision] = decide(site, [long_name], marks)
    assert (decision.kind, decision.reason, decision.record) == ("refused", "invalid_record", None)
    assert "message" in (decision.detail or "")
    assert decider.admission.outstanding("sales", NOW) == 0
    assert marks["demo:v1"].marks == []


def test_a_candidate_round_trips_through_its_contract_with_the_same_wire_keys() -> None:
    _, candidate = _candidate()
    wire = candidate.to_record().model_dump_json().encode()
    parsed = parse_candidate_record(wire)
    assert isinstance(parsed, CandidateSelected)
    assert Candidate.from_record(parsed) == candidate
    # the keys the dict had: kind first, then every field of the candidate
    assert list(orjson.loads(wire)) == ["kind", *Candidate.__slots__]


def test_a_resolve_record_is_told_from_a_candidate_by_its_kind() -> None:
    _, candidate = _candidate()
    resolved = InvitationResolved(site_id="demo", invitation_id=candidate.invitation_id)  # type: ignore[arg-type]
    wire = resolved.model_dump_json()
    assert orjson.loads(wire) == {
        "kind": "resolve",
        "site_id": "demo",
        "invitation_id": candidate.invitation_id,
    }
    assert parse_candidate_record(wire) == resolved


def test_rule_stats_are_the_contract_and_the_json_chat_has_always_read() -> None:
    funnel = RuleFunnel()
    funnel.record("invited", at=NOW)
    funnel.record_order("invited", 50.0, first_for_visitor=True, revenue_before=0.0)
    raw = stats_record("demo", "fourth-view", funnel)
    stats = parse_rule_stats(raw)
    wire = orjson.loads(raw)
    assert wire == {
        "event_id": str(stats.event_id),
        "type": "rule.stats",
        "schema_version": 1,
        "occurred_at": wire["occurred_at"],
        "site_id": "demo",
        "payload": funnel.to_payload("fourth-view").model_dump(mode="json"),
    }
    assert wire["occurred_at"].endswith("Z")


@dataclass
class _Message:
    topic: str = "tracking.events"
    partition: int = 2
    offset: int = 17


def test_a_dead_letter_names_where_the_record_was_read_and_the_field() -> None:
    raw = orjson.dumps({"site_id": "demo", "visitor_id": "v1", "type": "product_viewed"})
    letter = DeadLettered.model_validate_json(
        _dead_letter(_Message(), raw, BadRecord("payload.currency", "is required"))
    )
    assert letter.site_id == "demo"
    payload = letter.payload
    assert (payload.source, payload.reason) == ("triggers:tracking.events", "schema_invalid")
    assert (payload.topic, payload.partition, payload.offset) == ("tracking.events", 2, 17)
    assert payload.errors[0].loc == "payload.currency"
    assert payload.raw.encode() == raw
    broken = DeadLettered.model_validate_json(_dead_letter(_Message(), b"{oops", ValueError("x")))
    assert (broken.site_id, broken.payload.reason) == ("unknown", "processing_failed")


def test_funnel_steps_round_trip_through_their_contract_with_the_same_wire_keys() -> None:
    site, candidate = _candidate()
    _, [decision] = decide(site, [candidate], {"demo:v1": VisitorMarks()})
    for outcome in decision.outcomes:
        wire = outcome.to_record().model_dump_json()
        assert Outcome.from_record(parse_funnel_step(wire)) == outcome
        assert orjson.loads(wire) == {name: getattr(outcome, name) for name in Outcome.__slots__}
