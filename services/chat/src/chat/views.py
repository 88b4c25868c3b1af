"""Rows as the JSON shapes of docs/chat.md that several packages share (Agent, Site, an
agent's card, a note, a lead mark); a conversation's own shapes are `chat.conversations.views`."""

from __future__ import annotations

from typing import Any

import orjson

from chat.adapters.store import Row
from chat.visitors import visitor_label


def iso(value: Any) -> str | None:
    """A timestamp in ISO 8601 (None stays None)."""
    return value.isoformat() if value is not None else None


def jsonb(value: Any) -> Any:
    """A jsonb column as Python (asyncpg hands jsonb over as text unless a codec is set)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else (value or {})


def agent_card(name: str | None, avatar_url: str | None) -> dict[str, Any] | None:
    return {"name": name, "avatar_url": avatar_url} if name else None


def note(row: Row) -> dict[str, Any]:
    """A private note, for agents only (never the visitor's)."""
    return {
        "id": str(row["note_id"]),
        "conversation_id": str(row["conversation_id"]),
        "agent_id": row["agent_id"],
        "agent": agent_card(row["agent_name"], row["agent_avatar_url"]),
        "text": row["text"],
        "created_at": iso(row["created_at"]),
    }


def lead_mark(row: Row) -> dict[str, Any]:
    return {
        "id": str(row["mark_id"]),
        "conversation_id": str(row["conversation_id"]),
        "visitor_id": row["visitor_id"],
        # a mark's row has no e-mail of its own (chat.lead_marks): the label is the pseudonym
        "visitor_label": visitor_label(row["visitor_id"], email=row.get("email")),
        "agent_id": row["agent_id"],
        "validation": row["validation"],
        "note": row["note"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
    }


def agent(row: Row) -> dict[str, Any]:
    return {
        "id": row["agent_id"],
        "site_id": row["site_id"],
        "email": row["email"],
        "name": row["name"],
        "avatar_url": row["avatar_url"],
        "role": row["role"],
        "status": row["status"],
        "max_chats": row["max_chats"],
        "open_chats": row["open_chats"],
        "teams": list(row["teams"]),
        "locale": row["locale"],
        "settings": jsonb(row["settings"]),
    }


def site(row: Row) -> dict[str, Any]:
    settings = row["settings"]
    settings = orjson.loads(settings) if isinstance(settings, str) else (settings or {})
    return {
        "site_id": row["site_id"],
        "name": row["name"],
        "greeting": settings.get("greeting", ""),
        "color": settings.get("color", "#1f6feb"),
        "language": settings.get("language", "auto"),
        "typing_preview": bool(settings.get("typing_preview", True)),
        "offline": settings.get("offline_message", ""),
        "default_team": settings.get("default_team", "sales"),
        # the widget offers a transcript by e-mail only where one is sent (the notifier's
        # setting); elsewhere it asks for an e-mail to get back to the visitor
        "email_transcripts": settings.get("email_transcripts") is True,
    }
