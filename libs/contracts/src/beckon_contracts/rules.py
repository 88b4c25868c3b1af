"""Engagement rules per site, as data: what the `rules.config` topic carries.

A store edits rules as YAML (CLI) or in the console; both publish a `SiteRules` record and the
triggers service compiles it. Everything a rule author can get wrong is rejected here, with an
error that names the place (`rules[3].when.all[1].cart_value`) and says what would be valid,
so a bad rule never reaches the stream processor. Conditions are YAML-friendly mappings with
exactly one key; `all` / `any` / `not` nest freely.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from beckon_contracts.conditions import (
    OneKeyConditions,
    did_you_mean,
    error_message,
    join_location,
    listify,
)
from beckon_contracts.envelope import Identifier, SiteId
from beckon_contracts.scoring import ScoringConfig
from beckon_contracts.tracking import TRACKING_EVENT_TYPES

MAX_RULES_PER_SITE = 200

# Variables a message template may use, as `{name}`. `agent_name` is filled in when an agent
# is chosen (admission); the others come from the visitor's state.
TEMPLATE_VARIABLES: tuple[str, ...] = (
    "product_name",
    "product_category",
    "product_price",
    "cart_value",
    "cart_items",
    "currency",
    "page_title",
    "visitor_name",
    "agent_name",
)
PAGE_TYPES: tuple[str, ...] = (
    "home",
    "category",
    "product",
    "search",
    "cart",
    "checkout",
    "confirmation",
    "content",
    "other",
)
COMPARE_OPERATORS: tuple[str, ...] = ("gte", "gt", "lte", "lt")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- durations ------------------------------------------------------------------------------
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([dhms])", re.IGNORECASE)
_DURATION_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?\s*[dhms]\s*)+", re.IGNORECASE)
_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or a string like "20s", "3m", "1h30m", "2d" (a bare "90" is 90 s)."""
    if isinstance(value, bool):
        raise ValueError("a duration must be seconds or a string like '20s', '3m', '1h30m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            if not _DURATION_WHOLE.fullmatch(text):
                raise ValueError(
                    f"invalid duration {value!r}; use seconds or e.g. '20s', '3m', '1h30m', '2d'"
                ) from None
            seconds = sum(
                float(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(text)
            )
    else:
        raise ValueError("a duration must be seconds or a string like '20s', '3m', '1h30m'")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("a duration must be a finite, non-negative number of seconds")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*[dhmsDHMS]\s*)+$"},
            ],
            "description": "Seconds, or a string like '20s', '3m', '1h30m', '2d'",
        },
        mode="validation",
    ),
]
"""Seconds (float) in Python and on the wire; strings like "3m" are accepted on input."""


def _choices(allowed: Sequence[str], what: str) -> Any:
    def check(values: list[str]) -> list[str]:
        for value in values:
            if value not in allowed:
                raise ValueError(
                    f"unknown {what} {value!r}{did_you_mean(value, allowed)};"
                    f" use one of {', '.join(allowed)}"
                )
        return values

    return check


_ONE_OR_MANY_SCHEMA = WithJsonSchema(
    {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
    mode="validation",
)
Names = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
    BeforeValidator(listify),
    Field(min_length=1, max_length=100),
    _ONE_OR_MANY_SCHEMA,
]
"""One name or a list of names (matched case-insensitively)."""


# ---- weekly business hours ------------------------------------------------------------------
_TIME_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_time_range(text: str) -> tuple[int, int]:
    """Minutes since midnight [start, end) of "HH:MM-HH:MM"; end may be 24:00."""
    match = _TIME_RANGE.match(text)
    if not match:
        raise ValueError(f"invalid opening hours {text!r}; write them like '09:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"invalid time in {text!r}; hours are 00-23 (24:00 only as an end)")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start:
        raise ValueError(
            f"opening hours {text!r} end before they start; split overnight hours over two"
            " days, e.g. mon: ['22:00-24:00'] and tue: ['00:00-02:00']"
        )
    return start, end


def _normalize_range(text: str) -> str:
    start, end = parse_time_range(text)
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


TimeRanges = Annotated[
    list[
        Annotated[str, BeforeValidator(lambda v: _normalize_range(v) if isinstance(v, str) else v)]
    ],
    BeforeValidator(listify),
    Field(max_length=12),
]


class BusinessHours(_Strict):
    """When a team answers, in the site's timezone. A day left out is closed all day."""

    mon: TimeRanges = Field(default_factory=list)
    tue: TimeRanges = Field(default_factory=list)
    wed: TimeRanges = Field(default_factory=list)
    thu: TimeRanges = Field(default_factory=list)
    fri: TimeRanges = Field(default_factory=list)
    sat: TimeRanges = Field(default_factory=list)
    sun: TimeRanges = Field(default_factory=list)
    closed_dates: list[date] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _opens_some_day(self) -> BusinessHours:
        if not any(self.day(name) for name in WEEKDAYS):
            raise ValueError(
                "business hours open on no day; give e.g. mon: ['09:00-17:00'],"
                " or disable the rule instead"
            )
        return self

    def day(self, weekday: str) -> list[str]:
        """The ranges of one day ("mon".."sun")."""
        ranges: list[str] = getattr(self, weekday)
        return ranges


# ---- comparisons and patterns ---------------------------------------------------------------
def _check_compare(value: object) -> object:
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, dict):
        raise ValueError(
            f"expected a comparison like {{gte: 100}}, got {value!r};"
            f" use one of {', '.join(COMPARE_OPERATORS)}"
        )
    if not value:
        raise ValueError(f"empty comparison; use one of {', '.join(COMPARE_OPERATORS)}")
    for key in value:
        if key not in COMPARE_OPERATORS:
            raise ValueError(f"unknown operator {key!r}; use one of {', '.join(COMPARE_OPERATORS)}")
    return value


