"""Contracts of the topics only one service reads: `chat.signals` and `triggers.candidates`."""

from datetime import UTC, datetime
from uuid import UUID

import orjson
import pytest
from beckon_contracts import schemas
from beckon_contracts.candidates import (
    CandidateSelected,
    InvitationResolved,
    parse_candidate_record,
)
from beckon_contracts.chat_signals import (
    AgentCard,
    AgentsChangedSignal,
    AgentsPushSignal,
    InvitationSignal,
    ShownInvitation,
    TypingSignal,
    chat_signal_key,
    parse_chat_signal,
)
from pydantic import ValidationError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
ID = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000009")

SIGNALS = [
    TypingSignal(
        who="visitor", site_id="demo", visitor_id="v1", conversation_id=ID, on=True, preview="Hi"
    ),
    TypingSignal(who="agent", site_id="demo", visitor_id="v1", conversation_id=ID, on=False),
    InvitationSignal(
        site_id="demo",
        visitor_id="v1",
        invitation=ShownInvitation(
            id=ID,
            message="Need a hand?",
            agent=AgentCard(name="Anna"),
            team="sales",
            expires_at=NOW,
            rule_id="size-help",
        ),
    ),
    AgentsPushSignal(site_id="demo", frame={"t": "note", "note": {"text": "VIP", "at": None}}),
    AgentsPushSignal(site_id="demo", agent_ids=["demo-anna"], frame={"t": "transfer"}),
    AgentsChangedSignal(site_id="demo", agent_ids=["demo-anna", "demo-ben"]),
]


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.kind)
def test_every_signal_kind_round_trips_through_the_wire(signal):
    assert parse_chat_signal(signal.model_dump_json()) == signal


def test_signal_keys_keep_a_visitors_signals_on_one_partition():
    assert [chat_signal_key(signal) for signal in SIGNALS] == [
        b"demo:v1",
        b"demo:v1",
        b"demo:v1",
        b"demo",
        b"demo",
        b"demo",
    ]


def test_the_wire_keeps_the_shape_the_hub_and_the_live_list_have_always_read():
    wire = SIGNALS[2].model_dump_json().encode()
    assert b'"kind":"invitation"' in wire  # the live list prefilters on these bytes
    assert orjson.loads(SIGNALS[0].model_dump_json()) == {
        "kind": "typing",
        "who": "visitor",
        "site_id": "demo",
        "visitor_id": "v1",
        "conversation_id": str(ID),
        "on": True,
        "preview": "Hi",
    }


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "typing", "site_id": "demo", "visitor_id": "v1", "on": True},  # no who
        {"kind": "push", "site_id": "demo", "frame": []},
        {"kind": "agents", "site_id": "Not A Site", "agent_ids": []},
        {"kind": "waving", "site_id": "demo"},
        {"kind": "agents", "site_id": "demo", "agent_ids": [], "extra": 1},
    ],
)
def test_invalid_signals_are_refused(raw):
    with pytest.raises(ValidationError):
        parse_chat_signal(orjson.dumps(raw))


def test_candidates_and_resolves_round_trip_and_are_told_apart_by_kind():
    candidate = CandidateSelected(
        invitation_id=ID,
        site_id="demo",
        visitor_id="v1",
        session_id=None,
        rule_id="fourth-view",
        team="sales",
        priority=10,
        is_default=False,
        score=42.5,
        segment="warm",
        at=1_700_000_000.25,
        trigger_event_id="0192f0c3-aaaa-7bbb-8ccc-000000000001",
        variables={"product_name": "Trail Shoe"},
    )
    resolved = InvitationResolved(site_id="demo", invitation_id=ID)
    assert parse_candidate_record(candidate.model_dump_json()) == candidate
    assert parse_candidate_record(resolved.model_dump_json()) == resolved
    with pytest.raises(ValidationError):
        parse_candidate_record(b'{"kind": "resolve", "site_id": "demo"}')


def test_the_internal_topics_have_exported_schemas():
    rendered = schemas.render()
    for name, kinds in {
        "chat.signals.json": {"typing", "invitation", "push", "agents"},
        "triggers.candidates.json": {"candidate", "resolve", "forget"},
    }.items():
        schema = orjson.loads(rendered[name])
        assert set(schema["discriminator"]["mapping"]) == kinds
