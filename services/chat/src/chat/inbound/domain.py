"""A `chat.inbound` command as chat applies it, and a refused one as its dead letter: pure.

`reply_of` turns the notifier's `conversation.add_email_reply` into what the use case stores
(text without control characters, cut to the service's message limit, since nobody can be
asked to shorten an e-mail; the attachment notes as plain dicts). `letter_of` says how a
refusal reads on `chat.inbound.dlq`: the contract's reason (`schema_invalid` for a value chat
cannot use, `processing_failed` for a command it cannot apply), chat's own code first in the
detail and as the field error's type, naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from beckon_contracts.dead_letter import ReasonCode
from beckon_contracts.inbound import AddEmailReply

from chat.errors import ChatError, Invalid
from chat.text import InvalidInput, fit_text, without_control

# the field of the command each refusal is about
_FIELD = {
    "unknown_conversation": "payload.conversation_id",
    "wrong_site": "site_id",
    "empty_text": "payload.text",
}


@dataclass(frozen=True, slots=True)
class EmailReply:
    """What the use case stores for one command."""

    site_id: str
    command_id: UUID  # the envelope's event_id: a command applied twice adds one message
    conversation_id: UUID
    text: str
    attachments: list[dict[str, Any]]


def reply_of(command: AddEmailReply, *, max_chars: int) -> EmailReply:
    """The command as the message to store; `Invalid("empty_text")` when no text is left."""
    payload = command.payload
    try:
        text = fit_text(payload.text, max_chars=max_chars)
    except InvalidInput:
        raise Invalid("empty_text", "the reply has no text once control characters go") from None
    return EmailReply(
        site_id=command.site_id,
        command_id=command.event_id,
        conversation_id=payload.conversation_id,
        text=text,
        attachments=[
            {
                "filename": without_control(note.filename) if note.filename else None,
                "content_type": note.content_type,
                "size": note.size,
            }
            for note in payload.attachments
        ],
    )


def letter_of(refusal: ChatError) -> tuple[ReasonCode, str, list[dict[str, str]]]:
    """(reason, detail, field errors) of the dead letter for a refused command."""
    reason: ReasonCode = "schema_invalid" if isinstance(refusal, Invalid) else "processing_failed"
    errors = [
        {"loc": _FIELD.get(refusal.code, "payload"), "msg": refusal.detail, "type": refusal.code}
    ]
    return reason, f"{refusal.code}: {refusal.detail}", errors