class _CompareBase(_Strict):
    _check = model_validator(mode="before")(_check_compare)

    def bounds(self) -> Iterator[tuple[str, float]]:
        """The operators that are set, with their values."""
        for op in COMPARE_OPERATORS:
            value = getattr(self, op)
            if value is not None:
                yield op, float(value)


class Compare(_CompareBase):
    """A number compared with bounds, all of which must hold: {gte: 100} or {gt: 1, lte: 5}."""

    gte: float | None = Field(default=None, allow_inf_nan=False)
    gt: float | None = Field(default=None, allow_inf_nan=False)
    lte: float | None = Field(default=None, allow_inf_nan=False)
    lt: float | None = Field(default=None, allow_inf_nan=False)


class DurationCompare(_CompareBase):
    """A time compared with durations: {gte: "3m"}."""

    gte: Duration | None = None
    gt: Duration | None = None
    lte: Duration | None = None
    lt: Duration | None = None


PATTERN_KINDS: tuple[str, ...] = ("glob", "regex", "contains")


class Pattern(_Strict):
    """A text pattern: {glob: "*/sale/*"}, {regex: "..."} or {contains: "..."}; a plain
    string is a glob. Globs and `contains` ignore case; a regex is used as written."""

    glob: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    regex: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    contains: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, value: object) -> object:
        if isinstance(value, str):
            return {"glob": value}
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
            unknown = [k for k in value if k not in PATTERN_KINDS]
            if unknown:
                raise ValueError(
                    f"unknown pattern kind {unknown[0]!r}; use one of {', '.join(PATTERN_KINDS)}"
                    " (or a plain string for a glob)"
                )
            if len(value) != 1:
                raise ValueError(f"a pattern has exactly one of {', '.join(PATTERN_KINDS)}")
        return value

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value


# ---- conditions -----------------------------------------------------------------------------
class ConditionBase(_Strict):
    """A condition; `key` is the one mapping key that names it in YAML/JSON."""

    key: ClassVar[str]


class AllOf(ConditionBase):
    key = "all"
    all: list[Condition] = Field(min_length=1, max_length=100)


class AnyOf(ConditionBase):
    key = "any"
    any: list[Condition] = Field(min_length=1, max_length=100)


class NotOf(ConditionBase):
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, serialize_by_alias=True
    )
    key = "not"
    not_: Condition = Field(alias="not")


class UrlIs(ConditionBase):
    """The current page's URL or path matches."""

    key = "url"
    url: Pattern


class PageTypeIs(ConditionBase):
    key = "page_type"
    page_type: Names

    _check = field_validator("page_type")(_choices(PAGE_TYPES, "page type"))


class CategoryIs(ConditionBase):
    """The current product's category is one of these."""

    key = "category"
    category: Names


class CategoriesViewed(ConditionBase):
    """Any product of one of these categories was viewed (state.categories)."""

    key = "categories_viewed"
    categories_viewed: Names


class CartValue(ConditionBase):
    key = "cart_value"
    cart_value: Compare


class CartItems(ConditionBase):
    key = "cart_items"
    cart_items: Compare


class ProductViews(ConditionBase):
    """How many times the current product was viewed in the window (this view included)."""

    key = "product_views"
    product_views: Compare


class TimeOnSite(ConditionBase):
    key = "time_on_site"
    time_on_site: DurationCompare


class TimeOnPage(ConditionBase):
    key = "time_on_page"
    time_on_page: DurationCompare


class SourceIs(ConditionBase):
    key = "source"
    source: Names


