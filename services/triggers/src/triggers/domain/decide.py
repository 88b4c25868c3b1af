"""The admission step for one site: candidates in, invitations / held-out records out.

All candidates of a site arrive on one partition of `triggers.candidates`, so this runs in
one place per site: the per-visitor limits, the capacity budget and the hourly caps are
checked and spent without races. Per visitor it keeps the invitation history (the marks)
that the limits are checked against; per site, `SiteAdmission`'s counters.

Holdout is decided *after* admission: the control group is drawn from visitors who would
have been invited, so both arms are comparable (admission ranks by score; drawing the
control group before it would leave the invited arm with the better visitors).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from beckon_contracts.invitations import (
    HeldOutPayload,
    InvitationHeldOut,
    InvitationIssued,
    InvitationIssuedPayload,
    InvitingAgent,
)
from beckon_contracts.presence import TeamPresence
from beckon_contracts.rules import Rule
from pydantic import ValidationError

from triggers.domain import admission
from triggers.domain.engine import Candidate, Outcome, Site
from triggers.domain.rules import in_holdout, visitor_limit_reason
from triggers.domain.state import MAX_INVITATIONS, InvitationMark
from triggers.domain.templates import render

MAX_ELIGIBLE_KEYS = 50
MAX_KEPT_RECORDS = 2


@dataclass(slots=True)
class VisitorMarks:
    """Admission's own record of one visitor: decisions made and (rule, session) counted."""

    marks: list[InvitationMark] = field(default_factory=list)
    eligible: list[str] = field(default_factory=list)
    # The latest decisions' records, to send again if their candidate comes back (a replay
    # after a crash between saving the decision and sending it): same ids, so consumers
    # deduplicate, and no second, different invitation is ever made.
    records: dict[str, str] = field(default_factory=dict)
    # when admission last saved these (0: before marks were dated)
    seen_at: float = 0.0
    changed: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "marks": self.marks,
                "eligible": self.eligible,
                "records": self.records,
                "seen_at": self.seen_at,
            }
        )

    def last_active(self) -> float | None:
        """The latest of the last save and the last decision (None: nothing dated)."""
        latest = max([self.seen_at, *(mark.at for mark in self.marks)])
        return latest or None

    @classmethod
    def from_json(cls, raw: bytes) -> VisitorMarks:
        data = orjson.loads(raw)
        return cls(
            marks=[InvitationMark(**mark) for mark in data.get("marks", ())],
            eligible=list(data.get("eligible", ())),
            records=dict(data.get("records", {})),
            seen_at=float(data.get("seen_at", 0.0)),
        )

    def mark(self, invitation_id: str) -> InvitationMark | None:
        return next((m for m in self.marks if m.invitation_id == invitation_id), None)

    def keep_record(self, invitation_id: str, record: bytes) -> None:
        self.records[invitation_id] = record.decode()
        for stale in list(self.records)[:-MAX_KEPT_RECORDS]:
            del self.records[stale]

    def knows(self, invitation_id: str) -> bool:
        return any(mark.invitation_id == invitation_id for mark in self.marks)

    def add(self, mark: InvitationMark) -> None:
        self.marks.append(mark)
        del self.marks[:-MAX_INVITATIONS]
        self.changed = True

    def first_eligible(self, rule_id: str, session_id: str | None) -> bool:
        key = f"{rule_id}:{session_id}"
        if key in self.eligible:
            return False
        self.eligible.append(key)
        del self.eligible[:-MAX_ELIGIBLE_KEYS]
        self.changed = True
        return True


@dataclass(frozen=True, slots=True)
class Decision:
    kind: str  # "issued" | "held_out" | "refused"
    candidate: Candidate
    reason: str | None = None
    detail: str | None = None  # why a record could not be built (reason "invalid_record")
    record: bytes | None = None  # the chat.invitations record (issued / held_out)
    outcomes: tuple[Outcome, ...] = ()


