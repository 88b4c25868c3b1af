"""Per-rule funnel and hold-out uplift on the compacted `rules.stats` topic (key `site_id:rule_id`).

"Measure every rule": for each rule, how many visitors were eligible, invited or held out
(similar visitors deliberately not invited), what the invitations led to (shown, accepted,
declined, conversations) and the orders and revenue that followed in each arm. `uplift`
compares the arms: conversion is per visitor (a visitor who ordered at least once after
the assignment), with a pooled two-proportion z-test; revenue per visitor uses Welch's
t-test with a normal approximation for the p-value (fine at the sample sizes a rule needs
before anyone should read it: a few hundred visitors per arm).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from beckon_contracts.envelope import AwareDatetime, Envelope, Identifier

Count = Annotated[int, Field(ge=0)]
Real = Annotated[float, Field(allow_inf_nan=False)]
Money = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleCounts(_Part):
    eligible: Count = 0
    invited: Count = 0
    held_out: Count = 0
    shown: Count = 0
    accepted: Count = 0
    declined: Count = 0
    conversations: Count = 0
    orders_invited: Count = Field(default=0, description="Invited visitors who ordered")
    orders_held_out: Count = Field(default=0, description="Held-out visitors who ordered")
    revenue_invited: Money = 0.0
    revenue_held_out: Money = 0.0


class Uplift(_Part):
    """Invited arm versus held-out arm. With no data, z = 0 and p = 1 (no evidence)."""

    conversion_invited: Probability = 0.0
    conversion_held_out: Probability = 0.0
    absolute: Real = Field(default=0.0, description="conversion_invited - conversion_held_out")
    relative: Real | None = Field(
        default=None, description="absolute / conversion_held_out; None when that is 0"
    )
    z: Real = 0.0
    p_value: Probability = 1.0
    significant: bool = Field(default=False, description="p_value < 0.05")
    revenue_per_visitor_invited: Money = 0.0
    revenue_per_visitor_held_out: Money = 0.0
    revenue_t: Real = 0.0
    revenue_p_value: Probability = 1.0


class RuleStatsPayload(_Part):
    rule_id: Identifier
    window_start: AwareDatetime | None = Field(
        default=None, description="When the first counted step happened"
    )
    counts: RuleCounts = Field(default_factory=RuleCounts)
    uplift: Uplift = Field(default_factory=Uplift)


class RuleStats(Envelope):
    type: Literal["rule.stats"] = "rule.stats"
    payload: RuleStatsPayload


def rule_stats_key(site_id: str, rule_id: str) -> bytes:
    """The record key: one compacted record per rule of a site."""
    return f"{site_id}:{rule_id}".encode()


def parse_rule_stats(data: bytes | str) -> RuleStats:
    return RuleStats.model_validate_json(data)
