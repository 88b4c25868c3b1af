"""Lead-scoring configuration, per site (published on `rules.config` with the site's rules).

A visitor earns points for behaviour (product views, the pricing page, cart adds, cart value,
return visits, campaign arrival ...). Points decay exponentially with `half_life`, each group
of behaviours can contribute at most `caps[group]`, and `thresholds` name the segments
("warm", "hot") a visitor enters when the decayed score reaches them; below every threshold
the visitor is "cold". Triggers derives the behaviours from tracking events
(`triggers.domain.scoring`); this module is only the validated configuration.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


class Behaviour(StrEnum):
    """What a visitor did that can earn points (derived by triggers from tracking events)."""

    PAGE_VIEW = "page_view"
    PRODUCT_VIEW = "product_view"
    REPEAT_PRODUCT_VIEW = "repeat_product_view"
    SEEN_PRICE = "seen_price"
    CART_ADD = "cart_add"
    CART_VALUE = "cart_value"
    CHECKOUT_STARTED = "checkout_started"
    ORDER_COMPLETED = "order_completed"
    RETURN_VISIT = "return_visit"
    CAMPAIGN_ARRIVAL = "campaign_arrival"
    EMAIL_ARRIVAL = "email_arrival"
    IDENTIFIED = "identified"
    CHAT_ACCEPTED = "chat_accepted"


# Behaviours that come with an amount (cart value increase, order value): a rule for them may
# award points per `per` units. CART_VALUE means nothing without `per`, so it requires one.
VALUE_BEHAVIOURS = frozenset({Behaviour.CART_VALUE, Behaviour.ORDER_COMPLETED})

DEFAULT_GROUPS: dict[Behaviour, str] = {
    Behaviour.PAGE_VIEW: "interest",
    Behaviour.PRODUCT_VIEW: "interest",
    Behaviour.REPEAT_PRODUCT_VIEW: "interest",
    Behaviour.SEEN_PRICE: "interest",
    Behaviour.CART_ADD: "intent",
    Behaviour.CART_VALUE: "intent",
    Behaviour.CHECKOUT_STARTED: "intent",
    Behaviour.ORDER_COMPLETED: "intent",
    Behaviour.RETURN_VISIT: "engagement",
    Behaviour.IDENTIFIED: "engagement",
    Behaviour.CHAT_ACCEPTED: "engagement",
    Behaviour.CAMPAIGN_ARRIVAL: "source",
    Behaviour.EMAIL_ARRIVAL: "source",
}

# Group and segment names end up as JSON keys and labels on the visitor card.
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]{0,39}$")]
UrlGlob = Annotated[str, StringConstraints(min_length=1, max_length=512)]
Points = Annotated[float, Field(ge=-1000, le=1000, allow_inf_nan=False)]
PositiveAmount = Annotated[float, Field(gt=0, le=1_000_000_000, allow_inf_nan=False)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_HALF_LIFE_S = 365 * 86400.0


def parse_seconds(value: object) -> object:
    """Accept seconds as a number or a short string: "45s", "30m", "12h", "7d", "90".

    Kept local on purpose (the rules contract has its own `Duration`); anything this does not
    understand is passed on for pydantic to reject with its usual message.
    """
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.lower())
        if match is None:
            raise ValueError('expected seconds or a duration such as "45s", "30m", "12h", "7d"')
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


HalfLife = Annotated[
    float,
    BeforeValidator(parse_seconds),
    Field(gt=0, le=MAX_HALF_LIFE_S, allow_inf_nan=False, description="Seconds (or '7d', '12h')"),
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreRule(_Part):
    """`points` for one behaviour; for value behaviours with `per`, points per `per` units."""

    behaviour: Behaviour
    points: Points
    group: Name = Field(description="Defaults to the behaviour's group (interest, intent, ...)")
    per: PositiveAmount | None = Field(
        default=None, description="Only for cart_value (required) and order_completed"
    )
    url: UrlGlob | None = Field(
        default=None, description="Only for page_view: a glob on the page URL, e.g. */pricing*"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_group(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("group") is None and "behaviour" in data:
            try:
                behaviour = Behaviour(data["behaviour"])
            except ValueError:
                return data  # let field validation report the bad behaviour
            return {**data, "group": DEFAULT_GROUPS[behaviour]}
        return data

    @model_validator(mode="after")
    def _check_options(self) -> ScoreRule:
        if self.per is not None and self.behaviour not in VALUE_BEHAVIOURS:
            raise ValueError(f"per is only allowed for {sorted(VALUE_BEHAVIOURS)}")
        if self.per is None and self.behaviour == Behaviour.CART_VALUE:
            raise ValueError("cart_value needs per (points per `per` units of cart value)")
        if self.url is not None and self.behaviour != Behaviour.PAGE_VIEW:
            raise ValueError("url is only allowed for page_view")
        return self

    @property
    def key(self) -> str:
        """How the rule is named in a score breakdown: the behaviour, plus the URL glob."""
        return f"{self.behaviour.value} {self.url}" if self.url else self.behaviour.value


def _rule(behaviour: Behaviour, points: float, **options: Any) -> ScoreRule:
    return ScoreRule.model_validate({"behaviour": behaviour, "points": points, **options})


def default_rules() -> list[ScoreRule]:
    """A sensible start for a web store; sites tune points from there."""
    return [
        _rule(Behaviour.PAGE_VIEW, 5, url="*/pricing*"),
        _rule(Behaviour.PRODUCT_VIEW, 3),
        _rule(Behaviour.REPEAT_PRODUCT_VIEW, 5),
        _rule(Behaviour.SEEN_PRICE, 2),
        _rule(Behaviour.CART_ADD, 10),
        _rule(Behaviour.CART_VALUE, 2, per=50),
        _rule(Behaviour.CHECKOUT_STARTED, 20),
        _rule(Behaviour.ORDER_COMPLETED, 30),
        _rule(Behaviour.RETURN_VISIT, 10),
        _rule(Behaviour.CAMPAIGN_ARRIVAL, 5),
        _rule(Behaviour.EMAIL_ARRIVAL, 10),
        _rule(Behaviour.IDENTIFIED, 10),
        _rule(Behaviour.CHAT_ACCEPTED, 10),
    ]


def default_caps() -> dict[str, float]:
    return {"interest": 30.0, "intent": 60.0, "engagement": 20.0, "source": 15.0}


def default_thresholds() -> dict[str, float]:
    return {"warm": 30.0, "hot": 60.0}


class ScoringConfig(_Part):
    """How one site scores its visitors. Round-trips through `model_dump(mode="json")`."""

    rules: list[ScoreRule] = Field(default_factory=default_rules, max_length=100)
    caps: dict[Name, PositiveAmount] = Field(
        default_factory=default_caps,
        description="Max points a group can contribute; groups without a cap are unbounded",
    )
    half_life: HalfLife = 7 * 86400.0
    thresholds: dict[Name, PositiveAmount] = Field(
        default_factory=default_thresholds,
        description='Segment → minimum score; below every threshold the segment is "cold"',
    )

    @field_validator("thresholds")
    @classmethod
    def _distinct_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        if "cold" in value:
            raise ValueError('"cold" is the segment below every threshold; do not define it')
        if len(set(value.values())) != len(value):
            raise ValueError("two segments share a minimum score; each needs its own")
        return value

    @field_validator("rules")
    @classmethod
    def _distinct_rules(cls, value: list[ScoreRule]) -> list[ScoreRule]:
        keys = [rule.key for rule in value]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"more than one rule for {duplicates}")
        return value

    def segments(self) -> list[tuple[float, str]]:
        """(minimum score, segment) from lowest to highest."""
        return sorted((minimum, name) for name, minimum in self.thresholds.items())

    def segment_of(self, score: float) -> str:
        segment = "cold"
        for minimum, name in self.segments():
            if score >= minimum:
                segment = name
        return segment
