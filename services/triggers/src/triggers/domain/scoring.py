"""Lead scoring: behaviour points that decay over time, capped per group, cut into segments.

Pure and cheap: it runs on every tracking event. A visitor's scoring memory is the small,
JSON-serializable `score_state` dict kept inside `VisitorState` (written to Kafka on every
update, so it stays tiny):

    {"a": anchor_epoch_s, "t": last_update_epoch_s, "g": {group: u}, "b": {rule_key: u}}

Decay is exponential with the configured half-life. Rather than decaying every stored number
on every event (cost, and rounding that would swallow the tiny decay between events a few
seconds apart), numbers are stored *anchored*: u = points · 2^((at - a) / half_life), i.e.
points earned later are stored larger, and the score at `now` is Σu · 2^(-(now - a) / h).
An update touches only the groups and rules it adds to. When the anchor is a few half-lives
old everything is rescaled to a new anchor once (and dust pruned), which keeps the numbers
bounded.

Group caps clamp the stored group total at the moment points are added, so points earned
beyond a cap are dropped rather than banked: a visitor at the interest cap who keeps
browsing stays at the cap, and once the total has decayed below it new interest counts again.
The per-rule parts ("b") only ever receive the points that actually landed, so they add up
to the score and explain it on the visitor card.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Any

from beckon_contracts.scoring import Behaviour, ScoringConfig

from triggers.domain.observation import Observation
from triggers.domain.state import Applied, VisitorState

# Re-anchor when the anchor is this many half-lives old (stored numbers grow up to 2^this).
REANCHOR_HALF_LIVES = 3.0
# Leftovers smaller than this (in points, at re-anchoring) are dropped so `score_state` does
# not collect dust; stored values are rounded to keep the JSON short.
PRUNE_BELOW = 0.05
STORED_DECIMALS = 4
COLD = "cold"


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The score at `now`, and what this update did to it.

    `previous_segment` is the segment after the visitor's last update (not decayed), so
    `crossed` is true only on the update that lifts the visitor into a higher segment: the
    caller emits "warm lead"/"hot lead" once, not on every later event. A visitor who cools
    down between events and rises again does cross again. `changed` says whether
    `score_state` was modified (nothing to write otherwise).
    """

    score: float
    segment: str
    previous_segment: str
    crossed: bool
    changed: bool = False
    # stored parts and the factor to points; the breakdown is only built when asked for
    parts: dict[str, float] = field(default_factory=dict, repr=False, compare=False)
    factor: float = field(default=1.0, repr=False, compare=False)

    @property
    def breakdown(self) -> dict[str, float]:
        """Points per rule at `now` (rounded to 0.1): what made the score."""
        factor = self.factor
        shown = ((key, round(points * factor, 1)) for key, points in self.parts.items())
        return {key: points for key, points in shown if points}


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    group: str
    points: float
    per: float | None
    url: re.Pattern[str] | None


def behaviours_of(
    applied: Applied,
    obs: Observation,
    state: VisitorState,
    *,
    previous_cart_value: float | None = None,
    was_identified: bool | None = None,
) -> list[tuple[Behaviour, float]]:
    """What this event earns points for, as (behaviour, value); value is 1.0 for counts.

    `state` is the state *after* `apply`, which has already overwritten the cart value and
    the identified flag; pass the values from before `apply` as `previous_cart_value` and
    `was_identified`. Without them the whole cart value counts as added and every identify
    call scores (the group cap still bounds both). CHAT_ACCEPTED does not come from tracking:
    score it when the chat reports an accepted invitation.
    """
    if obs.is_bot:
        return []
    found: list[tuple[Behaviour, float]] = []
    if applied.new_session:
        if not applied.first_visit:
            found.append((Behaviour.RETURN_VISIT, 1.0))
        if obs.from_email:
            found.append((Behaviour.EMAIL_ARRIVAL, 1.0))
        elif obs.campaign_source or obs.campaign_medium or obs.campaign_name:
            found.append((Behaviour.CAMPAIGN_ARRIVAL, 1.0))
    if applied.page_changed:
        found.append((Behaviour.PAGE_VIEW, 1.0))
    if applied.product_view_count == 1:
        found.append((Behaviour.PRODUCT_VIEW, 1.0))
    elif applied.product_view_count > 1:
        found.append((Behaviour.REPEAT_PRODUCT_VIEW, 1.0))
    if applied.first_price_seen:
        found.append((Behaviour.SEEN_PRICE, 1.0))
    if applied.cart_increased and obs.type == "cart_updated" and obs.cart_value is not None:
        found.append((Behaviour.CART_ADD, 1.0))
        increase = obs.cart_value - (previous_cart_value or 0.0)
        if increase > 0:
            found.append((Behaviour.CART_VALUE, increase))
    # `apply` stamps checkout_started with the first checkout event of the session only.
    if obs.type == "checkout_started" and state.checkout_started == obs.at:
        found.append((Behaviour.CHECKOUT_STARTED, 1.0))
    if obs.order_value is not None:
        found.append((Behaviour.ORDER_COMPLETED, obs.order_value))
    if obs.traits is not None and not was_identified:
        found.append((Behaviour.IDENTIFIED, 1.0))
    return found


