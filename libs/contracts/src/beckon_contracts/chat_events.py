"""Conversation facts on `chat.events`, written by the chat service through its outbox.

This module holds the events other services react to today: how a proactive invitation
fared in the widget and when a conversation starts. The chat service adds its own
(messages, transfers, tags, close) as it grows; consumers ignore types they don't know.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from beckon_contracts.envelope import Envelope, Identifier
from beckon_contracts.invitations import RuleId


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InvitationOutcomePayload(_Part):
    invitation_id: UUID
    rule_id: RuleId | None = Field(default=None, description="None for personal invitations")
    team: Identifier | None = None


class ConversationStartedPayload(_Part):
    conversation_id: UUID
    team: Identifier
    invitation_id: UUID | None = Field(default=None, description="Set when it came from one")
    rule_id: RuleId | None = None


class _VisitorChatEvent(Envelope):
    visitor_id: Identifier


class InvitationShown(_VisitorChatEvent):
    type: Literal["invitation.shown"] = "invitation.shown"
    payload: InvitationOutcomePayload


class InvitationAccepted(_VisitorChatEvent):
    type: Literal["invitation.accepted"] = "invitation.accepted"
    payload: InvitationOutcomePayload


class InvitationDeclined(_VisitorChatEvent):
    type: Literal["invitation.declined"] = "invitation.declined"
    payload: InvitationOutcomePayload


class ConversationStarted(_VisitorChatEvent):
    type: Literal["conversation.started"] = "conversation.started"
    payload: ConversationStartedPayload


ChatEvent = Annotated[
    InvitationShown | InvitationAccepted | InvitationDeclined | ConversationStarted,
    Field(discriminator="type"),
]
chat_event_adapter: TypeAdapter[ChatEvent] = TypeAdapter(ChatEvent)
CHAT_EVENT_TYPES: tuple[str, ...] = (
    "invitation.shown",
    "invitation.accepted",
    "invitation.declined",
    "conversation.started",
)


def parse_chat_event(data: bytes | str) -> ChatEvent:
    return chat_event_adapter.validate_json(data)
