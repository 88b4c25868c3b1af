from datetime import UTC, datetime
from uuid import UUID

import orjson
import pytest
from beckon_contracts.chat_events import CHAT_EVENT_TYPES, parse_chat_event
from beckon_contracts.presence import AgentPresence, parse_team_presence
from beckon_contracts.topics import AGENTS_PRESENCE, CHAT_EVENTS
from chat.outbox import chat_event, team_presence
from pydantic import ValidationError

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONVERSATION = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000001")
INVITATION = UUID("0192f0c3-aaaa-7bbb-8ccc-0000000000aa")
MESSAGE = UUID("0192f0c3-aaaa-7bbb-8ccc-0000000000bb")

# One realistic payload per kind, built the way service.py builds them (UUIDs, datetimes).
PAYLOADS = {
    "invitation.shown": {"invitation_id": INVITATION, "rule_id": "cart-rescue", "team": "sales"},
    "invitation.accepted": {"invitation_id": INVITATION, "rule_id": None, "team": "sales"},
    "invitation.declined": {"invitation_id": INVITATION, "rule_id": "cart-rescue", "team": None},
    "conversation.started": {
        "conversation_id": CONVERSATION,
        "team": "sales",
        "invitation_id": INVITATION,
        "rule_id": "cart-rescue",
        "language": "fi",  # the widget's, for the e-mails to the visitor
    },
    "conversation.assigned": {
        "conversation_id": CONVERSATION,
        "team": "sales",
        "agent_id": "demo-anna",
        "agent_name": "Anna Virtanen",
        "agent_avatar_url": "https://cdn.example/anna.png",
        "how": "auto",
    },
    "message.sent": {
        "conversation_id": CONVERSATION,
        "message_id": MESSAGE,
        "seq": 1,
        "author": "agent",
        "agent_id": "demo-anna",
        "agent_name": "Anna Virtanen",
        "agent_avatar_url": None,
        "text": "Hi! How can I help?",
        "client_id": "c-1",
        "sent_at": NOW,
    },
    "conversation.transferred": {
        "conversation_id": CONVERSATION,
        "from_agent_id": "demo-anna",
        "to_agent_id": None,
        "to_team": "support",
        "note": None,  # a transfer note is a private note now, never published
    },
    "conversation.tagged": {"conversation_id": CONVERSATION, "tags": ["price", "returns"]},
    "conversation.email_captured": {"conversation_id": CONVERSATION, "email": "v@example.com"},
    "conversation.closed": {
        "conversation_id": CONVERSATION,
        "closed_by": "agent",
        "agent_id": "demo-anna",
        "team": "sales",
        "messages": 4,
        "email": None,
    },
    "offline.message_left": {
        "conversation_id": CONVERSATION,
        "team": "support",
        "email": "v@example.com",
        "name": "Vera",
        "text": "Please call me back",
        "language": "en",
    },
    "conversation.seen": {"conversation_id": CONVERSATION, "up_to_seq": 3, "seen_at": NOW},
    "conversation.lead_marked": {
        "mark_id": UUID("0192f0c3-aaaa-7bbb-8ccc-0000000000cc"),
        "conversation_id": CONVERSATION,
        "agent_id": "demo-anna",
        "validation": "qualified",
        "note": "Wants 12 pairs for the club",
        "email": "v@example.com",
        "team": "sales",
    },
}


def test_every_contract_kind_has_a_sample_here():
    assert set(PAYLOADS) == set(CHAT_EVENT_TYPES)


@pytest.mark.parametrize("kind", CHAT_EVENT_TYPES)
def test_every_chat_event_kind_validates_against_the_contract(kind):
    record = chat_event(
        kind,
        site_id="demo",
        visitor_id="v_1",
        payload=PAYLOADS[kind],
        key=str(CONVERSATION),
        now=NOW,
    )
    assert record.topic == CHAT_EVENTS.name == "chat.events"
    assert record.key == str(CONVERSATION).encode()
    event = parse_chat_event(record.value)
    assert event.type == kind
    assert event.site_id == "demo"
    assert event.visitor_id == "v_1"
    assert event.occurred_at == NOW
    assert event.event_id.version == 7
    dumped = event.payload.model_dump()
    for field, value in PAYLOADS[kind].items():
        assert dumped[field] == value, field


