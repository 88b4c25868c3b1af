"""Routing rules: which team gets a lead, as data per site.

A site's routing is one document (`RoutingRules`): a version, ordered rules and a default team.
Each rule has conditions over what is known of the lead when it is captured (`LeadFacts`), all
of which must hold; the first enabled rule whose conditions hold names the team, and a lead no
rule takes goes to the default team (`route`). Conditions are YAML/JSON-friendly mappings with
exactly one key, like the engagement rules' (`beckon_contracts.rules`); `all` / `any` / `not`
nest. Example, the demo store's "sales collects leads, service books car servicing":

    default_team: sales
    rules:
      - id: car-service
        name: Car servicing bookings
        conditions:
          - any: [{categories_viewed: [Car service, Tyres]}, {tags: service-booking}]
        team: service
      - id: big-b2b
        name: Business buyers with a big cart
        conditions: [{segment: b2b}, {cart_value: {gte: 5000, currency: EUR}}]
        team: key-accounts

Everything a rule author can get wrong is found by `check_routing`, every problem at its place
(`rules[3].conditions[1].cart_value.gte`) as the chat admin locates the engagement rules'
problems, so the console can mark each field. `explain` is the admin's "which team would get
this lead": every rule with each of its conditions, held or not and why (a code and values
for the console to word in en/fi, and an English sentence).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

from beckon_contracts.chat_events import LeadValidation
from beckon_contracts.conditions import (
    OneKeyConditions,
    did_you_mean,
    error_message,
    join_location,
    listify,
    nesting_depth,
)
from beckon_contracts.envelope import Identifier
from beckon_contracts.money import Amount, Currency, format_money
from beckon_contracts.rules import Names
from beckon_edge.refusals import Invalid
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_ROUTING_RULES = 200
MAX_CONDITIONS = 50
MAX_DEPTH = 40  # nesting of a posted document; far beyond any sensible condition tree
MAX_PROBLEMS = 100

# How far the chat team validated a lead, weakest first (`min_validation` counts on this order).
VALIDATION_LEVELS: tuple[LeadValidation, ...] = (
    "contact_only",
    "interested",
    "qualified",
    "ready_to_buy",
)
CustomerSegment = Literal["b2b", "b2c"]
SEGMENTS: tuple[CustomerSegment, ...] = ("b2b", "b2c")
# Identify traits that say the person buys for a business (Segment's spec: `company` may be an
# object with a name or id).
B2B_TRAITS: tuple[str, ...] = (
    "company",
    "company_name",
    "organization",
    "business_id",
    "vat_id",
)
RANGE_OPERATORS: tuple[str, ...] = ("gte", "gt", "lte", "lt")
_RANGE_WORDS = {"gte": "at least", "gt": "above", "lte": "at most", "lt": "below"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_of(allowed: Sequence[str], what: str) -> Callable[[list[str]], list[str]]:
    def check(values: list[str]) -> list[str]:
        normalized = []
        for value in values:
            word = value.strip().lower()
            if word not in allowed:
                raise ValueError(
                    f"unknown {what} {value!r}{did_you_mean(word, allowed)};"
                    f" use one of {', '.join(allowed)}"
                )
            normalized.append(word)
        return normalized

    return check


def segment_of(traits: Mapping[str, object], tags: Iterable[str] = ()) -> CustomerSegment:
    """B2B or B2C: an agent's tag `b2b` / `b2c` decides; else a business trait (a company,
    an organisation, a business or VAT id) makes it B2B; else B2C, a store's usual buyer."""
    tagged = {tag.strip().lower() for tag in tags}
    if "b2b" in tagged:
        return "b2b"
    if "b2c" in tagged:
        return "b2c"
    for name in B2B_TRAITS:
        value = traits.get(name)
        if isinstance(value, str) and value.strip():
            return "b2b"
        if isinstance(value, Mapping) and any(
            isinstance(value.get(key), str | int) and str(value.get(key)).strip()
            for key in ("name", "id")
        ):
            return "b2b"
    return "b2c"


# ---- what is known of a lead ------------------------------------------------------------------
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _country(value: object) -> object:
    if not isinstance(value, str):
        return value
    code = value.strip().upper()
    if not _COUNTRY.match(code):
        raise ValueError(f"{value!r} is not a country code; use two letters (ISO 3166), e.g. FI")
    return code


