"""The JSON shapes of docs/chat.md, from rows as the store returns them."""

from datetime import UTC, datetime
from uuid import UUID

import orjson
import pytest
from chat import views
from chat.conversations import views as conversation_views
from chat.hub import message_frame
from chat.visitors import pseudonym

NOW = datetime(2026, 11, 23, 12, 0, 5, 123456, tzinfo=UTC)
CONVERSATION = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000001")
MESSAGE = UUID("0192f0c3-aaaa-7bbb-8ccc-0000000000bb")
INVITATION = UUID("0192f0c3-aaaa-7bbb-8ccc-0000000000aa")

# docs/chat.md, word for word
CONVERSATION_KEYS = {"id", "status", "team", "agent", "queue_position", "last_seq"}
MESSAGE_KEYS = {
    "id",
    "conversation_id",
    "seq",
    "author",
    "agent",
    "text",
    "client_id",
    "created_at",
    "channel",
    "attachments",
}
AGENT_CONVERSATION_KEYS = CONVERSATION_KEYS | {
    "site_id",
    "visitor_id",
    "visitor_label",
    "agent_id",
    "email",
    "tags",
    "created_at",
    "last_message",
}
AGENT_KEYS = {
    "id",
    "locale",
    "settings",
    "site_id",
    "email",
    "name",
    "avatar_url",
    "role",
    "status",
    "max_chats",
    "open_chats",
    "teams",
}
INVITATION_KEYS = {"id", "message", "agent", "team", "expires_at", "rule_id"}
WIDGET_SITE_KEYS = {"site_id", "greeting", "color", "language", "typing_preview", "offline"}


def _conversation_row(**overrides):
    return {
        "conversation_id": CONVERSATION,
        "site_id": "demo",
        "visitor_id": "v_1",
        "team": "sales",
        "agent_id": "demo-anna",
        "status": "open",
        "invitation_id": None,
        "rule_id": None,
        "email": "v@example.com",
        "tags": ["price", "returns"],
        "last_seq": 4,
        "created_at": NOW,
        "assigned_at": NOW,
        "closed_at": None,
        "agent_name": "Anna Virtanen",
        "agent_avatar_url": "https://cdn.example/anna.png",
        "queue_position": None,
    } | overrides


def _message_row(**overrides):
    return {
        "message_id": MESSAGE,
        "conversation_id": CONVERSATION,
        "seq": 4,
        "author": "agent",
        "agent_id": "demo-anna",
        "text": "Sure, size 42 is in stock.",
        "client_id": "c-4",
        "created_at": NOW,
        "agent_name": "Anna Virtanen",
        "agent_avatar_url": None,
    } | overrides


def _json_round_trip(value):
    return orjson.loads(orjson.dumps(value))


def test_conversation_has_the_documented_shape():
    shown = conversation_views.conversation(_conversation_row())
    assert set(shown) == CONVERSATION_KEYS
    assert shown == {
        "id": str(CONVERSATION),
        "status": "open",
        "team": "sales",
        "agent": {"name": "Anna Virtanen", "avatar_url": "https://cdn.example/anna.png"},
        "queue_position": None,
        "last_seq": 4,
    }
    assert _json_round_trip(shown) == shown


def test_a_queued_conversation_has_no_agent_and_a_position():
    shown = conversation_views.conversation(
        _conversation_row(status="queued", agent_id=None, agent_name=None, queue_position=3)
    )
    assert shown["agent"] is None
    assert shown["queue_position"] == 3


def test_the_visitor_never_sees_the_agents_id_email_or_tags():
    shown = conversation_views.conversation(_conversation_row())
    assert "demo-anna" not in orjson.dumps(shown).decode()
    assert "v@example.com" not in orjson.dumps(shown).decode()
    assert "price" not in orjson.dumps(shown).decode()


def test_message_has_the_documented_shape():
    shown = conversation_views.message(_message_row())
    assert set(shown) == MESSAGE_KEYS
    assert shown == {
        "id": str(MESSAGE),
        "conversation_id": str(CONVERSATION),
        "seq": 4,
        "author": "agent",
        "agent": {"name": "Anna Virtanen", "avatar_url": None},
        "text": "Sure, size 42 is in stock.",
        "client_id": "c-4",
        "created_at": NOW.isoformat(),
        "channel": "chat",
        "attachments": [],
    }
    assert datetime.fromisoformat(shown["created_at"]) == NOW
    assert _json_round_trip(shown) == shown


