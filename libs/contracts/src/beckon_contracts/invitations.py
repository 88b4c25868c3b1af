"""Invitation decisions on `chat.invitations` (key `site_id:visitor_id`), made by triggers.

`invitation.issued` is what the chat service delivers to the visitor's widget; the
`invitation.held_out` records are the rule's control group: the visitor qualified, was not
invited, and is counted so the rule's uplift can be measured. Chat ignores them.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from beckon_contracts.envelope import AwareDatetime, Envelope, Identifier

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InvitingAgent(_Part):
    """The agent whose name and avatar personalise the invitation (personal ones get replies)."""

    agent_id: Identifier | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=80)]
    avatar_url: Annotated[str, StringConstraints(max_length=2048)] | None = None


class InvitationIssuedPayload(_Part):
    invitation_id: UUID
    rule_id: RuleId
    rule_name: Annotated[str, StringConstraints(max_length=200)] = ""
    team: Identifier
    message: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    agent: InvitingAgent | None = None
    expires_at: AwareDatetime
    score: float = 0.0
    segment: Annotated[str, StringConstraints(max_length=40)] = "cold"
    trigger_event_id: UUID | None = Field(
        default=None, description="The tracking event that made the rule fire"
    )
    personal: bool = Field(default=False, description="Sent by an agent from the live list")


class HeldOutPayload(_Part):
    invitation_id: UUID
    rule_id: RuleId
    team: Identifier
    score: float = 0.0
    trigger_event_id: UUID | None = None


class InvitationIssued(Envelope):
    type: Literal["invitation.issued"] = "invitation.issued"
    visitor_id: Identifier
    payload: InvitationIssuedPayload


class InvitationHeldOut(Envelope):
    type: Literal["invitation.held_out"] = "invitation.held_out"
    visitor_id: Identifier
    payload: HeldOutPayload


InvitationRecord = Annotated[InvitationIssued | InvitationHeldOut, Field(discriminator="type")]
invitation_record_adapter: TypeAdapter[InvitationRecord] = TypeAdapter(InvitationRecord)


def parse_invitation_record(data: bytes | str) -> InvitationRecord:
    return invitation_record_adapter.validate_json(data)
