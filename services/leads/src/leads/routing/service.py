"""The admin's use cases of routing: the rules in force, a new version, "which team would get
this lead", the site's teams and its agents' caps. Each opens one unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beckon_edge.refusals import Invalid

from leads.assignment import service as assignment
from leads.assignment.store import AgentSettings, AssignmentStore
from leads.domain.routing import (
    Explanation,
    InvalidRouting,
    Problem,
    RoutingRules,
    check_facts,
    check_routing,
    explain,
    parse_routing,
)
from leads.lead import Lead, LeadStore
from leads.routing.store import RoutingStore, StoredRouting, Team, TeamStore, document_of
from leads.uow import UnitsOfWork


@dataclass(frozen=True, slots=True)
class RoutingView:
    """The rules in force: a saved version, or (version None) the site's default team alone."""

    version: int | None
    rules: RoutingRules
    created_by: str | None = None
    created_at: datetime | None = None

    @classmethod
    def of(cls, stored: StoredRouting) -> RoutingView:
        return cls(stored.version, stored.rules, stored.created_by, stored.created_at)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "document": document_of(self.rules),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


async def _in_force(tx: Any, site_id: str) -> RoutingView:
    stored = await tx.store(RoutingStore).latest(site_id)
    if stored is not None:
        return RoutingView.of(stored)
    defaults = await tx.store(AssignmentStore).site_defaults(site_id)
    return RoutingView(None, RoutingRules(default_team=defaults.default_team))


async def get_routing(*, uow: UnitsOfWork, site_id: str) -> RoutingView:
    """The site's routing rules in force."""
    async with uow.read(site_id) as tx:
        return await _in_force(tx, site_id)


async def save_routing(
    *, uow: UnitsOfWork, site_id: str, document: object, by: str, now: datetime
) -> RoutingView:
    """Validate a routing document against the site's teams and save it as the next version."""
    async with uow(site_id) as tx:
        teams = await tx.store(TeamStore).names(site_id)
        rules = parse_routing(document, teams=teams)
        return RoutingView.of(await tx.store(RoutingStore).save(site_id, rules, by=by, now=now))


@dataclass(frozen=True, slots=True)
class Tried:
    """The tester's answer: the version tried (None: a draft or the default) and the trace."""

    version: int | None
    explanation: Explanation

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, **self.explanation.to_dict()}


def _under(prefix: str, problems: Sequence[Problem]) -> list[Problem]:
    """Problems of a part of the body, located from the body's top (`document.rules[0]`)."""
    return [Problem(f"{prefix}.{p.loc}" if p.loc else prefix, p.msg) for p in problems]


async def try_routing(
    *, uow: UnitsOfWork, site_id: str, lead: object, document: object | None = None
) -> Tried:
    """Which team would get this lead: under a draft `document`, else the rules in force."""
    facts, problems = check_facts(lead, "lead")
    async with uow.read(site_id) as tx:
        if document is None:
            view = await _in_force(tx, site_id)
            rules: RoutingRules | None = view.rules
            version = view.version
        else:
            teams = await tx.store(TeamStore).names(site_id)
            rules, found = check_routing(document, teams=teams)
            problems = problems + _under("document", found)
            version = None
    if problems or facts is None or rules is None:
        code = "invalid_routing_rules" if document is not None and rules is None else "invalid_lead"
        raise InvalidRouting(problems, code=code)
    return Tried(version, explain(rules, facts))


async def list_teams(*, uow: UnitsOfWork, site_id: str) -> list[Team]:
    """The site's teams."""
    async with uow.read(site_id) as tx:
        teams: list[Team] = await tx.store(TeamStore).teams(site_id)
    return teams


async def save_teams(*, uow: UnitsOfWork, site_id: str, teams: Sequence[Team]) -> list[Team]:
    """The site's teams become `teams`; a team the rules in force name stays, and a team lead
    is an agent the site knows."""
    async with uow(site_id) as tx:
        problems = _duplicate_teams(teams)
        agents = tx.store(AssignmentStore)
        for index, team in enumerate(teams):
            lead = team.lead_agent_id
            if lead is not None and not await agents.known_agent(site_id, lead):
                problems.append(
                    Problem(f"teams[{index}].lead_agent_id", f"no agent {lead!r} on this site")
                )
        stored = await tx.store(RoutingStore).latest(site_id)
        if stored is not None:
            kept = {team.team for team in teams}
            for name in stored.rules.teams():
                if name not in kept:
                    problems.append(
                        Problem(
                            "teams",
                            f"team {name!r} is named by the routing rules in force"
                            f" (version {stored.version}); route its leads elsewhere first",
                        )
                    )
        if problems:
            first = problems[0]
            raise Invalid(
                "invalid_teams",
                f"{first.loc}: {first.msg}",
                errors=[problem.to_dict() for problem in problems],
            )
        saved: list[Team] = await tx.store(TeamStore).replace(site_id, teams)
    return saved


def _duplicate_teams(teams: Sequence[Team]) -> list[Problem]:
    seen: dict[str, int] = {}
    problems = []
    for index, team in enumerate(teams):
        if team.team in seen:
            problems.append(Problem(f"teams[{index}].team", f"team {team.team!r} is listed twice"))
        seen.setdefault(team.team, index)
    return problems


async def list_agents(*, uow: UnitsOfWork, site_id: str) -> list[dict[str, Any]]:
    """The site's agents: teams, where they are online, cap, open leads, deactivation."""
    async with uow.read(site_id) as tx:
        rows = await tx.store(AssignmentStore).agents(site_id)
        default_cap = (await tx.store(AssignmentStore).site_defaults(site_id)).default_cap
    return [
        {
            "agent_id": row["agent_id"],
            "name": row["name"],
            "teams": list(row["teams"]),
            "online_in": list(row["online_in"]),
            "max_open_leads": row["max_open_leads"],
            "cap": default_cap if row["max_open_leads"] is None else row["max_open_leads"],
            "open_leads": row["open_leads"],
            "deactivated": row["deactivated_at"] is not None,
        }
        for row in rows
    ]


async def update_agent(
    *,
    uow: UnitsOfWork,
    site_id: str,
    agent_id: str,
    max_open_leads: int | None,
    deactivated: bool,
    now: datetime,
) -> tuple[AgentSettings, list[Lead]]:
    """Set an agent's cap and deactivation; their teams' queues drain into new room, and a
    deactivated agent's open leads go to the next free agent of their team (or its queue)."""
    async with uow(site_id) as tx:
        saved, handed = await assignment.update_agent(
            tx,
            agent_id=agent_id,
            max_open_leads=max_open_leads,
            deactivated=deactivated,
            now=now,
        )
    if deactivated:
        async with uow.read(site_id) as tx:
            held = await tx.store(AssignmentStore).held_by(site_id, agent_id)
        for lead_id in held:  # one unit each: the lead's row first, then its team's lock
            async with uow(site_id) as tx:
                lead = await tx.store(LeadStore).lock(site_id, lead_id)
                if lead is None or lead.assignee != agent_id or not lead.open:
                    continue  # changed meanwhile
                handed.append(
                    await assignment.reassign(tx, lead=lead, reason="agent_unavailable", now=now)
                )
    return saved, handed
