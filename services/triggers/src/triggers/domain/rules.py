"""Compiled engagement rules: which rules may fire for this visitor, on this event.

Rules arrive as data (`beckon_contracts.rules.SiteRules`) and are evaluated on every tracking
event of every visitor, so each condition tree is compiled once into nested closures with
patterns precompiled, and `evaluate` does the cheap work first: the site-wide minimum
browsing time, then only the rules that can fire on this event type, then each rule's
condition; schedules, per-visitor limits and template variables are looked at only for rules
whose condition holds (rare). Everything here is pure: `now` is the event's time.

What this module does NOT decide: capacity, the holdout arm and site-wide caps. Admission
does, with `in_holdout`, `HourlyCounter` and (again, authoritatively) `visitor_limit_reason`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from beckon_contracts.rules import (
    AllOf,
    AnyOf,
    CampaignIs,
    CartItems,
    CartValue,
    CategoriesViewed,
    CategoryIs,
    CheckoutIdle,
    ConditionBase,
    CustomEventIs,
    EventIs,
    FromEmail,
    Identified,
    MediumIs,
    NotOf,
    OrdersIs,
    PageTypeIs,
    Pattern,
    ProductViews,
    ReferrerIs,
    Returning,
    Rule,
    ScoreIs,
    SeenPrice,
    SegmentIs,
    SiteRules,
    SourceIs,
    TimeOnPage,
    TimeOnSite,
    UrlIs,
    template_variables,
)

from triggers.domain.observation import Observation
from triggers.domain.schedule import OpenAt, compile_schedule
from triggers.domain.state import VisitorState
from triggers.domain.templates import LATE_VARIABLES, render, variables_for

Predicate = Callable[[VisitorState, Observation, float], bool]
Getter = Callable[[VisitorState, Observation, float], Any]


# ---- conditions -----------------------------------------------------------------------------
# One closure per operator (no `operator.ge` call in between): the leaves run on every event.
def _ge(get: Getter, limit: float) -> Predicate:
    return lambda s, o, n: get(s, o, n) >= limit


def _gt(get: Getter, limit: float) -> Predicate:
    return lambda s, o, n: get(s, o, n) > limit


def _le(get: Getter, limit: float) -> Predicate:
    return lambda s, o, n: get(s, o, n) <= limit


def _lt(get: Getter, limit: float) -> Predicate:
    return lambda s, o, n: get(s, o, n) < limit


_BOUND = {"gte": _ge, "gt": _gt, "lte": _le, "lt": _lt}
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "gte": operator.ge,
    "gt": operator.gt,
    "lte": operator.le,
    "lt": operator.lt,
}


def _compare(get: Getter, bounds: Iterable[tuple[str, float]]) -> Predicate:
    checks = tuple(bounds)
    if len(checks) == 1:
        ((op, limit),) = checks
        return _BOUND[op](get, limit)
    ops = tuple((_OPERATORS[op], limit) for op, limit in checks)

    def within(s: VisitorState, o: Observation, n: float) -> bool:
        value = get(s, o, n)
        for op, limit in ops:  # noqa: SIM110 - a loop: no generator per call on the hot path
            if not op(value, limit):
                return False
        return True

    return within


def _all_of(parts: Sequence[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda s, o, n: a(s, o, n) and b(s, o, n)
    if len(parts) == 3:
        a, b, c = parts
        return lambda s, o, n: a(s, o, n) and b(s, o, n) and c(s, o, n)

    def every(s: VisitorState, o: Observation, n: float) -> bool:
        for part in parts:  # noqa: SIM110 - a loop: no generator per call on the hot path
            if not part(s, o, n):
                return False
        return True

    return every


def _any_of(parts: Sequence[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda s, o, n: a(s, o, n) or b(s, o, n)

    def some(s: VisitorState, o: Observation, n: float) -> bool:
        for part in parts:  # noqa: SIM110 - a loop: no generator per call on the hot path
            if part(s, o, n):
                return True
        return False

    return some


_CHEAP = (PageTypeIs, EventIs, FromEmail, Returning, SeenPrice, Identified, SegmentIs, SourceIs)
_PATTERNS = (UrlIs, ReferrerIs)


def cost(cond: ConditionBase) -> int:
    """A rough relative cost, to try cheap children of `all` / `any` first (pure conditions,
    so the order changes only the time taken, never the result)."""
    if isinstance(cond, AllOf | AnyOf):
        return 1 + sum(cost(child) for child in (cond.all if isinstance(cond, AllOf) else cond.any))
    if isinstance(cond, NotOf):
        return cost(cond.not_)
    if isinstance(cond, _CHEAP):
        return 1
    if isinstance(cond, _PATTERNS):
        return 4
    return 2


def _compiled_children(children: Sequence[ConditionBase]) -> list[Predicate]:
    return [compile_condition(child) for child in sorted(children, key=cost)]


def _text_matcher(pattern: Pattern) -> Callable[[str | None], bool]:
    """Globs and `contains` ignore case; a regex is searched as written."""
    if pattern.glob is not None:
        match = re.compile(fnmatch.translate(pattern.glob), re.IGNORECASE | re.DOTALL).match
        return lambda text: text is not None and match(text) is not None
    if pattern.regex is not None:
        search = re.compile(pattern.regex).search
        return lambda text: text is not None and search(text) is not None
    needle = (pattern.contains or "").casefold()
    return lambda text: text is not None and needle in text.casefold()


def _one_of(get: Getter, names: Iterable[str]) -> Predicate:
    wanted = frozenset(name.strip().casefold() for name in names)

    def check(s: VisitorState, o: Observation, n: float) -> bool:
        value = get(s, o, n)
        return value is not None and value.casefold() in wanted

    return check


def _product_category(s: VisitorState, o: Observation, n: float) -> str | None:
    product = s.current_product
    category = product.get("category") if product else None
    return category if isinstance(category, str) else None


def _categories_viewed(names: Iterable[str]) -> Predicate:
    wanted = frozenset(name.strip().casefold() for name in names)
    return lambda s, o, n: any(c.casefold() in wanted for c in s.categories)


def _custom_event(names: Iterable[str]) -> Predicate:
    wanted = frozenset(name.strip().casefold() for name in names)
    return lambda s, o, n: (
        o.type == "custom" and o.custom_event is not None and o.custom_event.casefold() in wanted
    )


def _url(pattern: Pattern) -> Predicate:
    matches = _text_matcher(pattern)
    return lambda s, o, n: matches(s.url or o.url) or matches(s.path or o.path)


def compile_condition(cond: ConditionBase) -> Predicate:
    """A function `(state, observation, now) -> bool` for a condition tree.

    `state` is the visitor's state with the observation already applied; `now` is the
    event's time (or a later tick). `all` / `any` stop at the first deciding child.
    """
    if isinstance(cond, AllOf):
        return _all_of(_compiled_children(cond.all))
    if isinstance(cond, AnyOf):
        return _any_of(_compiled_children(cond.any))
    if isinstance(cond, NotOf):
        inner = compile_condition(cond.not_)
        return lambda s, o, n: not inner(s, o, n)
    if isinstance(cond, UrlIs):
        return _url(cond.url)
    if isinstance(cond, ReferrerIs):
        referrer = _text_matcher(cond.referrer)
        return lambda s, o, n: referrer(s.referrer)
    if isinstance(cond, PageTypeIs):
        page_types = frozenset(cond.page_type)
        return lambda s, o, n: s.page_type in page_types
    if isinstance(cond, CategoryIs):
        return _one_of(_product_category, cond.category)
    if isinstance(cond, CategoriesViewed):
        return _categories_viewed(cond.categories_viewed)
    if isinstance(cond, CartValue):
        return _compare(lambda s, o, n: s.cart_value, cond.cart_value.bounds())
    if isinstance(cond, CartItems):
        return _compare(lambda s, o, n: s.cart_items, cond.cart_items.bounds())
    if isinstance(cond, ProductViews):
        return _compare(lambda s, o, n: s.current_product_views, cond.product_views.bounds())
    if isinstance(cond, TimeOnSite):
        return _compare(lambda s, o, n: s.time_on_site(n), cond.time_on_site.bounds())
    if isinstance(cond, TimeOnPage):
        return _compare(lambda s, o, n: s.time_on_page(n), cond.time_on_page.bounds())
    if isinstance(cond, CheckoutIdle):
        return _compare(lambda s, o, n: s.checkout_idle(n), cond.checkout_idle.bounds())
    if isinstance(cond, ScoreIs):
        return _compare(lambda s, o, n: s.score, cond.score.bounds())
    if isinstance(cond, OrdersIs):
        return _compare(lambda s, o, n: s.orders, cond.orders.bounds())
    if isinstance(cond, SourceIs):
        return _one_of(lambda s, o, n: s.source, cond.source)
    if isinstance(cond, MediumIs):
        return _one_of(lambda s, o, n: s.medium, cond.medium)
    if isinstance(cond, CampaignIs):
        return _one_of(lambda s, o, n: s.campaign, cond.campaign)
    if isinstance(cond, SegmentIs):
        return _one_of(lambda s, o, n: s.segment, cond.segment)
    if isinstance(cond, EventIs):
        events = frozenset(cond.event)
        return lambda s, o, n: o.type in events
    if isinstance(cond, CustomEventIs):
        return _custom_event(cond.custom_event)
    if isinstance(cond, FromEmail):
        want = cond.from_email
        return lambda s, o, n: s.from_email is want
    if isinstance(cond, Returning):
        want = cond.returning
        return lambda s, o, n: s.returning is want
    if isinstance(cond, SeenPrice):
        want = cond.seen_price
        return lambda s, o, n: s.seen_price is want
    if isinstance(cond, Identified):
        want = cond.identified
        return lambda s, o, n: s.identified is want
    raise TypeError(f"no evaluator for condition {type(cond).__name__}")


def event_types(cond: ConditionBase) -> frozenset[str] | None:
    """The event types on which a condition can hold, or None for "any" (an index for
    `evaluate`: a rule about `event: cart_updated` is skipped on heartbeats for free)."""
    if isinstance(cond, EventIs):
        return frozenset(cond.event)
    if isinstance(cond, CustomEventIs):
        return frozenset({"custom"})
    if isinstance(cond, AllOf):
        found: frozenset[str] | None = None
        for child in cond.all:
            types = event_types(child)
            if types is not None:
                found = types if found is None else found & types
        return found
    if isinstance(cond, AnyOf):
        union: set[str] = set()
        for child in cond.any:
            types = event_types(child)
            if types is None:
                return None
            union |= types
        return frozenset(union)
    return None


# ---- per-visitor limits ---------------------------------------------------------------------
class Mark(Protocol):
    """A prior invitation decision (invited or held out); `InvitationMark` fits."""

    @property
    def rule_id(self) -> str: ...
    @property
    def at(self) -> float: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def arm(self) -> str: ...


def visitor_limit_reason(
    rule: Rule, marks: Sequence[Mark], session_id: str | None, now: float
) -> str | None:
    """Why this visitor may not get this rule's invitation now, or None if allowed.

    Held-out marks count like invitations, so the control group is filtered exactly like the
    invited group and the comparison stays fair. Reasons: "once_per_visitor",
    "once_per_session", "cooldown".
    """
    once_per = rule.limits.once_per
    cooldown = rule.limits.cooldown
    for mark in marks:
        if mark.rule_id == rule.id:
            if once_per == "visitor":
                return "once_per_visitor"
            if once_per == "session" and mark.session_id == session_id:
                return "once_per_session"
    if cooldown > 0:
        for mark in marks:
            if now - mark.at < cooldown:
                return "cooldown"
    return None


# ---- holdout --------------------------------------------------------------------------------
def holdout_position(site_id: str, visitor_id: str, rule_id: str) -> float:
    """Where a visitor falls for a rule, uniform in [0, 100), the same in every process."""
    key = "\x1f".join((site_id, visitor_id, rule_id)).encode()
    digest = hashlib.blake2b(key, digest_size=8, person=b"beckon-holdout").digest()
    return int.from_bytes(digest, "big") * 100.0 / 2**64


def in_holdout(site_id: str, visitor_id: str, rule_id: str, percent: float) -> bool:
    """Whether this visitor is in this rule's control group (never invited by it)."""
    return percent > 0 and holdout_position(site_id, visitor_id, rule_id) < percent


