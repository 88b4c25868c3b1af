"""Teams, agents and site settings for a site's admins, and the public set-password call
(the use cases are in `service.py`).

Inviting an agent creates them without a usable password and hands back a single-use link
(`/console/#set-password=TOKEN`, valid 72 h; only its SHA-256 is stored). The token is in the
URL's fragment, so it never reaches a server log or a Referer header.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chat.admin import service
from chat.admin.rules_api import Feed, Json
from chat.api.deps import CurrentAdmin, Rt, Valid, refuse_cross_site

router = APIRouter()  # included by the feature's router, under /v1/console

TeamId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeamBody(_Body):
    team: TeamId
    name: Name


class RenameBody(_Body):
    name: Name


class MemberBody(_Body):
    agent_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class InviteBody(_Body):
    name: Name
    email: Annotated[Email, StringConstraints(max_length=254)]
    role: Literal["agent", "admin"] = "agent"
    teams: list[TeamId] = Field(default_factory=list, max_length=50)
    max_chats: int = Field(default=5, ge=1, le=50)


AvatarUrl = Annotated[str, StringConstraints(max_length=500, pattern=r"^(https?://[^\s\"'<>]+)?$")]


class AgentChangeBody(_Body):
    name: Name | None = None
    # the picture the visitor sees beside the agent's name ("" removes it)
    avatar_url: AvatarUrl | None = None
    role: Literal["agent", "admin"] | None = None
    max_chats: int | None = Field(default=None, ge=1, le=50)
    teams: list[TeamId] | None = Field(default=None, max_length=50)


class AcceptBody(_Body):
    token: Annotated[str, StringConstraints(min_length=20, max_length=200)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


# --- teams ---------------------------------------------------------------------------------


@router.get("/admin/teams")
async def list_teams(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    return {"teams": await service.list_teams(uow=rt.uow, site_id=admin.site_id)}


@router.post("/admin/teams", status_code=201)
async def create_team(rt: Rt, admin: CurrentAdmin, body: Valid[TeamBody]) -> dict[str, Any]:
    teams = await service.create_team(
        uow=rt.uow, site_id=admin.site_id, team=body.team, name=body.name
    )
    return {"teams": teams}


@router.post("/admin/teams/{team}")
async def rename_team(
    rt: Rt, admin: CurrentAdmin, team: str, body: Valid[RenameBody]
) -> dict[str, Any]:
    teams = await service.rename_team(uow=rt.uow, site_id=admin.site_id, team=team, name=body.name)
    return {"teams": teams}


@router.post("/admin/teams/{team}/members")
async def add_member(
    rt: Rt, admin: CurrentAdmin, team: str, body: Valid[MemberBody]
) -> dict[str, Any]:
    teams = await service.add_member(
        uow=rt.uow, site_id=admin.site_id, team=team, agent_id=body.agent_id
    )
    return {"teams": teams}


@router.post("/admin/teams/{team}/members/{agent_id}/remove")
async def remove_member(rt: Rt, admin: CurrentAdmin, team: str, agent_id: str) -> dict[str, Any]:
    teams = await service.remove_member(
        uow=rt.uow, site_id=admin.site_id, team=team, agent_id=agent_id
    )
    return {"teams": teams}


# --- agents --------------------------------------------------------------------------------


@router.get("/admin/agents")
async def list_agents(rt: Rt, admin: CurrentAdmin) -> dict[str, Any]:
    return {"agents": await service.list_agents(uow=rt.uow, site_id=admin.site_id)}


@router.post("/admin/agents", status_code=201)
async def invite_agent(rt: Rt, admin: CurrentAdmin, body: Valid[InviteBody]) -> dict[str, Any]:
    """A new agent and their one-time set-password link (shown once, never stored)."""
    return await service.invite_agent(
        uow=rt.uow,
        admin=admin,
        name=body.name,
        email=body.email,
        role=body.role,
        teams=body.teams,
        max_chats=body.max_chats,
    )


@router.post("/admin/agents/{agent_id}")
async def change_agent(
    rt: Rt, admin: CurrentAdmin, agent_id: str, body: Valid[AgentChangeBody]
) -> dict[str, Any]:
    """Name, role, chat limit (1 to 50) and teams of an agent."""
    return await service.change_agent(
        uow=rt.uow,
        admin=admin,
        agent_id=agent_id,
        name=body.name,
        avatar_url=body.avatar_url,
        role=body.role,
        max_chats=body.max_chats,
        teams=body.teams,
    )


@router.post("/admin/agents/{agent_id}/invite")
async def reinvite_agent(rt: Rt, admin: CurrentAdmin, agent_id: str) -> dict[str, Any]:
    """A fresh set-password link (the earlier ones stop working); reactivates on use."""
    return await service.reinvite_agent(uow=rt.uow, admin=admin, agent_id=agent_id)


@router.post("/admin/agents/{agent_id}/deactivate")
async def deactivate_agent(rt: Rt, admin: CurrentAdmin, agent_id: str) -> dict[str, Any]:
    """The agent can no longer log in, goes offline and leaves every team."""
    return await service.deactivate_agent(
        uow=rt.uow, sessions=rt.sessions, admin=admin, agent_id=agent_id
    )


@router.post("/invite/accept", dependencies=[Depends(refuse_cross_site)])
async def accept_invite(rt: Rt, body: Valid[AcceptBody]) -> dict[str, Any]:
    """Public: set one's password with an invitation token (single use, expiring); the
    agent's earlier sessions end."""
    return await service.set_password(
        uow=rt.uow, sessions=rt.sessions, token=body.token, password=body.password
    )


# --- site settings -------------------------------------------------------------------------


@router.get("/admin/site")
async def get_site(rt: Rt, admin: CurrentAdmin, feed: Feed) -> dict[str, Any]:
    return {"site": await service.site_settings(uow=rt.uow, feed=feed, site_id=admin.site_id)}


@router.post("/admin/site")
async def change_site(rt: Rt, admin: CurrentAdmin, feed: Feed, body: Json) -> Any:
    """Origins, widget colour and greeting, typing preview, language, offline text, default
    team, timezone and business hours. Invalid fields come back located, nothing is saved.
    The change is published whole on `sites.config` (outbox, same transaction): the tracker
    takes the origins, the workers the timezone and business hours, within seconds. The
    rules are never touched: a timezone or hours equal to what the page showed are not
    saved, so the form's other fields never pin them on the site."""
    site = await service.change_site(
        uow=rt.uow, feed=feed, sites=rt.sites, site_id=admin.site_id, data=body
    )
    return {"site": site}


class IdentityBody(_Body):
    action: Literal["generate", "remove", "enforce"]
    secret_id: Annotated[str, StringConstraints(max_length=32)] | None = None
    verification: bool | None = None


@router.post("/admin/site/identity")
async def change_identity(
    rt: Rt, admin: CurrentAdmin, feed: Feed, body: Valid[IdentityBody]
) -> dict[str, Any]:
    """Identity verification (docs/identity.md): generate a secret (shown once, in
    `new_secret`; the previous one stays valid until removed), remove one, or turn
    enforcement on or off. Published on `sites.config` for the tracker."""
    identity = await service.change_identity(
        uow=rt.uow,
        feed=feed,
        sites=rt.sites,
        site_id=admin.site_id,
        action=body.action,
        secret_id=body.secret_id,
        verification=body.verification,
    )
    return {"identity": identity}
