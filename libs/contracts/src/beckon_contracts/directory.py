"""The staff directory on the compacted `agents.directory` topic (key `site_id:agent_id`).

The chat service owns agents (their login e-mail, name, language, role and teams). It
publishes an `AgentListed` record per agent on every change that touches these fields and
fills the topic at start-up the way it fills `sites.config`; a tombstone (no value) removes
an agent. The notifier follows it to e-mail lead alerts and escalations to staff in their
console language; the directory is never shown to visitors and never read by triggers.
A record wins when its `version` is at least the one held.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from beckon_contracts.chat_events import EmailText, Language
from beckon_contracts.envelope import Envelope, Identifier, SiteId

MAX_TEAMS = 200


class AgentCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: SiteId
    agent_id: Identifier
    version: int = Field(ge=1, description="Grows with every change; followers keep the highest")
    email: EmailText
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    language: Language = "en"
    role: Literal["agent", "admin"]
    teams: list[Identifier] = Field(default_factory=list, max_length=MAX_TEAMS)
    active: bool = Field(default=True, description="False once deactivated: e-mail nothing")


class AgentListed(Envelope):
    type: Literal["agent.listed"] = "agent.listed"
    payload: AgentCard

    @model_validator(mode="after")
    def _same_site(self) -> AgentListed:
        if self.payload.site_id != self.site_id:
            raise ValueError(
                f"payload.site_id {self.payload.site_id!r} differs from site_id {self.site_id!r}"
            )
        return self


def directory_key(site_id: str, agent_id: str) -> bytes:
    return f"{site_id}:{agent_id}".encode()


def parse_agent_record(data: bytes | str) -> AgentCard:
    """Validate one `agents.directory` record value (raises pydantic's ValidationError)."""
    return AgentListed.model_validate_json(data).payload


def newer(held: AgentCard | None, incoming: AgentCard) -> bool:
    return held is None or incoming.version >= held.version
