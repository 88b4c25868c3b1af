"""Conversation facts on `chat.events`, written by the chat service through its outbox.

How a proactive invitation fared in the widget, and every change of a conversation: started,
assigned, a message, transferred, tagged, an e-mail captured, closed, offline messages, and a
conversation marked as a lead. Typing, typing previews and agents' private notes are not
facts for consumers and never appear here (the notifier e-mails transcripts from this topic).
Records are keyed by the conversation, so one conversation's facts stay in order; consumers
ignore types they don't know.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from beckon_contracts.envelope import Envelope, Identifier
from beckon_contracts.invitations import RuleId


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InvitationOutcomePayload(_Part):
    invitation_id: UUID
    rule_id: RuleId | None = Field(default=None, description="None for personal invitations")
    team: Identifier | None = None


Language = Literal["en", "fi"]
Channel = Literal["chat", "email"]


class ConversationStartedPayload(_Part):
    conversation_id: UUID
    team: Identifier
    invitation_id: UUID | None = Field(default=None, description="Set when it came from one")
    rule_id: RuleId | None = None
    language: Language | None = Field(
        default=None, description="The widget's language (e-mails to the visitor use it)"
    )


MessageText = Annotated[str, StringConstraints(min_length=1, max_length=4000)]
Author = Literal["visitor", "agent", "system"]
Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,39}$")]
EmailText = Annotated[
    str, StringConstraints(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
]


class ConversationAssignedPayload(_Part):
    conversation_id: UUID
    team: Identifier
    agent_id: Identifier
    agent_name: str
    agent_avatar_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    how: Literal["auto", "pickup", "dequeue", "transfer", "personal"]


class MessageSentPayload(_Part):
    conversation_id: UUID
    message_id: UUID
    seq: int = Field(ge=1, description="1, 2, 3... per conversation, without gaps")
    author: Author
    agent_id: Identifier | None = None
    agent_name: str | None = None
    agent_avatar_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    text: MessageText
    client_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    sent_at: datetime
    channel: Channel = Field(
        default="chat", description="email: a visitor's reply that came by e-mail (chat.inbound)"
    )


class ConversationTransferredPayload(_Part):
    conversation_id: UUID
    from_agent_id: Identifier | None
    to_agent_id: Identifier | None = Field(description="None when it waits in the team's queue")
    to_team: Identifier
    note: Annotated[str, StringConstraints(max_length=1000)] | None = Field(
        default=None,
        description="Always None since the toolkit: a transfer note is a private note, for "
        "agents only, and never published",
    )


class ConversationTaggedPayload(_Part):
    conversation_id: UUID
    tags: list[Tag] = Field(max_length=20)


class EmailCapturedPayload(_Part):
    conversation_id: UUID | None
    email: EmailText


class ConversationClosedPayload(_Part):
    conversation_id: UUID
    closed_by: Literal["agent", "visitor", "system"]
    agent_id: Identifier | None = None
    team: Identifier
    messages: int = Field(ge=0)
    email: EmailText | None = None


class OfflineMessagePayload(_Part):
    conversation_id: UUID
    team: Identifier
    email: EmailText
    name: Annotated[str, StringConstraints(max_length=120)] | None = None
    text: MessageText
    language: Language | None = Field(default=None, description="The widget's language")


class ConversationSeenPayload(_Part):
    """The visitor's widget showed the conversation's messages up to `up_to_seq` (published
    when it grows): the notifier e-mails only agents' messages the visitor has not seen."""

    conversation_id: UUID
    up_to_seq: int = Field(ge=1)
    seen_at: datetime


LeadValidation = Literal["contact_only", "interested", "qualified", "ready_to_buy"]


class LeadMarkedPayload(_Part):
    """An agent marked the conversation as a lead (again: the mark was updated)."""

    mark_id: UUID = Field(description="One mark per conversation; a re-mark keeps its id")
    conversation_id: UUID
    agent_id: Identifier
    validation: LeadValidation = Field(description="How far the agent validated the lead")
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None
    email: EmailText | None = Field(default=None, description="The visitor's, when known")
    team: Identifier


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


class ConversationAssigned(_VisitorChatEvent):
    type: Literal["conversation.assigned"] = "conversation.assigned"
    payload: ConversationAssignedPayload


class MessageSent(_VisitorChatEvent):
    type: Literal["message.sent"] = "message.sent"
    payload: MessageSentPayload


class ConversationTransferred(_VisitorChatEvent):
    type: Literal["conversation.transferred"] = "conversation.transferred"
    payload: ConversationTransferredPayload


class ConversationTagged(_VisitorChatEvent):
    type: Literal["conversation.tagged"] = "conversation.tagged"
    payload: ConversationTaggedPayload


class EmailCaptured(_VisitorChatEvent):
    type: Literal["conversation.email_captured"] = "conversation.email_captured"
    payload: EmailCapturedPayload


class ConversationClosed(_VisitorChatEvent):
    type: Literal["conversation.closed"] = "conversation.closed"
    payload: ConversationClosedPayload


class OfflineMessageLeft(_VisitorChatEvent):
    type: Literal["offline.message_left"] = "offline.message_left"
    payload: OfflineMessagePayload


class ConversationSeen(_VisitorChatEvent):
    type: Literal["conversation.seen"] = "conversation.seen"
    payload: ConversationSeenPayload


class ConversationLeadMarked(_VisitorChatEvent):
    type: Literal["conversation.lead_marked"] = "conversation.lead_marked"
    payload: LeadMarkedPayload


ChatEvent = Annotated[
    InvitationShown
    | InvitationAccepted
    | InvitationDeclined
    | ConversationStarted
    | ConversationAssigned
    | MessageSent
    | ConversationTransferred
    | ConversationTagged
    | EmailCaptured
    | ConversationClosed
    | OfflineMessageLeft
    | ConversationSeen
    | ConversationLeadMarked,
    Field(discriminator="type"),
]
chat_event_adapter: TypeAdapter[ChatEvent] = TypeAdapter(ChatEvent)
CHAT_EVENT_TYPES: tuple[str, ...] = (
    "invitation.shown",
    "invitation.accepted",
    "invitation.declined",
    "conversation.started",
    "conversation.assigned",
    "message.sent",
    "conversation.transferred",
    "conversation.tagged",
    "conversation.email_captured",
    "conversation.closed",
    "offline.message_left",
    "conversation.seen",
    "conversation.lead_marked",
)


def parse_chat_event(data: bytes | str) -> ChatEvent:
    return chat_event_adapter.validate_json(data)