class SiteDecider:
    def __init__(self, site: Site | None, state: admission.SiteAdmission) -> None:
        self.site = site
        self.admission = state

    @classmethod
    def load(
        cls, site: Site | None, stored: bytes | None, presence: dict[str, TeamPresence]
    ) -> SiteDecider:
        rules = site.rules if site is not None else None
        acceptance_rate = rules.acceptance_rate if rules else 0.3
        busy_above = rules.busy_above if rules else 0.5
        max_per_hour = rules.max_invitations_per_hour if rules else None
        if stored:
            state = admission.SiteAdmission.from_dict(
                orjson.loads(stored),
                acceptance_rate=acceptance_rate,
                busy_above=busy_above,
                max_per_hour=max_per_hour,
            )
        else:
            state = admission.SiteAdmission(acceptance_rate, busy_above, max_per_hour)
        for team_presence in presence.values():
            state.update_presence(team_presence)
        return cls(site, state)

    def refresh(self, site: Site | None, presence: dict[str, TeamPresence]) -> SiteDecider:
        """The same decider with the site's current rules and presence (kept between batches
        so its counters aren't parsed from the table on every batch)."""
        self.site = site
        if site is not None:
            rules = site.rules
            self.admission.configure(
                rules.acceptance_rate, rules.busy_above, rules.max_invitations_per_hour
            )
        for team_presence in presence.values():
            self.admission.update_presence(team_presence)
        return self

    def to_json(self) -> bytes:
        return orjson.dumps(self.admission.to_dict())

    def resolve(self, invitation_id: str) -> None:
        self.admission.resolve(invitation_id)

    def forget(self, visitor_ids: list[str]) -> bool:
        """A visitor's erasure in the site's state; True when it named one of them."""
        return self.admission.forget_visitors(visitor_ids) > 0

    def _rule(self, rule_id: str) -> Rule | None:
        """The rule as published now (compiled rules hold only the enabled ones)."""
        return self.site.compiled.rule(rule_id) if self.site is not None else None

    def decide(
        self, candidates: list[Candidate], marks: dict[str, VisitorMarks], now: float
    ) -> list[Decision]:
        decisions: list[Decision] = []
        eligible: dict[str, Outcome] = {}
        passing: list[tuple[admission.Candidate, Candidate, Rule]] = []
        for candidate in candidates:
            visitor = marks[f"{candidate.site_id}:{candidate.visitor_id}"]
            rule = self._rule(candidate.rule_id)
            if rule is None:
                decisions.append(Decision("refused", candidate, reason="rule_gone"))
                continue
            if visitor.knows(candidate.invitation_id):
                decisions.append(self._again(candidate, visitor))
                continue
            reason = visitor_limit_reason(rule, visitor.marks, candidate.session_id, now)
            if reason is not None:
                decisions.append(Decision("refused", candidate, reason=reason))
                continue
            if visitor.first_eligible(rule.id, candidate.session_id):
                eligible[candidate.invitation_id] = self._outcome(candidate, "eligible")
            passing.append((self._admission_candidate(candidate, rule), candidate, rule))

        by_id = {c.invitation_id: (original, rule) for c, original, rule in passing}
        for verdict in self.admission.admit([c for c, _, _ in passing], now):
            original, rule = by_id[verdict.candidate.invitation_id]
            counted = eligible.get(original.invitation_id)
            first = (counted,) if counted else ()
            if isinstance(verdict, admission.Refused):
                decisions.append(Decision("refused", original, verdict.reason, outcomes=first))
                continue
            decision = self._admitted(verdict, original, rule, marks, now)
            decisions.append(replace(decision, outcomes=first + decision.outcomes))
        return decisions

    def _again(self, candidate: Candidate, visitor: VisitorMarks) -> Decision:
        """A candidate already decided: send the same decision again, never a new one."""
        mark = visitor.mark(candidate.invitation_id)
        record = visitor.records.get(candidate.invitation_id)
        if mark is None or record is None:
            return Decision("refused", candidate, reason="duplicate")
        return Decision(
            "resent",
            candidate,
            record=record.encode(),
            outcomes=(self._outcome(candidate, mark.arm),),
        )

    def _admission_candidate(self, candidate: Candidate, rule: Rule) -> admission.Candidate:
        return admission.Candidate(
            invitation_id=candidate.invitation_id,
            site_id=candidate.site_id,
            visitor_id=candidate.visitor_id,
            session_id=candidate.session_id,
            rule_id=rule.id,
            team=rule.team,
            priority=rule.priority,
            is_default=rule.default,
            score=candidate.score,
            at=candidate.at,
            expires_after=rule.expires_after,
            max_per_hour=rule.limits.max_per_hour,
        )

    def _admitted(
        self,
        verdict: admission.Admitted,
        candidate: Candidate,
        rule: Rule,
        marks: dict[str, VisitorMarks],
        now: float,
    ) -> Decision:
        visitor = marks[f"{candidate.site_id}:{candidate.visitor_id}"]
        held_out = in_holdout(
            candidate.site_id, candidate.visitor_id, rule.id, rule.holdout_percent
        )
        message = render(rule.message, {**candidate.variables, "agent_name": verdict.agent.name})
        if message is None and not held_out:
            self.admission.resolve(candidate.invitation_id)
            return Decision("refused", candidate, reason="unrenderable")
        try:
            invitation = (
                held_out_record(candidate, rule, now)
                if held_out
                else issued_record(candidate, rule, verdict, message or "", now)
            )
        except ValidationError as exc:
            # e.g. a store's product name that makes the message too long: no invitation
            # rather than one chat would dead-letter
            self.admission.resolve(candidate.invitation_id)
            return Decision("refused", candidate, reason="invalid_record", detail=str(exc))
        arm = "held_out" if held_out else "invited"
        if held_out:
            self.admission.resolve(candidate.invitation_id)  # the control group takes no slot
        visitor.add(
            InvitationMark(
                invitation_id=candidate.invitation_id,
                rule_id=rule.id,
                arm=arm,
                at=now,
                session_id=candidate.session_id,
                team=rule.team,
            )
        )
        record = invitation_wire(invitation)
        visitor.keep_record(candidate.invitation_id, record)
        return Decision(
            arm if held_out else "issued",
            candidate,
            record=record,
            outcomes=(self._outcome(candidate, arm),),
        )

    @staticmethod
    def _outcome(candidate: Candidate, kind: str) -> Outcome:
        return Outcome(
            site_id=candidate.site_id,
            rule_id=candidate.rule_id,
            visitor_id=candidate.visitor_id,
            kind=kind,
            arm=kind if kind in ("invited", "held_out") else None,
            source_id=f"{candidate.invitation_id}:{kind}",
        )