def test_an_emailed_reply_is_the_visitors_with_its_channel_and_attachment_notes():
    notes = [
        {"filename": "photo.jpg", "content_type": "image/jpeg", "size": 120_000},
        {"filename": None, "content_type": "text/calendar", "size": 0},
    ]
    row = _message_row(
        author="visitor",
        agent_id=None,
        agent_name=None,
        client_id=None,
        channel="email",
        attachments=orjson.dumps(notes).decode(),  # asyncpg hands jsonb over as text
    )
    shown = conversation_views.message(row)
    assert (shown["author"], shown["agent"], shown["channel"]) == ("visitor", None, "email")
    assert shown["attachments"] == notes
    assert _json_round_trip(shown) == shown


@pytest.mark.parametrize("author", ["visitor", "system"])
def test_only_agent_messages_name_an_agent(author):
    shown = conversation_views.message(_message_row(author=author, client_id=None))
    assert shown["agent"] is None
    assert shown["client_id"] is None


def test_agent_conversation_is_the_conversation_plus_who_where_and_what():
    row = _conversation_row()
    shown = conversation_views.agent_conversation(row, _message_row())
    assert set(shown) == AGENT_CONVERSATION_KEYS
    assert {key: shown[key] for key in CONVERSATION_KEYS} == conversation_views.conversation(row)
    assert shown["site_id"] == "demo"
    assert shown["visitor_id"] == "v_1"
    assert shown["agent_id"] == "demo-anna"
    assert shown["email"] == "v@example.com"
    assert shown["visitor_label"] == {"en": "v@example.com", "fi": "v@example.com"}
    assert shown["tags"] == ["price", "returns"]
    assert shown["created_at"] == NOW.isoformat()
    assert shown["last_message"] == conversation_views.message(_message_row())
    assert _json_round_trip(shown) == shown


def test_agent_conversation_without_messages():
    shown = conversation_views.agent_conversation(_conversation_row(tags=(), email=None))
    assert shown["visitor_label"] == pseudonym("v_1")  # no e-mail given: a sayable name
    assert shown["last_message"] is None
    assert shown["tags"] == []


def test_agent_has_the_documented_shape():
    row = {
        "agent_id": "demo-anna",
        "site_id": "demo",
        "email": "anna@demo.beckon.dev",
        "password_hash": "$argon2id$secret",
        "name": "Anna Virtanen",
        "avatar_url": None,
        "role": "admin",
        "max_chats": 5,
        "status": "online",
        "last_seen_at": NOW,
        "last_assigned_at": None,
        "open_chats": 2,
        "teams": ["sales", "support"],
        "locale": "fi",
        "settings": '{"sound": false}',  # jsonb as text
    }
    shown = views.agent(row)
    assert (shown["locale"], shown["settings"]) == ("fi", {"sound": False})
    assert set(shown) == AGENT_KEYS
    assert shown["id"] == "demo-anna"
    assert shown["teams"] == ["sales", "support"]
    assert (shown["open_chats"], shown["max_chats"], shown["status"]) == (2, 5, "online")
    assert "argon2" not in orjson.dumps(shown).decode()  # never the password hash


@pytest.mark.parametrize(
    "agent_column",
    [
        '{"name": "Anna", "avatar_url": "https://cdn.example/anna.png"}',  # jsonb as text
        {"name": "Anna", "avatar_url": "https://cdn.example/anna.png"},
    ],
)
def test_a_personal_invitation_names_its_agent(agent_column):
    row = {
        "invitation_id": INVITATION,
        "message": "Anna here — need a hand with sizes?",
        "agent": agent_column,
        "team": "sales",
        "expires_at": NOW,
        "rule_id": "size-help",
        "site_id": "demo",
        "visitor_id": "v_1",
    }
    shown = conversation_views.invitation(row)
    assert set(shown) == INVITATION_KEYS
    assert shown == {
        "id": str(INVITATION),
        "message": "Anna here — need a hand with sizes?",
        "agent": {"name": "Anna", "avatar_url": "https://cdn.example/anna.png"},
        "team": "sales",
        "expires_at": NOW.isoformat(),
        "rule_id": "size-help",
    }


