"""Commands to the chat service on `chat.inbound` (key: the conversation id).

The notifier never writes chat's database. When a visitor answers one of Beckon's e-mails,
the notifier checks the reply address's signed token, strips the quoted history and publishes
`conversation.add_email_reply` here; chat stores it as the visitor's message in that
conversation (`channel="email"` on its `message.sent`), delivers it to the agents' sockets
and ignores a command it has already applied (the envelope's `event_id`). A command chat
cannot apply (an unknown conversation, another site's) goes to `chat.inbound.dlq` with the
reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from beckon_contracts.chat_events import EmailText, MessageText
from beckon_contracts.envelope import Envelope

MAX_ATTACHMENTS = 50


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttachmentNote(_Part):
    """An attachment the reply carried: listed for the agent, never stored."""

    filename: Annotated[str, StringConstraints(max_length=255)] | None = None
    content_type: Annotated[str, StringConstraints(max_length=255)]
    size: int = Field(ge=0)


class EmailReplyPayload(_Part):
    conversation_id: UUID
    text: MessageText = Field(description="The reply without quoted history or signature")
    from_email: EmailText = Field(description="Who wrote it (the envelope/From address)")
    subject: Annotated[str, StringConstraints(max_length=998)] | None = None
    mail_message_id: Annotated[str, StringConstraints(max_length=998)] | None = Field(
        default=None, description="The e-mail's own Message-ID"
    )
    attachments: list[AttachmentNote] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    received_at: datetime


class AddEmailReply(Envelope):
    """Add the visitor's e-mailed reply to the conversation (imperative: a command)."""

    type: Literal["conversation.add_email_reply"] = "conversation.add_email_reply"
    payload: EmailReplyPayload


InboundCommand = Annotated[AddEmailReply, Field(discriminator="type")]
inbound_command_adapter: TypeAdapter[InboundCommand] = TypeAdapter(InboundCommand)


def parse_inbound_command(data: bytes | str) -> InboundCommand:
    return inbound_command_adapter.validate_json(data)


def command_key(conversation_id: UUID) -> bytes:
    """Keyed by the conversation, like `chat.events`: one conversation's replies stay in order."""
    return str(conversation_id).encode()