def _language(value: object) -> object:
    if not isinstance(value, str):
        return value
    tag = value.strip().lower().replace("_", "-")
    if not _LANGUAGE.match(tag):
        raise ValueError(f"{value!r} is not a language tag; write it like 'fi' or 'en-GB'")
    return tag


CountryCode = Annotated[
    str, BeforeValidator(_country), Field(description="ISO 3166-1 alpha-2, e.g. FI")
]
LanguageTag = Annotated[
    str, BeforeValidator(_language), Field(description="BCP 47, lower case, e.g. fi or en-gb")
]


class LeadFacts(_Strict):
    """What routing may look at: the lead at capture (the chat's validation, the visitor's
    traits, tags and browsing from `visitors.state`, the campaign that brought them)."""

    validation: LeadValidation
    segment: CustomerSegment = Field(default="b2c", description="See `segment_of`")
    tags: list[ShortText] = Field(default_factory=list, max_length=100)
    categories_viewed: list[ShortText] = Field(default_factory=list, max_length=500)
    cart_value: Amount | None = None
    currency: Currency | None = None
    source: ShortText | None = None
    medium: ShortText | None = None
    campaign: ShortText | None = None
    country: CountryCode | None = None
    language: LanguageTag | None = None
    score: float | None = Field(default=None, allow_inf_nan=False)
    score_segment: ShortText | None = Field(
        default=None, description="The lead score's segment (cold, warm, hot)"
    )


def _number(value: Decimal | float) -> str:
    """500 → "500", 2.5 → "2.5" (never "5E+2")."""
    if isinstance(value, Decimal):
        text = f"{value.normalize():f}"
    else:
        text = str(int(value)) if value.is_integer() else repr(value)
    return text


# ---- ranges -----------------------------------------------------------------------------------
class _RangeBase(_Strict):
    """Bounds that must all hold: {gte: 100} or {gt: 1, lte: 5}."""

    extra_keys: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, value: object) -> object:
        keys = (*RANGE_OPERATORS, *cls.extra_keys)
        if isinstance(value, BaseModel):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"expected a range like {{gte: 100}}, got {value!r}")
        for key in value:
            if key not in keys:
                raise ValueError(
                    f"unknown key {key!r}{did_you_mean(str(key), keys)}; use {', '.join(keys)}"
                )
        if not any(value.get(op) is not None for op in RANGE_OPERATORS):
            raise ValueError(f"the range has no bound; give one of {', '.join(RANGE_OPERATORS)}")
        return value

    @model_validator(mode="after")
    def _possible(self) -> _RangeBase:
        if self.gte is not None and self.gt is not None:
            raise ValueError("give one lower bound: gte or gt, not both")
        if self.lte is not None and self.lt is not None:
            raise ValueError("give one upper bound: lte or lt, not both")
        low = self.gte if self.gte is not None else self.gt
        high = self.lte if self.lte is not None else self.lt
        if low is not None and high is not None:
            strict = self.gt is not None or self.lt is not None
            if low > high or (low == high and strict):
                raise ValueError(f"no value is {self.text()}; the bounds exclude each other")
        return self

    # Each subclass declares gte/gt/lte/lt of its own number type.
    gte: Any
    gt: Any
    lte: Any
    lt: Any

    def bounds(self) -> list[tuple[str, Any]]:
        return [(op, getattr(self, op)) for op in RANGE_OPERATORS if getattr(self, op) is not None]

    def holds(self, value: Decimal | float) -> bool:
        for op, limit in self.bounds():
            if op == "gte" and not value >= limit:
                return False
            if op == "gt" and not value > limit:
                return False
            if op == "lte" and not value <= limit:
                return False
            if op == "lt" and not value < limit:
                return False
        return True

    def text(self, show: Callable[[Any], str] | None = None) -> str:
        show = show or _number
        return " and ".join(f"{_RANGE_WORDS[op]} {show(limit)}" for op, limit in self.bounds())

    def expected(self) -> dict[str, Any]:
        return {op: float(limit) for op, limit in self.bounds()}


