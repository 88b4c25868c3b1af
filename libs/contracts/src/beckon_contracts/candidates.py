"""Triggers' internal `triggers.candidates` topic (key `site_id`): the visitors a rule selected,
on their way to the site's admission step, the invitations that step can stop counting, and the
visitors it must forget (an erasure, docs/privacy.md).

Only the triggers worker writes and reads it, but it is a wire format all the same (a rolling
upgrade has old and new workers on one topic): records are flat objects told apart by `kind`.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from beckon_contracts.envelope import Identifier, SiteId
from beckon_contracts.invitations import RuleId
from beckon_contracts.privacy import MAX_SUBJECTS


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CandidateSelected(_Record):
    """A rule selected this visitor; admission decides whether to invite (or hold out)."""

    kind: Literal["candidate"] = "candidate"
    invitation_id: UUID = Field(description="UUIDv7 derived from the event and the rule")
    site_id: SiteId
    visitor_id: Identifier
    session_id: Identifier | None
    rule_id: RuleId
    team: Identifier
    priority: int
    is_default: bool
    score: float = Field(allow_inf_nan=False)
    segment: Annotated[str, StringConstraints(max_length=40)]
    at: float = Field(description="When the triggering event happened, seconds since the epoch")
    trigger_event_id: Annotated[str, StringConstraints(max_length=200)] = Field(
        description="The tracking event that made the rule fire"
    )
    variables: dict[str, str] = Field(description="Values the rule's message may use")


class InvitationResolved(_Record):
    """The visitor answered the invitation (accepted, declined, let it expire): it no longer
    holds one of the team's slots."""

    kind: Literal["resolve"] = "resolve"
    site_id: SiteId
    invitation_id: UUID


class VisitorsForgotten(_Record):
    """A visitor's erasure (made from `privacy.erasure_requested`): admission deletes what it
    remembers of these visitors (their invitation history) and no longer names them in the
    site's outstanding invitations."""

    kind: Literal["forget"] = "forget"
    site_id: SiteId
    request_id: UUID
    visitor_ids: list[Identifier] = Field(min_length=1, max_length=MAX_SUBJECTS)


CandidateRecord = Annotated[
    CandidateSelected | InvitationResolved | VisitorsForgotten, Field(discriminator="kind")
]
candidate_record_adapter: TypeAdapter[CandidateRecord] = TypeAdapter(CandidateRecord)


def parse_candidate_record(data: bytes | str) -> CandidateRecord:
    return candidate_record_adapter.validate_json(data)
