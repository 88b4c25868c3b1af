"""Triggers' internal `triggers.outcomes` topic (key `site_id:rule_id`): one funnel step of one
rule for one visitor, counted once per `source_id` by the stats stage into `rules.stats`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from beckon_contracts.envelope import Identifier, SiteId

FunnelStepKind = Literal[
    "eligible", "invited", "held_out", "shown", "accepted", "declined", "conversation", "order"
]


class FunnelStep(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    site_id: SiteId
    rule_id: Identifier
    visitor_id: Identifier
    kind: FunnelStepKind
    arm: Literal["invited", "held_out"] | None = Field(
        default=None, description="The visitor's arm of the rule's experiment"
    )
    value: float = Field(default=0.0, allow_inf_nan=False, description="An order's value")
    first: bool = Field(default=True, description="The visitor's first order since assignment")
    before: float = Field(
        default=0.0, allow_inf_nan=False, description="Revenue already counted for a later order"
    )
    source_id: str = Field(
        default="", description="What caused it (event or invitation id and step): its dedup key"
    )


def parse_funnel_step(data: bytes | str) -> FunnelStep:
    return FunnelStep.model_validate_json(data)