def issued_record(
    candidate: Candidate, rule: Rule, verdict: admission.Admitted, message: str, now: float
) -> InvitationIssued:
    """The `invitation.issued` record for an admitted candidate (raises ValidationError if
    the contract refuses it)."""
    agent = verdict.agent
    return InvitationIssued(
        event_id=candidate.invitation_id,  # type: ignore[arg-type]  # validated to a UUIDv7
        occurred_at=_utc(now),
        site_id=candidate.site_id,
        visitor_id=candidate.visitor_id,
        session_id=candidate.session_id,
        payload=InvitationIssuedPayload(
            invitation_id=candidate.invitation_id,  # type: ignore[arg-type]
            rule_id=rule.id,
            rule_name=rule.name,
            team=rule.team,
            message=message,
            agent=InvitingAgent(
                agent_id=agent.agent_id, name=agent.name, avatar_url=agent.avatar_url
            ),
            expires_at=_utc(verdict.expires_at),
            score=candidate.score,
            segment=candidate.segment,
            trigger_event_id=candidate.trigger_event_id,  # type: ignore[arg-type]
        ),
    )


def held_out_record(candidate: Candidate, rule: Rule, now: float) -> InvitationHeldOut:
    """The `invitation.held_out` record: the visitor qualified and is in the control group."""
    return InvitationHeldOut(
        event_id=candidate.invitation_id,  # type: ignore[arg-type]
        occurred_at=_utc(now),
        site_id=candidate.site_id,
        visitor_id=candidate.visitor_id,
        session_id=candidate.session_id,
        payload=HeldOutPayload(
            invitation_id=candidate.invitation_id,  # type: ignore[arg-type]
            rule_id=rule.id,
            team=rule.team,
            score=candidate.score,
            trigger_event_id=candidate.trigger_event_id,  # type: ignore[arg-type]
        ),
    )


# The wire format chat and the stats stage have always read: no `received_at` (triggers
# receives nothing from an edge), `session_id` even when null, and `personal` only on the
# invitations agents send themselves (chat's own records).
_WIRE_EXCLUDE: dict[str, Any] = {"received_at": True, "payload": {"personal"}}


def invitation_wire(record: InvitationIssued | InvitationHeldOut) -> bytes:
    return record.model_dump_json(exclude=_WIRE_EXCLUDE).encode()


def _utc(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)
