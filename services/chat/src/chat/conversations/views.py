"""A conversation's rows as the JSON shapes of docs/chat.md (Conversation, Message,
Invitation, Transfer, Opening): what the visitor sees, and the agents' fuller view."""

from __future__ import annotations

from typing import Any

import orjson

from chat.adapters.store import Row
from chat.views import agent_card, iso, jsonb
from chat.visitors import visitor_label


def message(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["message_id"]),
        "conversation_id": str(row["conversation_id"]),
        "seq": row["seq"],
        "author": row["author"],
        "agent": agent_card(row["agent_name"], row["agent_avatar_url"])
        if row["author"] == "agent"
        else None,
        "text": row["text"],
        "client_id": row["client_id"],
        "created_at": iso(row["created_at"]),
        "channel": row.get("channel") or "chat",
        "attachments": attachments(row.get("attachments")),
    }


def attachments(value: Any) -> list[dict[str, Any]]:
    """An e-mailed reply's attachment notes (file name, type, size: listed, never stored)."""
    notes = jsonb(value) if value is not None else []
    return [
        {
            "filename": note.get("filename"),
            "content_type": note.get("content_type"),
            "size": note.get("size"),
        }
        for note in notes
        if isinstance(note, dict)
    ]


def conversation(row: Row) -> dict[str, Any]:
    """What the visitor may see of their conversation."""
    return {
        "id": str(row["conversation_id"]),
        "status": row["status"],
        "team": row["team"],
        "agent": agent_card(row["agent_name"], row["agent_avatar_url"]),
        "queue_position": row["queue_position"],
        "last_seq": row["last_seq"],
    }


def agent_conversation(row: Row, last_message: Row | None = None) -> dict[str, Any]:
    """The agent's view: the visitor's plus who, where and what."""
    return {
        **conversation(row),
        "site_id": row["site_id"],
        "visitor_id": row["visitor_id"],
        "visitor_label": visitor_label(row["visitor_id"], email=row["email"]),
        "agent_id": row["agent_id"],
        "email": row["email"],
        "tags": list(row["tags"]),
        "created_at": iso(row["created_at"]),
        "last_message": message(last_message) if last_message is not None else None,
    }


def transfer(row: Row) -> dict[str, Any]:
    """A transfer in the agents' timeline ("Anna → Ben"), with its note: agents only."""
    return {
        "id": str(row["transfer_id"]),
        "conversation_id": str(row["conversation_id"]),
        "by_agent_id": row["by_agent_id"],
        "by": agent_card(row["by_name"], row["by_avatar_url"]),
        "from_agent_id": row["from_agent_id"],
        "from": agent_card(row["from_name"], row["from_avatar_url"]),
        "target": row["target"],
        "to_agent_id": row["to_agent_id"],
        "to": agent_card(row["to_name"], row["to_avatar_url"]),
        "to_team": row["to_team"],
        "to_team_name": row["to_team_name"] or row["to_team"],
        "note": row["note"],
        "created_at": iso(row["created_at"]),
    }


def opening(row: Row | None, *, for_agent: bool) -> dict[str, Any] | None:
    """The invitation that opened a conversation: the visitor saw its text as the agent's
    first words. Agents also see which rule (or which colleague, for a personal one) sent it;
    the visitor only the words and the name they were shown."""
    if row is None:
        return None
    card = jsonb(row["agent"]) if row["agent"] is not None else {}
    shown = {
        "text": row["message"],
        "agent": agent_card(card.get("name"), card.get("avatar_url")) if card else None,
    }
    if not for_agent:
        return shown
    return {
        **shown,
        "invitation_id": str(row["invitation_id"]),
        "rule_id": row["rule_id"],
        "rule_name": row["rule_name"] or None,
        "personal": row["personal"],
        "created_at": iso(row["created_at"]),
    }


def invitation(row: Row) -> dict[str, Any]:
    agent_json = row["agent"]
    card = orjson.loads(agent_json) if isinstance(agent_json, str) else agent_json
    return {
        "id": str(row["invitation_id"]),
        "message": row["message"],
        "agent": agent_card(card.get("name"), card.get("avatar_url")) if card else None,
        "team": row["team"],
        "expires_at": iso(row["expires_at"]),
        "rule_id": row["rule_id"],
    }


def invitation_agent_id(row: Row) -> str | None:
    """The inviting agent's id, which a personal invitation keeps in its `agent` column."""
    card = jsonb(row["agent"]) if row["agent"] is not None else {}
    agent_id = card.get("agent_id") if isinstance(card, dict) else None
    return agent_id if isinstance(agent_id, str) else None
