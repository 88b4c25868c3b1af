"""The visitor step: one event in, the visitor's new state, score and (maybe) a candidate out.

This is everything the per-visitor stage of the stream processor does, as plain functions, so
the unit tests, the worker and `beckon rules backtest` run exactly the same decisions. The
second stage (`triggers.domain.decide`) turns candidates into invitations per site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beckon_contracts.candidates import CandidateSelected
from beckon_contracts.ids import derived_uuid7
from beckon_contracts.money import money_locale
from beckon_contracts.outcomes import FunnelStep
from beckon_contracts.rules import SiteRules
from beckon_contracts.scoring import Behaviour
from beckon_contracts.sites import SiteConfig, newer

from triggers.domain.observation import Observation
from triggers.domain.rules import CompiledRules, Match
from triggers.domain.scoring import Scorer, ScoreResult, behaviours_of
from triggers.domain.state import (
    ATTRIBUTION_WINDOW_S,
    MAX_INVITATIONS,
    InvitationMark,
    VisitorState,
    apply,
)

# While a rule keeps matching, ask admission again at most this often (it may have refused
# for capacity a moment ago, and capacity comes back).
CANDIDATE_RETRY_S = 10.0
SNAPSHOT_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Site:
    """A site's rules, compiled once per published version."""

    rules: SiteRules
    compiled: CompiledRules
    scorer: Scorer

    @classmethod
    def of(cls, rules: SiteRules, locale: str = "en") -> Site:
        return cls(
            rules=rules,
            compiled=CompiledRules.from_site(rules, locale),
            scorer=Scorer(rules.scoring),
        )


def site_locale(config: SiteConfig | None) -> str:
    """How the site's messages write money: its widget language ("auto" and unset: English),
    the same choice chat makes for canned replies."""
    language = config.settings.get("language") if config is not None else None
    return money_locale(language if isinstance(language, str) else None)


def with_site_config(rules: SiteRules, config: SiteConfig | None) -> SiteRules:
    """The rules as the workers run them: the timezone and business hours the site's admins
    set in the console (`sites.config`) over the rules document's own; what the site leaves
    unset, the document decides."""
    if config is None:
        return rules
    update: dict[str, Any] = {}
    if config.timezone is not None and config.timezone != rules.timezone:
        update["timezone"] = config.timezone
    if config.business_hours is not None and config.business_hours != rules.business_hours:
        update["business_hours"] = config.business_hours
    return rules.model_copy(update=update) if update else rules