class ScoreRange(_RangeBase):
    gte: float | None = Field(default=None, allow_inf_nan=False)
    gt: float | None = Field(default=None, allow_inf_nan=False)
    lte: float | None = Field(default=None, allow_inf_nan=False)
    lt: float | None = Field(default=None, allow_inf_nan=False)


class MoneyRange(_RangeBase):
    """A cart value range; with `currency`, a cart in another currency never matches (no
    conversion), except an empty cart (0), which is 0 in every currency."""

    extra_keys: ClassVar[tuple[str, ...]] = ("currency",)
    gte: Amount | None = None
    gt: Amount | None = None
    lte: Amount | None = None
    lt: Amount | None = None
    currency: Currency | None = None

    def expected(self) -> dict[str, Any]:
        found = super().expected()
        if self.currency:
            found["currency"] = self.currency
        return found


# ---- conditions -------------------------------------------------------------------------------
class ConditionBase(_Strict):
    """A condition; `key` is the one mapping key that names it in YAML/JSON."""

    key: ClassVar[str]


class AllOf(ConditionBase):
    key = "all"
    all: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)


class AnyOf(ConditionBase):
    key = "any"
    any: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)


class NotOf(ConditionBase):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )
    key = "not"
    not_: Condition = Field(alias="not")


class ValidationIs(ConditionBase):
    """The chat team validated the lead as one of these levels."""

    key = "validation"
    validation: Annotated[list[str], BeforeValidator(listify), Field(min_length=1, max_length=4)]

    _check = field_validator("validation")(_one_of(VALIDATION_LEVELS, "validation level"))


class MinValidation(ConditionBase):
    """Validated at least this far (contact_only < interested < qualified < ready_to_buy)."""

    key = "min_validation"
    min_validation: str

    @field_validator("min_validation")
    @classmethod
    def _level(cls, value: str) -> str:
        return _one_of(VALIDATION_LEVELS, "validation level")([value])[0]


class SegmentIs(ConditionBase):
    """B2B or B2C (see `segment_of`)."""

    key = "segment"
    segment: Annotated[list[str], BeforeValidator(listify), Field(min_length=1, max_length=2)]

    _check = field_validator("segment")(_one_of(SEGMENTS, "segment"))


class TagsInclude(ConditionBase):
    """The lead carries one of these tags (`*` and `?` are wildcards; case ignored)."""

    key = "tags"
    tags: Names


class CategoriesViewed(ConditionBase):
    """The visitor viewed a product of one of these categories."""

    key = "categories_viewed"
    categories_viewed: Names


class CartValue(ConditionBase):
    key = "cart_value"
    cart_value: MoneyRange


class SourceIs(ConditionBase):
    """utm_source (or the referrer's name) is one of these."""

    key = "source"
    source: Names


class MediumIs(ConditionBase):
    key = "medium"
    medium: Names


class CampaignIs(ConditionBase):
    key = "campaign"
    campaign: Names


class CountryIs(ConditionBase):
    key = "country"
    country: Annotated[
        list[CountryCode], BeforeValidator(listify), Field(min_length=1, max_length=300)
    ]


class LanguageIs(ConditionBase):
    """The visitor's language is one of these; `fi` also takes `fi-FI`, `en-GB` only en-GB."""

    key = "language"
    language: Annotated[
        list[LanguageTag], BeforeValidator(listify), Field(min_length=1, max_length=100)
    ]


class ScoreIs(ConditionBase):
    key = "score"
    score: ScoreRange


class ScoreSegmentIs(ConditionBase):
    """The lead score's segment at capture (cold, warm, hot, as the site's scoring names them)."""

    key = "score_segment"
    score_segment: Names


CONDITION_TYPES: tuple[type[ConditionBase], ...] = (
    AllOf,
    AnyOf,
    NotOf,
    ValidationIs,
    MinValidation,
    SegmentIs,
    TagsInclude,
    CategoriesViewed,
    CartValue,
    SourceIs,
    MediumIs,
    CampaignIs,
    CountryIs,
    LanguageIs,
    ScoreIs,
    ScoreSegmentIs,
)
CONDITION_KEYS: tuple[str, ...] = tuple(t.key for t in CONDITION_TYPES)


