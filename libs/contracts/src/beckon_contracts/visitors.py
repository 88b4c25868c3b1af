"""What triggers says about visitors: live snapshots and lead-score thresholds.

`visitor.state` records go to the compacted `visitors.state` topic (key `site_id:visitor_id`)
when something a person watching the live visitor list would notice changed, at most about
once a second per visitor. `visitor.score_crossed` goes to `visitors.events` once, when a
visitor's lead score rises into a higher segment (e.g. cold → warm → hot).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from beckon_contracts.envelope import AwareDatetime, Envelope, Identifier

TEXT_MAX = 2048
AGENT_TEXT_MAX = 64  # browser and OS names
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]
AgentText = Annotated[str, StringConstraints(max_length=AGENT_TEXT_MAX)]
Segment = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VisitorSnapshotPayload(_Part):
    url: Text | None = None
    title: Text | None = None
    page_type: Text | None = None
    session_started_at: AwareDatetime
    last_seen_at: AwareDatetime
    time_on_site_s: float = Field(ge=0)
    sessions: int = Field(ge=1)
    returning: bool
    source: Text | None = None
    medium: Text | None = None
    campaign: Text | None = None
    referrer: Text | None = Field(
        default=None, description="The page of another site this session came from"
    )
    device: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        default=None, description="desktop, mobile, tablet, bot or other (from the user agent)"
    )
    browser: AgentText | None = None
    os: AgentText | None = None
    cart_value: float = 0.0
    cart_items: int = 0
    currency: Annotated[str, StringConstraints(max_length=3)] | None = None
    current_product: Text | None = None
    score: float = 0.0
    segment: Segment = "cold"
    score_breakdown: dict[str, float] = Field(default_factory=dict)
    orders: int = 0
    identified: bool = False
    name: Text | None = None
    email: Text | None = None
    invited: bool = Field(description="An invitation was made in this session")
    chatting: bool = False


class VisitorSnapshot(Envelope):
    type: Literal["visitor.state"] = "visitor.state"
    visitor_id: Identifier
    payload: VisitorSnapshotPayload


class ScoreCrossedPayload(_Part):
    score: float
    segment: Segment
    previous_segment: Segment
    breakdown: dict[str, float] = Field(default_factory=dict)


class ScoreCrossed(Envelope):
    type: Literal["visitor.score_crossed"] = "visitor.score_crossed"
    visitor_id: Identifier
    payload: ScoreCrossedPayload