class Sites:
    """The latest rules of every site, replaced whole when a new version is published, with
    each site's own timezone and business hours (from `sites.config`) applied."""

    def __init__(self) -> None:
        self._published: dict[str, SiteRules] = {}
        self._configs: dict[str, SiteConfig] = {}
        self._sites: dict[str, Site] = {}
        self._unknown: dict[str, Site] = {}

    def put(self, rules: SiteRules) -> None:
        current = self._published.get(rules.site_id)
        if current is None or rules.version >= current.version:
            self._published[rules.site_id] = rules
            self._compile(rules.site_id)

    def configure(self, config: SiteConfig) -> bool:
        """Take a site's configuration; whether it was newer than the one held."""
        if not newer(self._configs.get(config.site_id), config):
            return False
        self._configs[config.site_id] = config
        self._compile(config.site_id)
        return True

    def unconfigure(self, site_id: str) -> None:
        """The site's configuration is gone (a tombstone): its rules' own settings apply."""
        if self._configs.pop(site_id, None) is not None:
            self._compile(site_id)

    def config(self, site_id: str) -> SiteConfig | None:
        return self._configs.get(site_id)

    def _compile(self, site_id: str) -> None:
        self._unknown.pop(site_id, None)
        rules = self._published.get(site_id)
        if rules is not None:
            config = self._configs.get(site_id)
            self._sites[site_id] = Site.of(with_site_config(rules, config), site_locale(config))

    def remove(self, site_id: str) -> None:
        self._published.pop(site_id, None)
        self._sites.pop(site_id, None)

    def get(self, site_id: str) -> Site:
        """The site's rules; a site nobody published rules for gets none (but is scored)."""
        site = self._sites.get(site_id)
        if site is None:
            site = self._unknown.get(site_id)
            if site is None:
                empty = SiteRules(site_id=site_id, rules=[])
                config = self._configs.get(site_id)
                site = Site.of(with_site_config(empty, config), site_locale(config))
                self._unknown[site_id] = site
        return site

    def known(self, site_id: str) -> Site | None:
        return self._sites.get(site_id)

    def __len__(self) -> int:
        return len(self._sites)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A visitor a rule selected; admission (per site) decides whether to invite."""

    invitation_id: str
    site_id: str
    visitor_id: str
    session_id: str | None
    rule_id: str
    team: str
    priority: int
    is_default: bool
    score: float
    segment: str
    at: float
    trigger_event_id: str
    variables: dict[str, str]

    def to_record(self) -> CandidateSelected:
        """The `triggers.candidates` record (raises ValidationError if the contract refuses)."""
        return CandidateSelected.model_validate(
            {name: getattr(self, name) for name in self.__slots__}
        )

    @classmethod
    def from_record(cls, record: CandidateSelected) -> Candidate:
        return cls(
            invitation_id=str(record.invitation_id),
            site_id=record.site_id,
            visitor_id=record.visitor_id,
            session_id=record.session_id,
            rule_id=record.rule_id,
            team=record.team,
            priority=record.priority,
            is_default=record.is_default,
            score=record.score,
            segment=record.segment,
            at=record.at,
            trigger_event_id=record.trigger_event_id,
            variables=dict(record.variables),
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """One funnel step for one rule (aggregated per `site_id:rule_id` by the stats stage)."""

    site_id: str
    rule_id: str
    visitor_id: str
    kind: str  # eligible, invited, held_out, shown, accepted, declined, conversation, order
    arm: str | None = None
    value: float = 0.0
    first: bool = True  # for orders: the visitor's first order since this assignment
    before: float = 0.0  # for later orders: revenue already counted for this assignment
    source_id: str = ""  # what caused it (event or invitation id), for idempotency

    def to_record(self) -> FunnelStep:
        """The `triggers.outcomes` record."""
        return FunnelStep.model_validate({name: getattr(self, name) for name in self.__slots__})

    @classmethod
    def from_record(cls, record: FunnelStep) -> Outcome:
        return cls(**{name: getattr(record, name) for name in cls.__slots__})


@dataclass(slots=True)
class Step:
    candidate: Candidate | None = None
    score: ScoreResult | None = None
    outcomes: list[Outcome] = field(default_factory=list)


def step(site: Site, state: VisitorState, obs: Observation) -> Step:
    """Fold one tracking event into `state`; return what should leave the visitor stage."""
    previous_cart_value, was_identified = state.cart_value, state.identified
    applied = apply(state, obs)
    result = Step()
    behaviours = behaviours_of(
        applied, obs, state, previous_cart_value=previous_cart_value, was_identified=was_identified
    )
    score = site.scorer.apply(state.score_state, behaviours, obs.at, url=obs.url)
    state.score, state.segment = score.score, score.segment
    result.score = score
    if obs.order_value is not None:
        result.outcomes.extend(_attribute_order(state, obs))
    if not obs.is_bot and not state.chatting:
        result.candidate = _candidate(site, state, obs)
    return result


def _attribute_order(state: VisitorState, obs: Observation) -> list[Outcome]:
    """An order counts for every rule that invited (or held out) this visitor recently; its
    value is revenue only when the store's server reported it (a browser's is a claim)."""
    value = (obs.order_value or 0.0) if obs.order_by_server else 0.0
    outcomes: list[Outcome] = []
    horizon = obs.at - ATTRIBUTION_WINDOW_S
    seen: set[tuple[str, str]] = set()
    for mark in reversed(state.invitations):
        if mark.at < horizon or mark.at > obs.at or (mark.rule_id, mark.arm) in seen:
            continue
        seen.add((mark.rule_id, mark.arm))
        outcomes.append(
            Outcome(
                site_id=state.site_id,
                rule_id=mark.rule_id,
                visitor_id=state.visitor_id,
                kind="order",
                arm=mark.arm,
                value=value,
                first=mark.orders == 0,
                before=mark.revenue,
                # one order counts once for each assignment it is attributed to
                source_id=f"{obs.event_id}:{mark.invitation_id}:order",
            )
        )
        mark.orders += 1
        mark.revenue += value
    return outcomes


def _candidate(site: Site, state: VisitorState, obs: Observation) -> Candidate | None:
    matches: list[Match] = site.compiled.evaluate(state, obs)
    for match in matches:
        rule = match.rule
        last = state.candidate_sent.get(rule.id)
        if last is not None and obs.at - last < CANDIDATE_RETRY_S:
            continue
        state.candidate_sent[rule.id] = obs.at
        return Candidate(
            invitation_id=str(derived_uuid7(f"{obs.event_id}\0{rule.id}", int(obs.at * 1000))),
            site_id=state.site_id,
            visitor_id=state.visitor_id,
            session_id=state.session_id,
            rule_id=rule.id,
            team=rule.team,
            priority=rule.priority,
            is_default=rule.default,
            score=state.score,
            segment=state.segment,
            at=obs.at,
            trigger_event_id=obs.event_id,
            variables=dict(match.variables),
        )
    return None


# ---- feedback: what admission and the chat service tell the visitor stage -------------------

FEEDBACK_OUTCOMES = {
    "invitation.shown": "shown",
    "invitation.accepted": "accepted",
    "invitation.declined": "declined",
}
# chat.events types the visitor stage needs (the rest are conversations' own business)
CHAT_FEEDBACK_TYPES = frozenset({*FEEDBACK_OUTCOMES, "conversation.started"})


def apply_feedback(
    site: Site, state: VisitorState, record: dict[str, Any], at: float
) -> list[Outcome]:
    """Record an invitation decision or its fate in the visitor's state; return funnel steps."""
    kind = record.get("type")
    payload = record.get("payload") or {}
    invitation_id = str(payload.get("invitation_id") or "")
    if kind in ("invitation.issued", "invitation.held_out"):
        arm = "invited" if kind == "invitation.issued" else "held_out"
        if any(mark.invitation_id == invitation_id for mark in state.invitations):
            return []
        state.invitations.append(
            InvitationMark(
                invitation_id=invitation_id,
                rule_id=str(payload.get("rule_id") or ""),
                arm=arm,
                at=at,
                session_id=record.get("session_id"),
                team=payload.get("team"),
            )
        )
        del state.invitations[:-MAX_INVITATIONS]
        return []  # admission counts invited/held_out itself, where the decision is made
    mark = next((m for m in state.invitations if m.invitation_id == invitation_id), None)
    if kind in FEEDBACK_OUTCOMES:
        if mark is None or not mark.rule_id:
            return []
        step_kind = FEEDBACK_OUTCOMES[kind]
        if mark.outcome == step_kind or (mark.outcome in ("accepted", "declined")):
            return []
        mark.outcome = step_kind
        if step_kind == "accepted":
            score = site.scorer.apply(state.score_state, [(Behaviour.CHAT_ACCEPTED, 1.0)], at)
            state.score, state.segment = score.score, score.segment
        return [_funnel(state, mark, step_kind, invitation_id)]
    if kind == "conversation.started" and mark is not None and not mark.conversation:
        mark.conversation = True
        return [_funnel(state, mark, "conversation", invitation_id)]
    return []


def _funnel(state: VisitorState, mark: InvitationMark, kind: str, source: str) -> Outcome:
    return Outcome(
        site_id=state.site_id,
        rule_id=mark.rule_id,
        visitor_id=state.visitor_id,
        kind=kind,
        arm=mark.arm,
        source_id=f"{source}:{kind}",
    )