@pytest.mark.parametrize("agent_column", [None, "null", {}])
def test_a_team_invitation_has_no_agent(agent_column):
    row = {
        "invitation_id": INVITATION,
        "message": "Need a hand?",
        "agent": agent_column,
        "team": "sales",
        "expires_at": NOW,
        "rule_id": None,
    }
    assert conversation_views.invitation(row)["agent"] is None


def test_site_carries_what_the_widget_session_documents():
    row = {
        "site_id": "demo",
        "name": "Ridgeline Outfitters",
        "settings": {
            "greeting": "Hi!",
            "color": "#ff0000",
            "language": "fi",
            "typing_preview": False,
            "offline_message": "Leave us a note",
            "default_team": "support",
        },
    }
    shown = views.site(row)
    assert {key: shown[key] for key in WIDGET_SITE_KEYS} == {
        "site_id": "demo",
        "greeting": "Hi!",
        "color": "#ff0000",
        "language": "fi",
        "typing_preview": False,
        "offline": "Leave us a note",
    }
    # Beyond the documented six: the site's name, the team a chat goes to by default, and
    # whether transcripts go out by e-mail (what the widget may promise).
    assert set(shown) - WIDGET_SITE_KEYS == {"name", "default_team", "email_transcripts"}
    assert shown["default_team"] == "support"
    assert shown["email_transcripts"] is False  # no site sends e-mail until it is set
    sending = views.site({**row, "settings": {**row["settings"], "email_transcripts": True}})
    assert sending["email_transcripts"] is True


@pytest.mark.parametrize("settings", [None, "{}", {}])
def test_site_defaults_when_nothing_is_set(settings):
    shown = views.site({"site_id": "demo", "name": "", "settings": settings})
    assert shown["greeting"] == ""
    assert shown["color"] == "#1f6feb"
    assert shown["language"] == "auto"
    assert shown["typing_preview"] is True
    assert shown["offline"] == ""
    assert shown["default_team"] == "sales"


def test_site_settings_stored_as_json_text_are_read():
    shown = views.site({"site_id": "demo", "name": "", "settings": '{"greeting": "Moi!"}'})
    assert shown["greeting"] == "Moi!"


def test_agent_card_is_none_without_a_name():
    assert views.agent_card(None, "https://cdn.example/x.png") is None
    assert views.agent_card("", None) is None
    assert views.agent_card("Ben", None) == {"name": "Ben", "avatar_url": None}


def test_a_message_over_the_socket_has_the_same_shape_as_over_http():
    payload = {
        "conversation_id": str(CONVERSATION),
        "message_id": str(MESSAGE),
        "seq": 4,
        "author": "agent",
        "agent_id": "demo-anna",
        "agent_name": "Anna Virtanen",
        "agent_avatar_url": None,
        "text": "Sure, size 42 is in stock.",
        "client_id": "c-4",
        "sent_at": "2026-11-23T12:00:05.123456Z",
    }
    over_socket = message_frame(payload)
    over_http = conversation_views.message(_message_row())
    assert set(over_socket) == MESSAGE_KEYS
    assert {k: v for k, v in over_socket.items() if k != "created_at"} == {
        k: v for k, v in over_http.items() if k != "created_at"
    }
    assert datetime.fromisoformat(over_socket["created_at"]) == datetime.fromisoformat(
        over_http["created_at"]
    )


def test_a_lead_mark_is_shown_from_its_own_row_which_has_no_email():
    """chat.lead_marks has no e-mail column: the mark names its visitor by the pseudonym."""
    now = NOW
    row = {
        "mark_id": UUID(int=1),
        "conversation_id": UUID(int=2),
        "visitor_id": "v_9",
        "agent_id": "demo-anna",
        "validation": "qualified",
        "note": None,
        "created_at": now,
        "updated_at": now,
    }
    mark = views.lead_mark(row)
    assert mark["visitor_label"] == pseudonym("v_9")
    assert mark["validation"] == "qualified"
