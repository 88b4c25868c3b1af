"""Ephemeral news between chat instances on `chat.signals` (retention one hour).

Every chat instance reads the topic from the end and hands each signal to its socket hub,
which delivers it to the sockets it holds: that is how a visitor on one instance and an
agent on another hear each other type, and how an invitation reaches the visitor's widget
wherever it is connected. Signals are not facts (those are on `chat.events`): nothing stores
them and a lost one is only a missed typing dot. Records are flat objects told apart by `kind`;
the key is `site_id:visitor_id` for a visitor's signals, `site_id` for the agents'.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from beckon_contracts.envelope import AwareDatetime, Identifier, SiteId
from beckon_contracts.invitations import RuleId

MAX_PREVIEW_CHARS = 1000


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Signal(_Part):
    site_id: SiteId


class TypingSignal(_Signal):
    """Someone in a conversation started or stopped typing. A visitor's reaches the site's
    agents (with the preview, when the site allows it); an agent's reaches the visitor only."""

    kind: Literal["typing"] = "typing"
    who: Literal["visitor", "agent"]
    visitor_id: Identifier
    conversation_id: UUID
    on: bool
    preview: Annotated[str, StringConstraints(max_length=MAX_PREVIEW_CHARS)] | None = Field(
        default=None, description="What the visitor has typed so far (never an agent's)"
    )


class AgentCard(_Part):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    avatar_url: Annotated[str, StringConstraints(max_length=2048)] | None = None


class ShownInvitation(_Part):
    """An invitation as the widget shows it (the Invitation shape of docs/chat.md)."""

    id: UUID
    message: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    agent: AgentCard | None = None
    team: Identifier
    expires_at: AwareDatetime
    rule_id: RuleId | None = Field(default=None, description="None: an agent's own invitation")


class InvitationSignal(_Signal):
    """Show this invitation on the visitor's widget (it is stored already)."""

    kind: Literal["invitation"] = "invitation"
    visitor_id: Identifier
    invitation: ShownInvitation


class AgentsPushSignal(_Signal):
    """One console frame for the site's agents on every instance: notes, transfers, live-list
    news, anything agents-only."""

    kind: Literal["push"] = "push"
    agent_ids: list[Identifier] | None = Field(
        default=None, description="Only these agents' consoles; None: every agent of the site"
    )
    frame: dict[str, Any] = Field(description='The console frame, e.g. {"t": "note", ...}')


class AgentsChangedSignal(_Signal):
    """These agents changed (status, name, teams): their own consoles reload their card."""

    kind: Literal["agents"] = "agents"
    agent_ids: list[Identifier]


ChatSignal = Annotated[
    TypingSignal | InvitationSignal | AgentsPushSignal | AgentsChangedSignal,
    Field(discriminator="kind"),
]
chat_signal_adapter: TypeAdapter[ChatSignal] = TypeAdapter(ChatSignal)


def parse_chat_signal(data: bytes | str) -> ChatSignal:
    return chat_signal_adapter.validate_json(data)


def chat_signal_key(signal: ChatSignal) -> bytes:
    """The record key: a visitor's signals stay in order on one partition."""
    if isinstance(signal, TypingSignal | InvitationSignal):
        return f"{signal.site_id}:{signal.visitor_id}".encode()
    return signal.site_id.encode()
