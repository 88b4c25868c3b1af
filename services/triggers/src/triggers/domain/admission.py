"""Capacity-aware admission: which rule candidates of one site become invitations now.

"Never promise what agents can't deliver." The stream processor routes every candidate of a
site to one place, so one `SiteAdmission` sees them all, single-threaded: no races between
two workers spending the same free slot.

Budget per team. Not every invitation is accepted, so a team with `free` slots can keep more
than `free` invitations open: with an acceptance rate r, n open invitations are expected to
bring n·r chats, which fill the free slots when n = free ÷ r. The budget is therefore

    budget = floor(free_slots ÷ acceptance_rate) - outstanding

The issue's text says "free slots * expected acceptance rate"; taken literally that admits
fewer invitations than slots when r < 1 (e.g. 4 free slots at r = 0.25 would allow a single
open invitation, which fills a quarter of one slot on average) and leaves agents idle. We
read it as ÷, which is what "fill the free slots with expected acceptances" means; the lead
raises the wording with the team.

The budget goes to the highest-scoring candidates first (ties: higher rule priority, then the
earlier candidate). The default rule ("chat with us?" after a few minutes) is shed first: it
is refused when the team's load ratio reaches `busy_above` or when fewer than two
invitations of budget remain, so targeted rules keep the last slots. Site-wide and per-rule
hourly caps are enforced with per-minute buckets over the last hour, and a visitor gets at
most one invitation per call (and none while one is still outstanding).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from beckon_contracts.presence import TeamPresence
from beckon_contracts.privacy import subject_hash

RefusalReason = Literal[
    "no_capacity",
    "no_agents",
    "default_rule_shed",
    "site_hourly_cap",
    "rule_hourly_cap",
    "duplicate",
]
DEFAULT_RULE_MIN_BUDGET = 2  # the default rule only takes budget when at least this much is left
_EPSILON = 1e-9  # 3 ÷ 0.3 is 9.999…; floor must see 10


@dataclass(frozen=True, slots=True)
class Agent:
    """The agent named in a personal invitation."""

    agent_id: str
    name: str
    avatar_url: str | None


@dataclass(frozen=True, slots=True)
class TeamCapacity:
    """What one team can take now, from its latest presence record."""

    team: str
    online_agents: int
    free_slots: int
    open_chats: int
    max_chats: int
    best_agent: Agent | None  # the online agent with the most free slots

    @property
    def load_ratio(self) -> float:
        """Open ÷ maximum chats over online agents; 1.0 when nobody is online."""
        return self.open_chats / self.max_chats if self.max_chats else 1.0

    @classmethod
    def of(cls, presence: TeamPresence) -> TeamCapacity:
        online = [agent for agent in presence.agents if agent.status == "online"]
        # Most free slots, then fewest open chats, then id: deterministic for replays.
        best = min(
            online,
            key=lambda agent: (-agent.free_slots, agent.open_chats, agent.agent_id),
            default=None,
        )
        return cls(
            team=presence.team,
            online_agents=len(online),
            free_slots=sum(agent.free_slots for agent in online),
            open_chats=sum(agent.open_chats for agent in online),
            max_chats=sum(agent.max_chats for agent in online),
            best_agent=Agent(best.agent_id, best.name, best.avatar_url) if best else None,
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A visitor one rule selected; admission turns it into an invitation or refuses it."""

    invitation_id: str
    site_id: str
    visitor_id: str
    session_id: str | None
    rule_id: str
    team: str
    priority: int
    is_default: bool
    score: float
    at: float
    expires_after: float
    max_per_hour: int | None = None


@dataclass(frozen=True, slots=True)
class Admitted:
    candidate: Candidate
    agent: Agent
    expires_at: float


@dataclass(frozen=True, slots=True)
class Refused:
    candidate: Candidate
    reason: RefusalReason