class MediumIs(ConditionBase):
    key = "medium"
    medium: Names


class CampaignIs(ConditionBase):
    key = "campaign"
    campaign: Names


class ReferrerIs(ConditionBase):
    """The external referrer the session arrived from matches."""

    key = "referrer"
    referrer: Pattern


class FromEmail(ConditionBase):
    key = "from_email"
    from_email: bool


class Returning(ConditionBase):
    """true: the visitor had an earlier session; false: first visit."""

    key = "returning"
    returning: bool


class ScoreIs(ConditionBase):
    key = "score"
    score: Compare


class SegmentIs(ConditionBase):
    key = "segment"
    segment: Names


class SeenPrice(ConditionBase):
    key = "seen_price"
    seen_price: bool


class CheckoutIdle(ConditionBase):
    key = "checkout_idle"
    checkout_idle: DurationCompare


class EventIs(ConditionBase):
    """The current event's type."""

    key = "event"
    event: Names

    _check = field_validator("event")(_choices(TRACKING_EVENT_TYPES, "event type"))


class CustomEventIs(ConditionBase):
    """The current event is a custom event with one of these names."""

    key = "custom_event"
    custom_event: Names


class OrdersIs(ConditionBase):
    key = "orders"
    orders: Compare


class Identified(ConditionBase):
    key = "identified"
    identified: bool


CONDITION_TYPES: tuple[type[ConditionBase], ...] = (
    AllOf,
    AnyOf,
    NotOf,
    UrlIs,
    PageTypeIs,
    CategoryIs,
    CategoriesViewed,
    CartValue,
    CartItems,
    ProductViews,
    TimeOnSite,
    TimeOnPage,
    SourceIs,
    MediumIs,
    CampaignIs,
    ReferrerIs,
    FromEmail,
    Returning,
    ScoreIs,
    SegmentIs,
    SeenPrice,
    CheckoutIdle,
    EventIs,
    CustomEventIs,
    OrdersIs,
    Identified,
)
CONDITION_KEYS: tuple[str, ...] = tuple(t.key for t in CONDITION_TYPES)


_CONDITIONS = OneKeyConditions(
    ConditionBase, CONDITION_KEYS, several="combine several with all: [...] or any: [...]"
)


Condition = Annotated[
    Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")]
    | Annotated[UrlIs, Tag("url")]
    | Annotated[PageTypeIs, Tag("page_type")]
    | Annotated[CategoryIs, Tag("category")]
    | Annotated[CategoriesViewed, Tag("categories_viewed")]
    | Annotated[CartValue, Tag("cart_value")]
    | Annotated[CartItems, Tag("cart_items")]
    | Annotated[ProductViews, Tag("product_views")]
    | Annotated[TimeOnSite, Tag("time_on_site")]
    | Annotated[TimeOnPage, Tag("time_on_page")]
    | Annotated[SourceIs, Tag("source")]
    | Annotated[MediumIs, Tag("medium")]
    | Annotated[CampaignIs, Tag("campaign")]
    | Annotated[ReferrerIs, Tag("referrer")]
    | Annotated[FromEmail, Tag("from_email")]
    | Annotated[Returning, Tag("returning")]
    | Annotated[ScoreIs, Tag("score")]
    | Annotated[SegmentIs, Tag("segment")]
    | Annotated[SeenPrice, Tag("seen_price")]
    | Annotated[CheckoutIdle, Tag("checkout_idle")]
    | Annotated[EventIs, Tag("event")]
    | Annotated[CustomEventIs, Tag("custom_event")]
    | Annotated[OrdersIs, Tag("orders")]
    | Annotated[Identified, Tag("identified")],
    Discriminator(_CONDITIONS.key),
    BeforeValidator(_CONDITIONS.check),
]
"""One condition: a mapping with exactly one key (see `CONDITION_KEYS`)."""

for _model in (AllOf, AnyOf, NotOf):
    _model.model_rebuild()


# ---- message templates ----------------------------------------------------------------------
_TEMPLATE_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def template_variables(template: str) -> tuple[str, ...]:
    """The variables a template uses, in order; `{{` and `}}` are literal braces.

    Raises ValueError for an unknown variable or a stray brace.
    """
    used: list[str] = []
    for match in _TEMPLATE_TOKEN.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise ValueError(
                f"unmatched {token!r} at position {match.start()}; write {token * 2} for a"
                " literal brace"
            )
        if name not in TEMPLATE_VARIABLES:
            raise ValueError(
                f"unknown variable {{{name}}}{did_you_mean(name, TEMPLATE_VARIABLES)};"
                f" known variables: {', '.join(TEMPLATE_VARIABLES)}"
            )
        if name not in used:
            used.append(name)
    return tuple(used)