# ---- compiled site rules --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Match:
    """A rule that may fire for this visitor now, with the variables for its message."""

    rule: Rule
    variables: Mapping[str, str]
    priority: int

    @property
    def rule_id(self) -> str:
        return self.rule.id

    def message(self, agent_name: str | None = None) -> str | None:
        """The rendered message (None if it needs an agent name that wasn't given)."""
        variables = dict(self.variables)
        if agent_name:
            variables["agent_name"] = agent_name
        return render(self.rule.message, variables)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    test: Predicate
    open_at: OpenAt
    needs: frozenset[str]  # template variables that must have a value at match time
    event_types: frozenset[str] | None


def _by_priority(rule: Rule) -> tuple[int, str]:
    return (-rule.priority, rule.id)


@dataclass(frozen=True, slots=True)
class CompiledRules:
    """One site's enabled rules, ready for `evaluate` (build with `from_site`)."""

    site: SiteRules
    rules: tuple[CompiledRule, ...]
    _any_type: tuple[CompiledRule, ...]
    _by_type: Mapping[str, tuple[CompiledRule, ...]]
    locale: str = "en"  # how money is written in messages: the site's language (sites.config)

    @classmethod
    def from_site(cls, site: SiteRules, locale: str = "en") -> CompiledRules:
        site_open = compile_schedule(site.business_hours, site.timezone)
        compiled = []
        for rule in sorted((r for r in site.rules if r.enabled), key=_by_priority):
            compiled.append(
                CompiledRule(
                    rule=rule,
                    test=compile_condition(rule.when),
                    open_at=(
                        site_open
                        if rule.business_hours is None
                        else compile_schedule(rule.business_hours, site.timezone)
                    ),
                    needs=frozenset(template_variables(rule.message)) - LATE_VARIABLES,
                    event_types=event_types(rule.when),
                )
            )
        all_types = {t for c in compiled if c.event_types for t in c.event_types}
        by_type = {
            t: tuple(c for c in compiled if c.event_types is None or t in c.event_types)
            for t in all_types
        }
        any_type = tuple(c for c in compiled if c.event_types is None)
        return cls(
            site=site, rules=tuple(compiled), _any_type=any_type, _by_type=by_type, locale=locale
        )

    def rule(self, rule_id: str) -> Rule | None:
        return next((c.rule for c in self.rules if c.rule.id == rule_id), None)

    def evaluate(
        self, state: VisitorState, obs: Observation, now: float | None = None
    ) -> list[Match]:
        """Every rule that holds and is allowed for this visitor now, highest priority first.

        Allowed: the visitor has browsed `min_browsing`, the rule's business hours are open,
        its per-visitor limits pass and its message can be rendered. `now` defaults to the
        event's time; a timer may pass a later one.
        """
        at = obs.at if now is None else now
        if state.time_on_site(at) < self.site.min_browsing:
            return []
        matches: list[Match] = []
        variables: dict[str, str] | None = None
        for compiled in self._by_type.get(obs.type, self._any_type):
            if not compiled.test(state, obs, at):
                continue
            rule = compiled.rule
            if not compiled.open_at(at):
                continue
            if visitor_limit_reason(rule, state.invitations, state.session_id, at) is not None:
                continue
            if variables is None:
                variables = variables_for(state, obs, self.locale)
            if not compiled.needs.issubset(variables):
                continue
            matches.append(Match(rule=rule, variables=variables, priority=rule.priority))
        return matches