class Scorer:
    """Scores visitors of one site with its `ScoringConfig` (build once per config)."""

    def __init__(self, config: ScoringConfig) -> None:
        self.config = config
        self._decay_rate = math.log(2) / config.half_life
        self._reanchor_after = REANCHOR_HALF_LIVES * config.half_life
        self._caps = dict(config.caps)
        self._segments = config.segments()
        self._rank = {COLD: 0} | {name: i + 1 for i, (_, name) in enumerate(self._segments)}
        rules: dict[Behaviour, list[_Rule]] = {}
        for rule in config.rules:
            url = re.compile(translate(rule.url)) if rule.url else None
            rules.setdefault(rule.behaviour, []).append(
                _Rule(rule.key, rule.group, rule.points, rule.per, url)
            )
        self._rules = {behaviour: tuple(found) for behaviour, found in rules.items()}

    def segment_of(self, score: float) -> str:
        segment = COLD
        for minimum, name in self._segments:
            if score < minimum:
                break
            segment = name
        return segment

    def rank(self, segment: str) -> int:
        """0 for cold, 1 for the lowest named segment, ...; unknown names count as cold."""
        return self._rank.get(segment, 0)

    def _scale(self, score_state: dict[str, Any], at: float) -> float:
        """2^((at - anchor) / half_life): stored units per point at time `at`."""
        return math.exp(self._decay_rate * (at - score_state.get("a", at)))

    def _result(
        self, score_state: dict[str, Any], now: float, previous: str | None, changed: bool
    ) -> ScoreResult:
        last = score_state.get("t", now)
        groups: dict[str, float] = score_state.get("g") or {}
        total = sum(groups.values())
        factor = 1.0 / self._scale(score_state, max(now, last))
        score = round(max(0.0, total * factor), 1)
        segment = self.segment_of(score)
        if previous is None:
            previous = self.segment_of(self._score_at(score_state, last, total))
        return ScoreResult(
            score=score,
            segment=segment,
            previous_segment=previous,
            crossed=changed and self.rank(segment) > self.rank(previous),
            changed=changed,
            parts=dict(score_state.get("b") or ()),
            factor=factor,
        )

    def _score_at(self, score_state: dict[str, Any], at: float, total: float) -> float:
        return round(max(0.0, total / self._scale(score_state, at)), 1) if total else 0.0

    def current(self, score_state: dict[str, Any], now: float) -> ScoreResult:
        """The decayed score at `now` (never before the last update), changing nothing."""
        return self._result(score_state, now, None, changed=False)

    def apply(
        self,
        score_state: dict[str, Any],
        behaviours: list[tuple[Behaviour, float]],
        now: float,
        *,
        url: str | None = None,
    ) -> ScoreResult:
        """Add the points `behaviours` earn at `now`, updating `score_state` in place.

        `url` is the page URL, matched against the globs of page_view rules (rules with a
        glob never match without it). A slightly late event adds its points as decayed from
        its own time and never moves the clock back.
        """
        gains: list[tuple[_Rule, float]] = []
        for behaviour, value in behaviours:
            for rule in self._rules.get(behaviour, ()):
                if rule.url is not None and (url is None or rule.url.match(url) is None):
                    continue
                points = rule.points * value / rule.per if rule.per else rule.points
                if points:
                    gains.append((rule, points))
        if not gains:
            return self.current(score_state, now)

        if "a" not in score_state or now - score_state["a"] > self._reanchor_after:
            self._reanchor(score_state, now)
        groups: dict[str, float] = score_state["g"]
        parts: dict[str, float] = score_state["b"]
        last = score_state.setdefault("t", now)
        previous = self.segment_of(self._score_at(score_state, last, sum(groups.values())))
        scale = self._scale(score_state, now)
        for rule, points in gains:
            before = groups.get(rule.group, 0.0)
            after = before + points * scale
            cap = self._caps.get(rule.group)
            if cap is not None and after > cap * scale:
                after = max(before, cap * scale)  # a total above a lowered cap is kept, not cut
            after = round(after, STORED_DECIMALS)
            if after != before:
                groups[rule.group] = after
                parts[rule.key] = round(parts.get(rule.key, 0.0) + after - before, STORED_DECIMALS)
        score_state["t"] = max(now, last)
        return self._result(score_state, now, previous, changed=True)

    def _reanchor(self, score_state: dict[str, Any], now: float) -> None:
        """Express the stored numbers as of `now` (the new anchor), dropping dust."""
        factor = 1.0 / self._scale(score_state, now)
        for name in ("g", "b"):
            stored: dict[str, float] = score_state.get(name) or {}
            score_state[name] = {
                key: round(value * factor, STORED_DECIMALS)
                for key, value in stored.items()
                if abs(value * factor) >= PRUNE_BELOW
            }
        score_state["a"] = now

    def observe(
        self,
        score_state: dict[str, Any],
        applied: Applied,
        obs: Observation,
        state: VisitorState,
        *,
        previous_cart_value: float | None = None,
        was_identified: bool | None = None,
    ) -> ScoreResult:
        """`behaviours_of` + `apply` for one tracking event (the page URL comes from `obs`)."""
        found = behaviours_of(
            applied,
            obs,
            state,
            previous_cart_value=previous_cart_value,
            was_identified=was_identified,
        )
        return self.apply(score_state, found, obs.at, url=obs.url)