_CONDITIONS = OneKeyConditions(
    ConditionBase,
    CONDITION_KEYS,
    several="list several in the rule's conditions (all must hold) or combine them with any: [...]",
)


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[ValidationIs, Tag("validation")]
    | Annotated[MinValidation, Tag("min_validation")]
    | Annotated[SegmentIs, Tag("segment")]
    | Annotated[TagsInclude, Tag("tags")]
    | Annotated[CategoriesViewed, Tag("categories_viewed")]
    | Annotated[CartValue, Tag("cart_value")]
    | Annotated[SourceIs, Tag("source")]
    | Annotated[MediumIs, Tag("medium")]
    | Annotated[CampaignIs, Tag("campaign")]
    | Annotated[CountryIs, Tag("country")]
    | Annotated[LanguageIs, Tag("language")]
    | Annotated[ScoreIs, Tag("score")]
    | Annotated[ScoreSegmentIs, Tag("score_segment")],
    Discriminator(_CONDITIONS.key),
    BeforeValidator(_CONDITIONS.check),
]
"""One condition: a mapping with exactly one key (see `CONDITION_KEYS`)."""

for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()


# ---- rules ------------------------------------------------------------------------------------
def _rule_id(value: object) -> object:
    if isinstance(value, str) and not _RULE_ID.match(value):
        raise ValueError(
            f"invalid id {value!r}; use lower-case letters, digits, '-' and '_' (at most 64,"
            " starting with a letter or digit), e.g. 'car-service'"
        )
    return value


RuleId = Annotated[str, BeforeValidator(_rule_id)]


class RoutingRule(_Strict):
    """One rule: when all its conditions hold, its team gets the lead."""

    id: RuleId
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    enabled: bool = True
    conditions: list[Condition] = Field(max_length=MAX_CONDITIONS)
    team: Identifier

    @field_validator("conditions")
    @classmethod
    def _some(cls, value: list[ConditionBase]) -> list[ConditionBase]:
        if not value:
            raise ValueError(
                "a rule needs at least one condition; leads that no rule takes go to the"
                " default_team"
            )
        return value


class RoutingRules(_Strict):
    """One site's routing: ordered rules (the first enabled one that holds wins) and the team
    that gets every other lead."""

    version: int = Field(default=1, ge=1)
    default_team: Identifier
    rules: list[RoutingRule] = Field(default_factory=list, max_length=MAX_ROUTING_RULES)

    @model_validator(mode="after")
    def _distinct_ids(self, info: ValidationInfo) -> RoutingRules:
        if info.context and info.context.get("located"):
            return self  # check_routing finds these itself, each at its place
        for problem in _duplicate_ids([rule.id for rule in self.rules]):
            raise ValueError(f"{problem.loc}: {problem.msg}")
        return self

    def rule(self, rule_id: str) -> RoutingRule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    def teams(self) -> list[str]:
        """Every team the document names, the default first."""
        found = [self.default_team]
        for rule in self.rules:
            if rule.team not in found:
                found.append(rule.team)
        return found


# ---- located problems -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Problem:
    """One validation error: where (`rules[0].conditions[1].cart_value`) and what."""

    loc: str
    msg: str

    def to_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}


class InvalidRouting(Invalid):
    """Routing rules (or a lead to try them on) with problems, each at its place; the edge
    answers them all (422 with `errors`)."""

    def __init__(self, problems: list[Problem], code: str = "invalid_routing_rules") -> None:
        first = problems[0] if problems else Problem("", "invalid")
        super().__init__(
            code,
            f"{first.loc}: {first.msg}" if first.loc else first.msg,
            errors=[problem.to_dict() for problem in problems],
        )
        self.problems = problems


def format_location(loc: Sequence[int | str]) -> str:
    """`('rules', 3, 'conditions', 0, 'any', 'any', 1, 'cart_value', 'cart_value', 'gte')` →
    `rules[3].conditions[0].any[1].cart_value.gte`: indexes in brackets, and the tag a
    condition union adds before its field (the same name twice) said once."""
    return _CONDITIONS.location(loc)


