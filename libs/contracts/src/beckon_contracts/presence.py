"""Agent presence on the compacted `agents.presence` topic (key `site_id:team`).

The chat service publishes one `TeamPresence` record per team on every change (an agent goes
online, away or offline, opens or closes a chat, changes their limit). The topic is compacted,
so the latest record per team is the team's current state; triggers reads it to invite only
when an agent of the right team has capacity, and to name the agent in the invitation.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from beckon_contracts.envelope import Envelope, Identifier

AgentStatus = Literal["online", "away", "offline"]
MAX_AGENTS_PER_TEAM = 500


def _require_http_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("avatar_url is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("avatar_url must be an absolute http(s) URL")
    return value


HttpUrlText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2048, pattern=r"^\S+$"),
    AfterValidator(_require_http_url),
]


class AgentPresence(BaseModel):
    """One agent of the team as the chat service sees them now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    agent_id: Identifier
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)] = Field(
        description="Shown to the visitor in personal invitations"
    )
    avatar_url: HttpUrlText | None = None
    status: AgentStatus
    open_chats: int = Field(ge=0, le=10_000, description="May exceed max_chats after transfers")
    max_chats: int = Field(default=5, ge=1, le=50, description="The agent's concurrent limit")

    @property
    def free_slots(self) -> int:
        """Chats this agent can still take (0 unless online)."""
        if self.status != "online":
            return 0
        return max(0, self.max_chats - self.open_chats)


class TeamPresence(Envelope):
    """Every agent of one team, published whole on every change (compaction keeps the last)."""

    type: Literal["agents.presence"] = "agents.presence"
    team: Identifier
    agents: list[AgentPresence] = Field(default_factory=list, max_length=MAX_AGENTS_PER_TEAM)

    @model_validator(mode="after")
    def _distinct_agents(self) -> TeamPresence:
        ids = [agent.agent_id for agent in self.agents]
        if len(set(ids)) != len(ids):
            raise ValueError("an agent appears twice in the team")
        return self


def presence_key(site_id: str, team: str) -> bytes:
    """The record key: one compacted record per team of a site."""
    return f"{site_id}:{team}".encode()


def parse_team_presence(data: bytes | str) -> TeamPresence:
    """Validate one `agents.presence` record value (raises pydantic's ValidationError)."""
    return TeamPresence.model_validate_json(data)