_RENDER_TOKEN = re.compile(r"\{\{|\}\}|\{([a-z_]+)\}")
_RENDER_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_VALUE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class _MissingVariable(Exception):
    pass


def render_template(template: str, variables: dict[str, str]) -> str | None:
    """The message with its variables filled in, or None if one it uses has no value.

    `{{` and `}}` are literal braces; control characters are removed (values come from store
    pages). The triggers worker renders invitations this way (`triggers.domain.templates`),
    and the console's rules editor previews them with it.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # "{{" or "}}", a literal brace
            return match.group(0)[0]
        value = variables.get(name)
        if value is None:
            raise _MissingVariable
        return _VALUE_CONTROL.sub(" ", value)

    try:
        text = _RENDER_TOKEN.sub(fill, template)
    except _MissingVariable:
        return None
    return _RENDER_CONTROL.sub("", text).strip()


# ---- rules ----------------------------------------------------------------------------------
RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class Limits(_Strict):
    """How often one visitor may be invited (per-visitor), and how often a rule may fire."""

    once_per: Literal["session", "visitor"] | None = Field(
        default="session", description="Fire at most once per session / ever per visitor"
    )
    cooldown: Duration = Field(
        default=600.0,
        description="Minimum time since this visitor's previous invitation from any rule",
    )
    max_per_hour: int | None = Field(
        default=None, ge=1, description="This rule's invitations per hour, site-wide"
    )


class Rule(_Strict):
    """One engagement rule: when it fires, what it says, who answers."""

    id: RuleId
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    enabled: bool = True
    priority: int = Field(default=0, description="Higher wins when several rules match")
    default: bool = Field(
        default=False,
        description="The catch-all rule ('offer chat after 2-3 min'), quiet when agents are busy",
    )
    when: Condition
    message: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="Plain-text template with {variables}; see TEMPLATE_VARIABLES"
    )
    team: Identifier = "sales"
    limits: Limits = Field(default_factory=Limits)
    business_hours: BusinessHours | None = Field(
        default=None, description="None: the site's business hours"
    )
    holdout_percent: float = Field(
        default=10.0, ge=0, le=100, description="Share of matching visitors held out (control)"
    )
    expires_after: Duration = Field(
        default=90.0, gt=0, description="How long a shown invitation stays up"
    )

    @field_validator("message")
    @classmethod
    def _known_variables(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is blank; say something contextual")
        template_variables(value)
        return value

    @property
    def variables(self) -> tuple[str, ...]:
        return template_variables(self.message)


def _check_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name like 'Europe/Paris' or 'UTC'"
        ) from None
    return name


class SiteRules(_Strict):
    """All of one site's rules and the settings they share (one `rules.config` record)."""

    site_id: SiteId
    version: int = Field(default=1, ge=1)
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    min_browsing: Duration = Field(
        default=20.0, description="Nothing fires before this much time on site"
    )
    business_hours: BusinessHours | None = Field(default=None, description="None: always open")
    max_invitations_per_hour: int | None = Field(default=None, ge=1, description="Site-wide cap")
    acceptance_rate: float = Field(
        default=0.3, gt=0, le=1, description="Expected share of invitations accepted"
    )
    busy_above: float = Field(
        default=0.5, ge=0, le=1, description="Team load above which the default rule goes quiet"
    )
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    rules: list[Rule] = Field(default_factory=list, max_length=MAX_RULES_PER_SITE)

    _timezone = field_validator("timezone")(_check_timezone)

    @model_validator(mode="after")
    def _consistent(self) -> SiteRules:
        seen: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                raise ValueError(
                    f"rules[{index}]: id {rule.id!r} is already used by rules[{seen[rule.id]}]"
                )
            seen[rule.id] = index
        defaults = [rule.id for rule in self.rules if rule.default]
        if len(defaults) > 1:
            raise ValueError(
                f"at most one rule may be the default rule; found {', '.join(defaults)}"
            )
        return self

    def rule(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)


# ---- readable errors ------------------------------------------------------------------------
def format_location(loc: Sequence[int | str]) -> str:
    """`('rules', 3, 'when', 'all', 'all', 1, 'cart_value', 'cart_value')` →
    `rules[3].when.all[1].cart_value`: list indexes in brackets, and the tag a condition
    union adds before its field (the same name twice) said once."""
    return _CONDITIONS.location(loc)


def describe_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    """One human-readable line per validation error: `location: message`."""
    lines = []
    for error in exc.errors():
        message = error_message(error)
        where = join_location(prefix, format_location(error["loc"]))
        lines.append(f"{where}: {message}" if where else message)
    return lines