def problems_of(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic's errors as located problems, at most MAX_PROBLEMS."""
    found = []
    for error in exc.errors()[:MAX_PROBLEMS]:
        where = join_location(prefix, format_location(error["loc"]))
        found.append(Problem(where, error_message(error)))
    return found


def _duplicate_ids(ids: Sequence[object]) -> list[Problem]:
    seen: dict[str, int] = {}
    found = []
    for index, rule_id in enumerate(ids):
        if not isinstance(rule_id, str):
            continue
        if rule_id in seen:
            found.append(
                Problem(
                    f"rules[{index}].id",
                    f"id {rule_id!r} is already used by rules[{seen[rule_id]}]",
                )
            )
        else:
            seen[rule_id] = index
    return found


def _unknown_team(team: object, teams: Collection[str]) -> str | None:
    if not isinstance(team, str) or team in teams:
        return None
    known = sorted(teams)
    listed = f"this site's teams: {', '.join(known)}" if known else "this site has no teams yet"
    return f"unknown team {team!r}{did_you_mean(team, known)}; {listed}"


def _cross_problems(data: Mapping[str, Any], teams: Collection[str] | None) -> list[Problem]:
    """What no single field shows: ids used twice, teams the site does not have."""
    rules = data.get("rules")
    items = rules if isinstance(rules, list) else []
    found = _duplicate_ids([item.get("id") if isinstance(item, dict) else None for item in items])
    if teams is not None:
        message = _unknown_team(data.get("default_team"), teams)
        if message:
            found.append(Problem("default_team", message))
        for index, item in enumerate(items):
            if isinstance(item, dict):
                message = _unknown_team(item.get("team"), teams)
                if message:
                    found.append(Problem(f"rules[{index}].team", message))
    return found


def _rule_index(problem: Problem) -> tuple[int, int]:
    match = re.match(r"^rules\[(\d+)\]", problem.loc)
    return (1, int(match.group(1))) if match else (0, 0)


def check_routing(
    data: object, *, teams: Collection[str] | None = None
) -> tuple[RoutingRules | None, list[Problem]]:
    """A posted routing document: (rules, []) or (None, every problem, in document order).

    With `teams` (the site's teams), a rule or default naming another team is a problem. The
    version is the store's to give when it saves, so a posted one is ignored.
    """
    if not isinstance(data, dict):
        return None, [Problem("", "the routing rules must be a JSON object")]
    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        return None, [Problem("", f"the document nests deeper than {MAX_DEPTH} levels")]
    document = {key: value for key, value in data.items() if key != "version"}
    found = _cross_problems(document, teams)
    try:
        rules = RoutingRules.model_validate(document, context={"located": True})
    except ValidationError as exc:
        found = problems_of(exc) + found
        rules = None
    except (RecursionError, ValueError, TypeError) as exc:  # never a 500 for a bad document
        return None, [Problem("", f"invalid routing rules: {exc}")]
    if found:
        return None, sorted(found, key=_rule_index)[:MAX_PROBLEMS]
    return rules, []


def routing_json(rules: RoutingRules) -> dict[str, Any]:
    """A routing document as JSON (money as numbers, unset bounds left out), as the editor
    edits it; `check_routing` takes it back unchanged."""
    return rules.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_routing(data: object, *, teams: Collection[str] | None = None) -> RoutingRules:
    """`check_routing` for a use case: the rules, or InvalidRouting with every problem."""
    rules, found = check_routing(data, teams=teams)
    if rules is None:
        raise InvalidRouting(found)
    return rules


def check_facts(data: object, prefix: str = "lead") -> tuple[LeadFacts | None, list[Problem]]:
    """The tester's sample lead: (facts, []) or (None, problems located under `prefix`)."""
    if not isinstance(data, dict):
        return None, [Problem(prefix, "the lead must be a JSON object")]
    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        return None, [Problem(prefix, f"the lead nests deeper than {MAX_DEPTH} levels")]
    try:
        return LeadFacts.model_validate(data), []
    except ValidationError as exc:
        return None, problems_of(exc, prefix)
    except (RecursionError, ValueError, TypeError) as exc:
        return None, [Problem(prefix, f"invalid lead: {exc}")]


# ---- evaluation -------------------------------------------------------------------------------
CheckCode = Literal["match", "no_match", "missing", "other_currency"]


@dataclass(frozen=True, slots=True)
class Check:
    """How one condition fared for one lead: `code` and the values for the console to word
    (en/fi), and `text`, the same in English.

    `missing`: the lead lacks the fact (no cart, no score...); `other_currency`: the cart is
    in another currency than the rule counts in. `parts` are a group's conditions."""

    condition: str
    loc: str
    held: bool
    code: CheckCode
    expected: Any
    actual: Any
    text: str
    parts: tuple[Check, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "condition": self.condition,
            "loc": self.loc,
            "held": self.held,
            "code": self.code,
            "expected": self.expected,
            "actual": self.actual,
            "text": self.text,
        }
        if self.parts:
            found["parts"] = [part.to_dict() for part in self.parts]
        return found


@lru_cache(maxsize=4096)
def _wildcard(pattern: str) -> re.Pattern[str] | None:
    folded = pattern.strip().casefold()
    if "*" not in folded and "?" not in folded:
        return None
    body = re.escape(folded).replace(r"\*", ".*").replace(r"\?", ".")
    return re.compile(body, re.DOTALL)


def name_matches(pattern: str, value: str) -> bool:
    """Case-insensitive equality; `*` (any run) and `?` (one character) are wildcards."""
    compiled = _wildcard(pattern)
    folded = value.strip().casefold()
    if compiled is None:
        return pattern.strip().casefold() == folded
    return compiled.fullmatch(folded) is not None


def _first_match(patterns: Sequence[str], values: Sequence[str]) -> tuple[str, str] | None:
    for value in values:
        for pattern in patterns:
            if name_matches(pattern, value):
                return pattern, value
    return None


def _quoted(values: Iterable[str]) -> str:
    return ", ".join(repr(value) for value in values)


def _names_check(
    key: str, loc: str, patterns: list[str], values: list[str], what: str, whats: str
) -> Check:
    """A condition over names: one of the lead's `values` matches one of the `patterns`."""
    if not values:
        return Check(key, loc, False, "missing", patterns, [], f"no {what} known")
    hit = _first_match(patterns, values)
    if hit:
        pattern, value = hit
        shown = (
            f"{what} {value!r}"
            if pattern.casefold() == value.casefold()
            else (f"{what} {value!r} matches {pattern!r}")
        )
        return Check(key, loc, True, "match", patterns, values, shown)
    return Check(
        key,
        loc,
        False,
        "no_match",
        patterns,
        values,
        f"{whats} {_quoted(values)}, none of {_quoted(patterns)}",
    )


def _one_name_check(key: str, loc: str, patterns: list[str], value: str | None, what: str) -> Check:
    if value is None:
        return Check(key, loc, False, "missing", patterns, None, f"no {what} known")
    hit = _first_match(patterns, [value])
    if hit:
        pattern, _ = hit
        shown = f"{what} {value!r}" + (
            "" if pattern.casefold() == value.casefold() else (f" matches {pattern!r}")
        )
        return Check(key, loc, True, "match", patterns, value, shown)
    return Check(
        key, loc, False, "no_match", patterns, value, f"{what} {value!r}, not {_quoted(patterns)}"
    )


def _language_holds(wanted: str, language: str) -> bool:
    return language == wanted or language.startswith(wanted + "-")


def _money(amount: Decimal, currency: str | None) -> str:
    return format_money(amount, currency) if currency else f"{amount:f}"


def _held(key: str, loc: str, held: bool, expected: Any, actual: Any, text: str) -> Check:
    """A leaf condition's outcome."""
    return Check(key, loc, held, "match" if held else "no_match", expected, actual, text)


def _check(condition: ConditionBase, facts: LeadFacts, loc: str) -> Check:
    """How `condition` fares for `facts`; a group evaluates all its parts (for the tester)."""
    key = condition.key
    if isinstance(condition, AllOf | AnyOf):
        items = condition.all if isinstance(condition, AllOf) else condition.any
        parts = tuple(_check(item, facts, f"{loc}.{key}[{i}]") for i, item in enumerate(items))
        held_count = sum(part.held for part in parts)
        if isinstance(condition, AllOf):
            held = held_count == len(parts)
            text = (
                f"all {len(parts)} hold"
                if held
                else f"{len(parts) - held_count} of {len(parts)} fail: "
                + "; ".join(part.text for part in parts if not part.held)
            )
        else:
            held = held_count > 0
            text = (
                "; ".join(part.text for part in parts if part.held)
                if held
                else f"none of {len(parts)} holds: " + "; ".join(part.text for part in parts)
            )
        code: CheckCode = "match" if held else "no_match"
        return Check(key, loc, held, code, None, held_count, text, parts)
    if isinstance(condition, NotOf):
        inner = _check(condition.not_, facts, f"{loc}.not")
        held = not inner.held
        code = "match" if held else "no_match"
        return Check(key, loc, held, code, None, None, f"not ({inner.text})", (inner,))
    if isinstance(condition, ValidationIs):
        wanted = condition.validation
        held = facts.validation in wanted
        text = f"validated as {facts.validation}" + ("" if held else f", not {' or '.join(wanted)}")
        return _held(key, loc, held, wanted, facts.validation, text)
    if isinstance(condition, MinValidation):
        wanted_level = condition.min_validation
        rank = VALIDATION_LEVELS.index
        held = rank(facts.validation) >= rank(wanted_level)
        text = f"validated as {facts.validation}, " + (
            f"at least {wanted_level}" if held else f"below {wanted_level}"
        )
        return _held(key, loc, held, wanted_level, facts.validation, text)
    if isinstance(condition, SegmentIs):
        held = facts.segment in condition.segment
        text = f"segment {facts.segment}" + (
            "" if held else f", not {' or '.join(condition.segment)}"
        )
        return _held(key, loc, held, condition.segment, facts.segment, text)
    if isinstance(condition, TagsInclude):
        return _names_check(key, loc, condition.tags, facts.tags, "tag", "tags")
    if isinstance(condition, CategoriesViewed):
        return _names_check(
            key,
            loc,
            condition.categories_viewed,
            facts.categories_viewed,
            "viewed category",
            "viewed categories",
        )
    if isinstance(condition, CartValue):
        wanted_range = condition.cart_value
        expected = wanted_range.expected()
        if facts.cart_value is None:
            return Check(key, loc, False, "missing", expected, None, "no cart known")
        actual = {"value": float(facts.cart_value), "currency": facts.currency}
        rule_currency = wanted_range.currency
        if rule_currency and facts.cart_value != 0 and facts.currency != rule_currency:
            where = f"in {facts.currency}" if facts.currency else "in an unknown currency"
            return Check(
                key,
                loc,
                False,
                "other_currency",
                expected,
                actual,
                f"the cart is {where}; the rule counts in {rule_currency}",
            )
        shown_currency = rule_currency or facts.currency
        held = wanted_range.holds(facts.cart_value)
        bounds = wanted_range.text(lambda v: _money(v, shown_currency))
        text = f"cart {_money(facts.cart_value, shown_currency)}" + (
            f", {bounds}" if held else f", not {bounds}"
        )
        return _held(key, loc, held, expected, actual, text)
    if isinstance(condition, SourceIs):
        return _one_name_check(key, loc, condition.source, facts.source, "source")
    if isinstance(condition, MediumIs):
        return _one_name_check(key, loc, condition.medium, facts.medium, "medium")
    if isinstance(condition, CampaignIs):
        return _one_name_check(key, loc, condition.campaign, facts.campaign, "campaign")
    if isinstance(condition, CountryIs):
        if facts.country is None:
            return Check(key, loc, False, "missing", condition.country, None, "no country known")
        held = facts.country in condition.country
        text = f"country {facts.country}" + (
            "" if held else f", not {' or '.join(condition.country)}"
        )
        return _held(key, loc, held, condition.country, facts.country, text)
    if isinstance(condition, LanguageIs):
        wanted_languages = condition.language
        if facts.language is None:
            return Check(key, loc, False, "missing", wanted_languages, None, "no language known")
        held = any(_language_holds(wanted, facts.language) for wanted in wanted_languages)
        text = f"language {facts.language}" + (
            "" if held else f", not {' or '.join(wanted_languages)}"
        )
        return _held(key, loc, held, wanted_languages, facts.language, text)
    if isinstance(condition, ScoreIs):
        expected = condition.score.expected()
        if facts.score is None:
            return Check(key, loc, False, "missing", expected, None, "no score known")
        held = condition.score.holds(facts.score)
        bounds = condition.score.text()
        text = f"score {_number(facts.score)}, " + (bounds if held else f"not {bounds}")
        return _held(key, loc, held, expected, facts.score, text)
    if isinstance(condition, ScoreSegmentIs):
        return _one_name_check(
            key, loc, condition.score_segment, facts.score_segment, "score segment"
        )
    raise TypeError(f"no evaluation for condition {key!r}")  # a new condition type without one


def _rule_checks(index: int, rule: RoutingRule, facts: LeadFacts, *, full: bool) -> list[Check]:
    """The rule's conditions in order; without `full`, up to the first that fails."""
    checks = []
    for i, condition in enumerate(rule.conditions):
        check = _check(condition, facts, f"rules[{index}].conditions[{i}]")
        checks.append(check)
        if not check.held and not full:
            break
    return checks


@dataclass(frozen=True, slots=True)
class Decision:
    """The team that gets the lead, the rule that chose it (None: the default team) and why."""

    team: str
    rule_id: str | None
    why: str
    checks: tuple[Check, ...] = ()  # the chosen rule's conditions, each of which held

    def to_dict(self) -> dict[str, Any]:
        return {
            "team": self.team,
            "rule_id": self.rule_id,
            "why": self.why,
            "checks": [check.to_dict() for check in self.checks],
        }


def _chosen(rule: RoutingRule, checks: Sequence[Check]) -> Decision:
    reasons = "; ".join(check.text for check in checks)
    return Decision(rule.team, rule.id, f"rule {rule.id!r} ({rule.name}): {reasons}", tuple(checks))


def _default(rules: RoutingRules) -> Decision:
    why = (
        f"no enabled rule holds; the default team {rules.default_team!r}"
        if rules.rules
        else f"no rules; the default team {rules.default_team!r}"
    )
    return Decision(rules.default_team, None, why)


def route(rules: RoutingRules, facts: LeadFacts) -> Decision:
    """The first enabled rule whose conditions all hold names the team; else the default."""
    for index, rule in enumerate(rules.rules):
        if not rule.enabled:
            continue
        checks = _rule_checks(index, rule, facts, full=False)
        if all(check.held for check in checks):
            return _chosen(rule, checks)
    return _default(rules)


RuleOutcome = Literal["chosen", "shadowed", "failed", "disabled"]


@dataclass(frozen=True, slots=True)
class RuleTrace:
    """One rule in the tester: `chosen` (it wins), `shadowed` (it holds, but an earlier rule
    won), `failed` (a condition does not hold) or `disabled`; every condition checked."""

    index: int
    rule_id: str
    name: str
    team: str
    outcome: RuleOutcome
    checks: tuple[Check, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "rule_id": self.rule_id,
            "name": self.name,
            "team": self.team,
            "outcome": self.outcome,
            "checks": [check.to_dict() for check in self.checks],
        }


@dataclass(frozen=True, slots=True)
class Explanation:
    """The admin's "which team would get this lead": the decision and every rule's trace."""

    decision: Decision
    rules: tuple[RuleTrace, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.to_dict(),
            "rules": [trace.to_dict() for trace in self.rules],
        }


def explain(rules: RoutingRules, facts: LeadFacts) -> Explanation:
    """`route` with its workings: every rule, every condition, held or not and why (disabled
    rules too, so an admin sees what one would do once enabled)."""
    decision: Decision | None = None
    traces = []
    for index, rule in enumerate(rules.rules):
        checks = _rule_checks(index, rule, facts, full=True)
        holds = all(check.held for check in checks)
        outcome: RuleOutcome
        if not rule.enabled:
            outcome = "disabled"
        elif not holds:
            outcome = "failed"
        elif decision is None:
            outcome = "chosen"
            decision = _chosen(rule, checks)
        else:
            outcome = "shadowed"
        traces.append(RuleTrace(index, rule.id, rule.name, rule.team, outcome, tuple(checks)))
    return Explanation(decision or _default(rules), tuple(traces))
