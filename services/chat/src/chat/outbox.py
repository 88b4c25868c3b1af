"""The records chat writes to its outbox: `chat.events` facts and `agents.presence` teams.

Pure builders: they take plain values and return (topic, key, value bytes) validated against
the shared contracts, so a wrong field fails here, in the transaction, not in a consumer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from beckon_contracts import chat_events
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import AgentPresence, TeamPresence, presence_key
from beckon_contracts.topics import AGENTS_PRESENCE, CHAT_EVENTS
from beckon_messaging.outbox import OutboxRecord as OutboxRecord  # chat's records are these
from pydantic import BaseModel

_TYPES: dict[str, type[BaseModel]] = {
    "invitation.shown": chat_events.InvitationShown,
    "invitation.accepted": chat_events.InvitationAccepted,
    "invitation.declined": chat_events.InvitationDeclined,
    "conversation.started": chat_events.ConversationStarted,
    "conversation.assigned": chat_events.ConversationAssigned,
    "message.sent": chat_events.MessageSent,
    "conversation.transferred": chat_events.ConversationTransferred,
    "conversation.tagged": chat_events.ConversationTagged,
    "conversation.email_captured": chat_events.EmailCaptured,
    "conversation.closed": chat_events.ConversationClosed,
    "offline.message_left": chat_events.OfflineMessageLeft,
    "conversation.seen": chat_events.ConversationSeen,
    "conversation.lead_marked": chat_events.ConversationLeadMarked,
}


def chat_event(
    kind: str,
    *,
    site_id: str,
    visitor_id: str,
    payload: dict[str, Any],
    key: str,
    now: datetime | None = None,
) -> OutboxRecord:
    """One `chat.events` record, keyed by the conversation (or the visitor before one exists)."""
    model = _TYPES[kind]
    event = model.model_validate(
        {
            "event_id": uuid7(),
            "type": kind,
            "occurred_at": now or datetime.now(UTC),
            "site_id": site_id,
            "visitor_id": visitor_id,
            "payload": payload,
        }
    )
    return OutboxRecord(CHAT_EVENTS.name, key.encode(), event.model_dump_json().encode())


def team_presence(
    *, site_id: str, team: str, agents: Iterable[AgentPresence], now: datetime | None = None
) -> OutboxRecord:
    """The whole team as it is now; the compacted topic keeps the last one per team."""
    record = TeamPresence(
        event_id=uuid7(),
        occurred_at=now or datetime.now(UTC),
        site_id=site_id,
        team=team,
        agents=list(agents),
    )
    return OutboxRecord(
        AGENTS_PRESENCE.name, presence_key(site_id, team), record.model_dump_json().encode()
    )
