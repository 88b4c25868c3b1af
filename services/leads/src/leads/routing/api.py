"""The admin's routes of routing and assignment: the routing rules (read, save a version,
"which team would get this lead"), the site's teams, and each agent's cap and deactivation.

A routing document's problems come back all at once, each at its place (422
`invalid_routing_rules` with `errors: [{loc, msg}]`, e.g. `rules[2].conditions[0].country[0]`),
so the console marks every field; the tester's sample lead is located under `lead.` and a
draft document under `document.`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from beckon_contracts.envelope import IDENTIFIER_PATTERN, Identifier
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

from leads.api.common import read_body
from leads.api.deps import CurrentAdmin, Rt, Valid
from leads.api.openapi import errors
from leads.assignment.store import AgentSettings
from leads.domain.routing import RoutingRules
from leads.routing import service
from leads.routing.store import Team

router = APIRouter(prefix="/v1/leads", tags=["routing"], responses=errors(401, 403, 422, 503))

MAX_DOCUMENT_BYTES = 1_048_576  # 200 rules with long conditions fit easily
MAX_TEAMS = 100


class _Any(RootModel[Any]):
    """Any JSON: a routing document is checked by the use case, every problem located."""


async def _document(request: Request) -> Any:
    return (await read_body(request, _Any, MAX_DOCUMENT_BYTES)).root


# the OpenAPI document shows the rules' shape; the service checks it with located problems
_document.body_model = RoutingRules  # type: ignore[attr-defined]
Document = Annotated[Any, Depends(_document)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoutingTest(_Strict):
    """A sample lead (`LeadFacts`) and, to try a draft before saving it, a `document`."""

    lead: Any
    document: Any = None


class TeamIn(_Strict):
    team: Identifier
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    lead_agent_id: Identifier | None = Field(
        default=None, description="The team lead: SLA breaches escalate to them"
    )


class Teams(_Strict):
    teams: list[TeamIn] = Field(max_length=MAX_TEAMS)


class AgentIn(_Strict):
    max_open_leads: int | None = Field(
        default=None, ge=0, le=1000, description="None: the site's default cap"
    )
    deactivated: bool = False


def _now() -> datetime:
    return datetime.now(UTC)


def _team(team: Team) -> dict[str, Any]:
    return {"team": team.team, "name": team.name, "lead_agent_id": team.lead_agent_id}


def _agent(agent: AgentSettings) -> dict[str, Any]:
    return {
        "agent_id": agent.agent_id,
        "max_open_leads": agent.max_open_leads,
        "deactivated": agent.deactivated_at is not None,
    }


@router.get("/routing")
async def get_routing(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    """The routing rules in force (`version` null: none saved, the site's default team)."""
    view = await service.get_routing(uow=rt.uow, site_id=admin.site_id)
    return view.to_dict()


@router.put("/routing")
async def save_routing(rt: Rt, admin: CurrentAdmin, document: Document) -> dict[str, Any]:
    """Save a routing document as the next version (it is in force at once)."""
    view = await service.save_routing(
        uow=rt.uow, site_id=admin.site_id, document=document, by=admin.agent_id, now=_now()
    )
    return view.to_dict()


@router.post("/routing/test")
async def test_routing(rt: Rt, admin: CurrentAdmin, body: Valid[RoutingTest]) -> dict[str, Any]:
    """Which team would get this lead, and why: every rule, every condition."""
    tried = await service.try_routing(
        uow=rt.uow, site_id=admin.site_id, lead=body.lead, document=body.document
    )
    return tried.to_dict()


@router.get("/teams")
async def list_teams(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    teams = await service.list_teams(uow=rt.uow, site_id=admin.site_id)
    return {"teams": [_team(team) for team in teams]}


@router.put("/teams")
async def save_teams(rt: Rt, admin: CurrentAdmin, body: Valid[Teams]) -> dict[str, Any]:
    """The site's teams become these (a team the routing rules name cannot go)."""
    teams = [Team(t.team, t.name, t.lead_agent_id) for t in body.teams]
    saved = await service.save_teams(uow=rt.uow, site_id=admin.site_id, teams=teams)
    return {"teams": [_team(team) for team in saved]}


@router.get("/agents")
async def list_agents(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    """The site's agents: teams, presence, cap and open leads."""
    return {"agents": await service.list_agents(uow=rt.uow, site_id=admin.site_id)}


@router.put("/agents/{agent_id}")
async def update_agent(
    rt: Rt,
    admin: CurrentAdmin,
    agent_id: Annotated[str, Path(pattern=IDENTIFIER_PATTERN)],
    body: Valid[AgentIn],
) -> dict[str, Any]:
    """Set an agent's open-lead cap and deactivation; queues drain into the new room."""
    saved, handed = await service.update_agent(
        uow=rt.uow,
        site_id=admin.site_id,
        agent_id=agent_id,
        max_open_leads=body.max_open_leads,
        deactivated=body.deactivated,
        now=_now(),
    )
    return {**_agent(saved), "assigned": [str(lead.lead_id) for lead in handed]}
