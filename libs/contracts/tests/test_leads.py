"""Contracts of `leads.events`: every type on the wire and back, and what is refused, where."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from beckon_contracts import schemas, topics
from beckon_contracts.ids import uuid7
from beckon_contracts.leads import (
    LEAD_EVENT_MODELS,
    LEAD_EVENT_TYPES,
    LeadWon,
    lead_event_adapter,
    lead_key,
    parse_lead_event,
)
from pydantic import ValidationError

LEAD = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000001")
OTHER_LEAD = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000002")
CONVERSATION = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000003")
SOURCE_EVENT = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000004")
TIMER = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000005")
MERGE = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000006")
ORDER_EVENT = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000007")
DUE = "2026-11-23T10:05:00Z"


def _lead(status: str, *, team: str | None = "sales", agent: str | None = "demo-anna") -> dict:
    return {
        "status": status,
        "validation": "ready_to_buy",
        "team": team,
        "agent_id": agent,
        "contact": {
            "email": "maija@example.fi",
            "phone": "+358401234567",
            "name": "Maija Meikäläinen",
            "company": "Oy Esimerkki Ab",
        },
    }


TOUCH = {
    "kind": "lead_marked",
    "source_event_id": str(SOURCE_EVENT),
    "conversation_id": str(CONVERSATION),
    "agent_id": "demo-anna",
    "validation": "ready_to_buy",
    "at": "2026-11-23T10:00:00Z",
}

# One complete payload per type, as the leads service would write it.
PAYLOADS: dict[str, dict[str, Any]] = {
    "lead.created": {
        "lead": _lead("new", team=None, agent=None),
        "touch": TOUCH,
        "attribution": {
            "rule_id": "cart-hesitation",
            "invitation_id": str(uuid7()),
            "source": "google",
            "medium": "cpc",
            "campaign": "winter-tyres",
            "score": 72.5,
            "segment": "hot",
        },
    },
    "lead.merged": {
        "lead": _lead("assigned"),
        "merge_id": str(MERGE),
        "merged_lead_ids": [str(OTHER_LEAD)],
        "touches": [TOUCH | {"kind": "email_captured", "agent_id": None}],
        "matched_on": ["email"],
    },
    "lead.unmerged": {
        "lead": _lead("assigned"),
        "merge_id": str(MERGE),
        "restored_lead_ids": [str(OTHER_LEAD)],
        "by_agent_id": "demo-admin",
    },
    "lead.routed": {
        "lead": _lead("new", agent=None),
        "team": "sales",
        "routing_rule_id": "b2b-ready",
    },
    "lead.assigned": {
        "lead": _lead("assigned"),
        "team": "sales",
        "agent_id": "demo-anna",
        "how": "auto",
        "first_contact_due_at": DUE,
    },
    "lead.contacted": {
        "lead": _lead("contacted"),
        "agent_id": "demo-anna",
        "channel": "phone",
        "first": True,
        "within_sla": True,
        "note": "Calls back after lunch",
    },
    "lead.status_changed": {
        "lead": _lead("qualified"),
        "from_status": "contacted",
        "to_status": "qualified",
        "by_agent_id": "demo-anna",
    },
    "lead.sla_warning": {
        "lead": _lead("assigned"),
        "timer_id": str(TIMER),
        "team": "sales",
        "agent_id": "demo-anna",
        "due_at": DUE,
        "elapsed": 0.8,
    },
    "lead.sla_breached": {
        "lead": _lead("assigned"),
        "timer_id": str(TIMER),
        "team": "sales",
        "agent_id": None,
        "due_at": DUE,
    },
    "lead.escalated": {
        "lead": _lead("assigned"),
        "team": "sales",
        "reason": "sla_breached",
        "escalated_to": ["demo-lead"],
        "agent_id": "demo-anna",
        "due_at": DUE,
    },
    "lead.reassigned": {
        "lead": _lead("assigned", agent="demo-ben"),
        "team": "sales",
        "from_agent_id": "demo-anna",
        "to_agent_id": "demo-ben",
        "reason": "sla_breached",
        "first_contact_due_at": "2026-11-23T10:10:00Z",
    },
    "lead.won": {
        "lead": _lead("won"),
        "how": "order",
        "order_id": "o-1001",
        "order_event_id": str(ORDER_EVENT),
        "value": "318.90",
        "currency": "eur",
    },
    "lead.lost": {
        "lead": _lead("lost"),
        "reason": "bought_elsewhere",
        "note": "Found a cheaper set",
        "by_agent_id": "demo-anna",
    },
}


def _record(kind: str, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid7()),
        "type": kind,
        "occurred_at": "2026-11-23T10:00:00+02:00",
        "site_id": "demo",
        "visitor_id": "v1",
        "lead_id": str(LEAD),
        "payload": {"seq": 2} | PAYLOADS[kind] | payload,
    }


def _refusal(raw: dict[str, Any] | bytes) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as caught:
        parse_lead_event(raw if isinstance(raw, bytes) else orjson.dumps(raw))
    assert caught.value.title == "leads.events record"
    return caught.value.errors(include_url=False)


def test_the_issues_event_types_and_an_unmerge_are_all_there():
    assert set(LEAD_EVENT_TYPES) == {
        "lead.created",
        "lead.merged",
        "lead.unmerged",
        "lead.routed",
        "lead.assigned",
        "lead.contacted",
        "lead.status_changed",
        "lead.sla_warning",
        "lead.sla_breached",
        "lead.escalated",
        "lead.reassigned",
        "lead.won",
        "lead.lost",
    }
    assert set(PAYLOADS) == set(LEAD_EVENT_TYPES)


@pytest.mark.parametrize("kind", LEAD_EVENT_TYPES)
def test_every_type_validates_and_round_trips_through_the_wire(kind):
    raw = _record(kind)
    event = parse_lead_event(orjson.dumps(raw))
    assert type(event) is LEAD_EVENT_MODELS[kind]
    assert event.type == kind
    assert event.lead_id == LEAD
    assert event.payload.seq == 2
    wire = event.model_dump_json().encode()
    assert parse_lead_event(wire) == event
    assert parse_lead_event(wire.decode()) == event
    assert lead_event_adapter.dump_json(event) == wire


def test_a_won_lead_carries_its_order_value_as_money():
    event = parse_lead_event(orjson.dumps(_record("lead.won")))
    assert isinstance(event, LeadWon)
    assert event.payload.value == Decimal("318.90")
    assert event.payload.currency == "EUR"
    wire = orjson.loads(event.model_dump_json())
    assert wire["payload"]["value"] == 318.9
    assert wire["payload"]["lead"]["contact"]["phone"] == "+358401234567"


def test_a_lead_can_exist_before_it_has_a_visitor_team_or_contact():
    raw = _record("lead.created", lead={"status": "new", "validation": "contact_only"})
    del raw["visitor_id"]
    event = parse_lead_event(orjson.dumps(raw))
    assert event.visitor_id is None
    assert event.payload.lead.team is None
    assert event.payload.lead.contact.email is None


def test_records_are_keyed_by_the_lead():
    event = parse_lead_event(orjson.dumps(_record("lead.assigned")))
    assert lead_key(event.lead_id) == str(LEAD).encode()
    assert topics.LEADS_EVENTS.key == "lead"


@pytest.mark.parametrize(
    ("kind", "change", "loc"),
    [
        ("lead.created", {"event_id": "0192f0c3-aaaa-4bbb-8ccc-000000000001"}, ("event_id",)),
        ("lead.created", {"occurred_at": "2026-11-23T10:00:00"}, ("occurred_at",)),
        ("lead.created", {"site_id": "Not A Site"}, ("site_id",)),
        ("lead.created", {"lead_id": "lead-1"}, ("lead_id",)),
        ("lead.created", {"surprise": 1}, ("surprise",)),
        ("lead.assigned", {"lead_id": None}, ("lead_id",)),
    ],
)
def test_bad_envelopes_are_refused_naming_the_field(kind, change, loc):
    errors = _refusal(_record(kind) | change)
    assert [error["loc"] for error in errors] == [(kind, *loc)]


@pytest.mark.parametrize(
    ("kind", "payload", "loc"),
    [
        ("lead.created", {"seq": 0}, ("seq",)),
        ("lead.created", {"touch": TOUCH | {"kind": "phoned"}}, ("touch", "kind")),
        ("lead.created", {"attribution": {"score": "inf"}}, ("attribution", "score")),
        ("lead.assigned", {"lead": _lead("assigned") | {"status": "open"}}, ("lead", "status")),
        ("lead.assigned", {"how": "random"}, ("how",)),
        ("lead.assigned", {"first_contact_due_at": "2026-11-23T10:05"}, ("first_contact_due_at",)),
        (
            "lead.contacted",
            {"lead": _lead("contacted") | {"validation": "very_hot"}},
            ("lead", "validation"),
        ),
        (
            "lead.contacted",
            {"lead": _lead("contacted") | {"contact": {"phone": "040 123 4567"}}},
            ("lead", "contact", "phone"),
        ),
        (
            "lead.contacted",
            {"lead": _lead("contacted") | {"contact": {"email": "not an e-mail"}}},
            ("lead", "contact", "email"),
        ),
        ("lead.sla_warning", {"elapsed": 1.0}, ("elapsed",)),
        ("lead.sla_breached", {"due_at": None}, ("due_at",)),
        ("lead.merged", {"matched_on": []}, ("matched_on",)),
        ("lead.unmerged", {"restored_lead_ids": []}, ("restored_lead_ids",)),
        ("lead.won", {"currency": "EURO"}, ("currency",)),
        ("lead.won", {"value": -1}, ("value",)),
        ("lead.lost", {"reason": "Too expensive!"}, ("reason",)),
        ("lead.routed", {"team": "two words"}, ("team",)),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(kind, payload, loc):
    errors = _refusal(_record(kind, **payload))
    assert [error["loc"] for error in errors] == [(kind, "payload", *loc)]


@pytest.mark.parametrize(
    ("kind", "payload", "words"),
    [
        ("lead.created", {"lead": _lead("assigned")}, "lead.status must be 'new'"),
        ("lead.merged", {"merged_lead_ids": [], "touches": []}, "merged_lead_ids or touches"),
        ("lead.status_changed", {"to_status": "won", "lead": _lead("won")}, "lead.won"),
        ("lead.status_changed", {"from_status": "qualified"}, "must differ from from_status"),
        ("lead.status_changed", {"lead": _lead("recycled")}, "lead.status must equal to_status"),
        ("lead.reassigned", {"to_agent_id": "demo-anna"}, "must differ from from_agent_id"),
        ("lead.won", {"currency": None}, "value and currency go together"),
        ("lead.won", {"order_event_id": None}, "order_event_id"),
        ("lead.won", {"lead": _lead("lost")}, "lead.status must be 'won'"),
        ("lead.lost", {"lead": _lead("qualified")}, "lead.status must be 'lost'"),
    ],
)
def test_inconsistent_payloads_are_refused_saying_which_fields(kind, payload, words):
    errors = _refusal(_record(kind, **payload))
    assert [error["loc"] for error in errors] == [(kind, "payload")]
    assert words in errors[0]["msg"]


def test_a_won_lead_marked_by_an_agent_needs_no_order_but_a_whole_amount():
    marked = _record("lead.won", how="agent", agent_id="demo-anna")
    for field in ("order_id", "order_event_id", "value", "currency"):
        del marked["payload"][field]
    assert parse_lead_event(orjson.dumps(marked)).payload.value is None
    marked["payload"]["value"] = 100
    assert "value and currency" in _refusal(marked)[0]["msg"]


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ({"type": "lead.deleted"}, "union_tag_invalid"),
        ({"type": None}, "union_tag_invalid"),
        ({"type": 7}, "union_tag_invalid"),
    ],
)
def test_an_unknown_type_is_refused_naming_the_type_field(raw, kind):
    errors = _refusal(_record("lead.created") | raw)
    assert [(error["loc"], error["type"]) for error in errors] == [(("type",), kind)]
    assert "lead.created" in errors[0]["msg"]  # the expected types are listed


def test_a_missing_type_is_refused_naming_the_type_field():
    raw = _record("lead.created")
    del raw["type"]
    errors = _refusal(raw)
    assert [(error["loc"], error["type"]) for error in errors] == [
        (("type",), "union_tag_not_found")
    ]


def test_undecodable_bytes_stay_a_json_error_for_the_dead_letter_reason():
    assert [error["type"] for error in _refusal(b"{not json")] == ["json_invalid"]
    assert [error["type"] for error in _refusal(b"[]")] == ["dict_type"]


def test_the_topic_and_its_dead_letter_twin():
    assert topics.get("leads.events") is topics.LEADS_EVENTS
    assert topics.LEADS_EVENTS.partitions == topics.CHAT_EVENTS.partitions == 6
    assert topics.LEADS_EVENTS.retention_ms == topics.CHAT_EVENTS.retention_ms
    assert topics.LEADS_EVENTS.cleanup_policy == "delete"
    assert topics.LEADS_EVENTS.dead_letter == topics.LEADS_EVENTS_DLQ.name == "leads.events.dlq"
    assert topics.LEADS_EVENTS_DLQ.retention_ms == topics.CHAT_EVENTS_DLQ.retention_ms
    assert topics.LEADS_EVENTS.topic_configs()["retention.ms"] == str(7 * 24 * 3600 * 1000)


def test_the_json_schema_export_has_every_lead_event():
    schema = orjson.loads(schemas.render()["leads.events.json"])
    assert schema["$id"] == "https://beckon.dev/schemas/leads.events.json"
    # every lead event, and the one record about a webhook endpoint the topic also carries
    assert set(schema["discriminator"]["mapping"]) == {*LEAD_EVENT_TYPES, "webhook.disabled"}
    won = schema["$defs"]["LeadWonPayload"]["properties"]
    assert {"value", "currency", "order_id", "lead", "seq"} <= set(won)
    assert (schemas.SCHEMA_DIR / "leads.events.json").exists()