class HourlyCounter:
    """Events in the last 60 minutes, in per-minute buckets (small, and plain JSON)."""

    WINDOW_MINUTES = 60

    def __init__(self, buckets: dict[int, int] | None = None) -> None:
        self._buckets: dict[int, int] = dict(buckets or {})

    def prune(self, now: float) -> None:
        """Drop buckets older than the window."""
        oldest = int(now // 60) - self.WINDOW_MINUTES + 1
        for bucket in [bucket for bucket in self._buckets if bucket < oldest]:
            del self._buckets[bucket]

    def add(self, now: float, count: int = 1) -> None:
        self.prune(now)
        minute = int(now // 60)
        self._buckets[minute] = self._buckets.get(minute, 0) + count

    def total(self, now: float) -> int:
        oldest = int(now // 60) - self.WINDOW_MINUTES + 1
        return sum(count for minute, count in self._buckets.items() if minute >= oldest)

    def empty(self, now: float) -> bool:
        return self.total(now) == 0

    def to_list(self) -> list[list[int]]:
        return [[minute, count] for minute, count in sorted(self._buckets.items())]

    @classmethod
    def from_list(cls, data: Iterable[list[int]]) -> HourlyCounter:
        return cls({int(minute): int(count) for minute, count in data})


@dataclass(slots=True)
class _Outstanding:
    team: str
    visitor_id: str
    expires_at: float


class SiteAdmission:
    """Admission for one site: capacity per team, outstanding invitations, hourly caps."""

    def __init__(
        self, acceptance_rate: float, busy_above: float, max_per_hour: int | None = None
    ) -> None:
        self.configure(acceptance_rate, busy_above, max_per_hour)
        self._capacity: dict[str, TeamCapacity] = {}
        self._outstanding: dict[str, _Outstanding] = {}  # by invitation_id
        # kept in step with _outstanding so a decision never scans it (it can hold thousands)
        self._expiries: list[tuple[float, str]] = []  # heap of (expires_at, invitation_id)
        self._per_team: Counter[str] = Counter()
        self._per_visitor: Counter[str] = Counter()
        self._site_hourly = HourlyCounter()
        self._rule_hourly: dict[str, HourlyCounter] = {}

    def configure(
        self, acceptance_rate: float, busy_above: float, max_per_hour: int | None = None
    ) -> None:
        """Apply (new) site settings; counters and outstanding invitations are kept."""
        if not 0 < acceptance_rate <= 1:
            raise ValueError("acceptance_rate must be in (0, 1]")
        if not 0 < busy_above <= 1:
            raise ValueError("busy_above must be in (0, 1]")
        if max_per_hour is not None and max_per_hour < 0:
            raise ValueError("max_per_hour must be >= 0")
        self.acceptance_rate = acceptance_rate
        self.busy_above = busy_above
        self.max_per_hour = max_per_hour

    # ---- inputs ----------------------------------------------------------------------------
    def update_presence(self, presence: TeamPresence) -> TeamCapacity:
        capacity = TeamCapacity.of(presence)
        self._capacity[presence.team] = capacity
        return capacity

    def capacity(self, team: str) -> TeamCapacity | None:
        return self._capacity.get(team)

    def resolve(self, invitation_id: str) -> bool:
        """The invitation was accepted, declined or closed: it no longer holds budget.

        (An accepted one becomes an open chat, which the next presence record counts.)
        Returns whether it was outstanding.
        """
        entry = self._outstanding.pop(invitation_id, None)
        if entry is None:
            return False
        self._per_team[entry.team] -= 1
        self._per_visitor[entry.visitor_id] -= 1
        if not self._per_visitor[entry.visitor_id]:
            del self._per_visitor[entry.visitor_id]
        return True

    def forget_visitors(self, visitor_ids: Iterable[str]) -> int:
        """A visitor's erasure: their outstanding invitations keep holding the team's budget
        (until resolved or expired) under a pseudonym, so the site's state no longer names
        them. Returns how many invitations were renamed."""
        forgotten = set(visitor_ids)
        renamed = 0
        for entry in self._outstanding.values():
            if entry.visitor_id in forgotten:
                pseudonym = f"erased:{subject_hash(entry.visitor_id)[:32]}"
                self._per_visitor[entry.visitor_id] -= 1
                if not self._per_visitor[entry.visitor_id]:
                    del self._per_visitor[entry.visitor_id]
                self._per_visitor[pseudonym] += 1
                entry.visitor_id = pseudonym
                renamed += 1
        return renamed

    def _add(self, invitation_id: str, entry: _Outstanding) -> None:
        self._outstanding[invitation_id] = entry
        heapq.heappush(self._expiries, (entry.expires_at, invitation_id))
        self._per_team[entry.team] += 1
        self._per_visitor[entry.visitor_id] += 1

    def expire(self, now: float) -> None:
        """Drop invitations whose time is up (admit does this itself)."""
        while self._expiries and self._expiries[0][0] <= now:
            expires_at, invitation_id = heapq.heappop(self._expiries)
            entry = self._outstanding.get(invitation_id)
            if entry is not None and entry.expires_at == expires_at:
                self.resolve(invitation_id)

    def outstanding(self, team: str, now: float) -> int:
        self.expire(now)
        return self._per_team[team]

    def budget(self, team: str, now: float) -> int:
        """Invitations the team can still take now (may be negative when over-committed)."""
        capacity = self._capacity.get(team)
        if capacity is None or capacity.online_agents == 0:
            return 0
        room = math.floor(capacity.free_slots / self.acceptance_rate + _EPSILON)
        return room - self.outstanding(team, now)

    # ---- the decision ----------------------------------------------------------------------
    def admit(self, candidates: Iterable[Candidate], now: float) -> list[Admitted | Refused]:
        """Decide every candidate, best first; the result is in decision order."""
        self.expire(now)
        ranked = sorted(candidates, key=lambda c: (-c.score, -c.priority, c.at, c.invitation_id))
        busy_visitors: set[str] = set()
        decisions: list[Admitted | Refused] = []
        for candidate in ranked:
            reason = self._refusal(candidate, busy_visitors, now)
            if reason is not None:
                decisions.append(Refused(candidate, reason))
                continue
            decisions.append(self._record(candidate, now))
            busy_visitors.add(candidate.visitor_id)
        return decisions

    def _refusal(
        self, candidate: Candidate, busy_visitors: set[str], now: float
    ) -> RefusalReason | None:
        if (
            candidate.visitor_id in busy_visitors
            or candidate.visitor_id in self._per_visitor
            or candidate.invitation_id in self._outstanding
        ):
            return "duplicate"
        capacity = self._capacity.get(candidate.team)
        if capacity is None or capacity.online_agents == 0 or capacity.best_agent is None:
            return "no_agents"
        budget = self.budget(candidate.team, now)
        if capacity.free_slots == 0 or budget <= 0:
            return "no_capacity"
        if candidate.is_default and (
            capacity.load_ratio >= self.busy_above or budget < DEFAULT_RULE_MIN_BUDGET
        ):
            return "default_rule_shed"
        if self.max_per_hour is not None and self._site_hourly.total(now) >= self.max_per_hour:
            return "site_hourly_cap"
        if candidate.max_per_hour is not None:
            counter = self._rule_hourly.get(candidate.rule_id)
            if (counter.total(now) if counter else 0) >= candidate.max_per_hour:
                return "rule_hourly_cap"
        return None

    def _record(self, candidate: Candidate, now: float) -> Admitted:
        capacity = self._capacity[candidate.team]
        assert capacity.best_agent is not None  # checked by _refusal
        expires_at = now + candidate.expires_after
        self._add(
            candidate.invitation_id, _Outstanding(candidate.team, candidate.visitor_id, expires_at)
        )
        self._site_hourly.add(now)
        self._rule_hourly.setdefault(candidate.rule_id, HourlyCounter()).add(now)
        return Admitted(candidate, capacity.best_agent, expires_at)

    # ---- restart ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """What must survive a restart, as plain JSON data (capacity is re-read from the
        compacted presence topic)."""
        return {
            "outstanding": [
                [invitation_id, entry.team, entry.visitor_id, entry.expires_at]
                for invitation_id, entry in self._outstanding.items()
            ],
            "site_hourly": self._site_hourly.to_list(),
            "rule_hourly": {rule: counter.to_list() for rule, counter in self._rule_hourly.items()},
        }

    @classmethod
    def from_dict(
        cls,
        data: dict[str, Any],
        *,
        acceptance_rate: float,
        busy_above: float,
        max_per_hour: int | None = None,
    ) -> SiteAdmission:
        admission = cls(acceptance_rate, busy_above, max_per_hour)
        for invitation_id, team, visitor_id, expires_at in data.get("outstanding", ()):
            admission._add(invitation_id, _Outstanding(team, visitor_id, expires_at))
        admission._site_hourly = HourlyCounter.from_list(data.get("site_hourly", ()))
        admission._rule_hourly = {
            rule: HourlyCounter.from_list(buckets)
            for rule, buckets in data.get("rule_hourly", {}).items()
        }
        return admission

    def prune(self, now: float) -> None:
        """Forget expired invitations and idle rule counters (keeps `to_dict` small)."""
        self.expire(now)
        self._site_hourly.prune(now)
        self._rule_hourly = {
            rule: counter for rule, counter in self._rule_hourly.items() if not counter.empty(now)
        }