def test_each_record_gets_its_own_event_id():
    first, second = (
        chat_event(
            "conversation.tagged",
            site_id="demo",
            visitor_id="v_1",
            payload=PAYLOADS["conversation.tagged"],
            key="k",
        )
        for _ in range(2)
    )
    assert parse_chat_event(first.value).event_id != parse_chat_event(second.value).event_id


def test_occurred_at_defaults_to_now_in_utc():
    before = datetime.now(UTC)
    record = chat_event(
        "conversation.tagged",
        site_id="demo",
        visitor_id="v_1",
        payload=PAYLOADS["conversation.tagged"],
        key="k",
    )
    occurred = parse_chat_event(record.value).occurred_at
    assert occurred.tzinfo is not None
    assert before <= occurred <= datetime.now(UTC)


def test_email_captured_before_any_conversation_is_keyed_by_the_visitor():
    record = chat_event(
        "conversation.email_captured",
        site_id="demo",
        visitor_id="v_1",
        payload={"conversation_id": None, "email": "v@example.com"},
        key="demo:v_1",
        now=NOW,
    )
    assert record.key == b"demo:v_1"
    assert parse_chat_event(record.value).payload.conversation_id is None


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("message.sent", {"seq": 0}),
        ("message.sent", {"text": ""}),
        ("message.sent", {"author": "bot"}),
        ("conversation.tagged", {"tags": ["Not A Tag"]}),
        ("conversation.assigned", {"how": "magic"}),
        ("conversation.closed", {"unknown_field": 1}),
    ],
)
def test_a_wrong_payload_fails_when_built_not_in_a_consumer(kind, change):
    with pytest.raises(ValidationError):
        chat_event(
            kind,
            site_id="demo",
            visitor_id="v_1",
            payload=PAYLOADS[kind] | change,
            key="k",
            now=NOW,
        )


def test_a_bad_site_or_visitor_fails_when_built():
    with pytest.raises(ValidationError):
        chat_event(
            "conversation.tagged",
            site_id="Not A Site",
            visitor_id="v_1",
            payload=PAYLOADS["conversation.tagged"],
            key="k",
        )
    with pytest.raises(ValidationError):
        chat_event(
            "conversation.tagged",
            site_id="demo",
            visitor_id="has space",
            payload=PAYLOADS["conversation.tagged"],
            key="k",
        )


def test_an_unknown_kind_is_refused():
    with pytest.raises(KeyError):
        chat_event("typing", site_id="demo", visitor_id="v_1", payload={}, key="k")


def _presence(agent_id, status="online", open_chats=0):
    return AgentPresence(
        agent_id=agent_id,
        name=agent_id.title(),
        avatar_url=None,
        status=status,
        open_chats=open_chats,
        max_chats=5,
    )


def test_team_presence_validates_and_is_keyed_by_site_and_team():
    agents = [_presence("anna", open_chats=2), _presence("ben", status="away")]
    record = team_presence(site_id="demo", team="sales", agents=agents, now=NOW)
    assert record.topic == AGENTS_PRESENCE.name == "agents.presence"
    assert record.key == b"demo:sales"
    presence = parse_team_presence(record.value)
    assert presence.type == "agents.presence"
    assert (presence.site_id, presence.team, presence.occurred_at) == ("demo", "sales", NOW)
    assert presence.agents == agents
    assert presence.event_id.version == 7


def test_team_presence_of_an_empty_team_is_published_too():
    record = team_presence(site_id="demo", team="support", agents=iter(()), now=NOW)
    assert parse_team_presence(record.value).agents == []
    assert orjson.loads(record.value)["team"] == "support"


def test_team_presence_refuses_an_agent_twice():
    with pytest.raises(ValidationError):
        team_presence(site_id="demo", team="sales", agents=[_presence("anna")] * 2, now=NOW)
