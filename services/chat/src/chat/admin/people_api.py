"""Teams, agents and site settings for a site's admins, and the public set-password call.

Changes to who is in a team or how many chats an agent takes change the team's capacity, so
they republish the team on `agents.presence` through the outbox in the same transaction (as
the chat service's own use cases do), under the site's assignment lock; the triggers workers
size invitations from that topic.

Inviting an agent creates them without a usable password and hands back a single-use link
(`/console/#set-password=TOKEN`, valid 72 h; only its SHA-256 is stored). The token is in the
URL's fragment, so it never reaches a server log or a Referer header.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from beckon_contracts.rules import SiteRules
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chat.adapters import store
from chat.admin import domain
from chat.admin import store as admin_store
from chat.admin.rules_api import current_rules
from chat.agents.domain import normalise_email
from chat.agents.service import hash_password
from chat.api.common import problem, read_body, read_json, runtime
from chat.api.console import admin_of
from chat.api.deps import same_origin
from chat.conversations import assignment
from chat.errors import ChatError, Conflict, Forbidden, Gone, Invalid, NotFound
from chat.refs import AgentRef
from chat.runtime import Runtime

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


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _now() -> datetime:
    return datetime.now(UTC)


# --- teams ---------------------------------------------------------------------------------


async def _teams(rt: Runtime, site_id: str) -> list[dict[str, Any]]:
    async with rt.service.pool.acquire() as conn:
        rows = await admin_store.teams(conn, site_id)
    return [
        {"team": row["team"], "name": row["name"], "members": orjson.loads(row["members"])}
        for row in rows
    ]


@router.get("/admin/teams")
async def list_teams(request: Request) -> dict[str, Any]:
    rt, agent = await admin_of(request)
    return {"teams": await _teams(rt, agent.site_id)}


@router.post("/admin/teams", status_code=201)
async def create_team(request: Request) -> dict[str, Any]:
    rt, agent = await admin_of(request)
    body = await read_body(request, TeamBody)
    async with rt.service.pool.acquire() as conn:
        if not await admin_store.create_team(conn, agent.site_id, body.team, body.name):
            raise Conflict("team_exists", f"team {body.team!r} already exists")
    return {"teams": await _teams(rt, agent.site_id)}


@router.post("/admin/teams/{team}")
async def rename_team(request: Request, team: str) -> dict[str, Any]:
    rt, agent = await admin_of(request)
    body = await read_body(request, RenameBody)
    async with rt.service.pool.acquire() as conn:
        if not await admin_store.rename_team(conn, agent.site_id, team, body.name):
            raise NotFound("unknown_team", f"team {team!r} does not exist")
    return {"teams": await _teams(rt, agent.site_id)}


async def _membership(request: Request, team: str, agent_id: str, add: bool) -> dict[str, Any]:
    rt, admin = await admin_of(request)
    site_id = admin.site_id
    async with rt.uow(site_id, lock=True) as tx:
        conn = tx.conn
        if not await store.team_exists(conn, site_id, team):
            raise NotFound("unknown_team", f"team {team!r} does not exist")
        member = await admin_store.agent_row(conn, site_id, agent_id)
        if member is None:
            raise NotFound("unknown_agent", "no such agent")
        if add:
            if member["deactivated_at"] is not None:
                raise Conflict("agent_deactivated", f"{member['name']} is deactivated")
            await admin_store.add_member(conn, site_id, team, agent_id)
        else:
            await admin_store.remove_member(conn, site_id, team, agent_id)
        await assignment.rebalance(tx, agent_ids=[agent_id], teams=[team])
    return {"teams": await _teams(rt, site_id)}


@router.post("/admin/teams/{team}/members")
async def add_member(request: Request, team: str) -> dict[str, Any]:
    body = await read_body(request, MemberBody)
    return await _membership(request, team, body.agent_id, add=True)


@router.post("/admin/teams/{team}/members/{agent_id}/remove")
async def remove_member(request: Request, team: str, agent_id: str) -> dict[str, Any]:
    return await _membership(request, team, agent_id, add=False)


# --- agents --------------------------------------------------------------------------------


def _agent(row: Any) -> dict[str, Any]:
    return {
        "id": row["agent_id"],
        "email": row["email"],
        "name": row["name"],
        "avatar_url": row["avatar_url"],
        "role": row["role"],
        "status": row["status"],
        "open_chats": row["open_chats"],
        "max_chats": row["max_chats"],
        "teams": list(row["teams"]),
        "active": row["deactivated_at"] is None,
        "invite_pending": bool(row["invite_pending"]) and row["deactivated_at"] is None,
        "last_seen_at": _iso(row["last_seen_at"]),
        "created_at": _iso(row["created_at"]),
    }


async def _agents(rt: Runtime, site_id: str) -> list[dict[str, Any]]:
    async with rt.service.pool.acquire() as conn:
        rows = await admin_store.agents(conn, site_id)
    return [_agent(row) for row in rows]


@router.get("/admin/agents")
async def list_agents(request: Request) -> dict[str, Any]:
    rt, agent = await admin_of(request)
    return {"agents": await _agents(rt, agent.site_id)}


async def _check_teams(conn: Any, site_id: str, teams: list[str]) -> None:
    for team in teams:
        if not await store.team_exists(conn, site_id, team):
            raise Invalid("unknown_team", f"team {team!r} does not exist")


async def _new_invite(conn: Any, site_id: str, agent_id: str, by: str) -> dict[str, Any]:
    token, digest = domain.new_invite_token()
    now = _now()
    expires = now + timedelta(seconds=domain.INVITE_TTL_S)
    await admin_store.insert_invite(
        conn,
        token_hash=digest,
        site_id=site_id,
        agent_id=agent_id,
        created_by=by,
        expires_at=expires,
        now=now,
    )
    return {
        "token": token,
        "path": f"/console/#set-password={token}",
        "expires_at": expires.isoformat(),
    }


def _email_unavailable(email: str) -> ChatError:
    # one address is one login across all sites; the answer says no more than that it
    # cannot be used, never whose it is (docs/console-admin.md)
    return Conflict(
        "email_unavailable",
        f"{email} cannot be used for a new agent here; invite them with another address",
    )


@router.post("/admin/agents", status_code=201)
async def invite_agent(request: Request) -> dict[str, Any]:
    """A new agent and their one-time set-password link (shown once, never stored)."""
    rt, admin = await admin_of(request)
    body = await read_body(request, InviteBody)
    site_id = admin.site_id
    teams = sorted(set(body.teams))
    async with rt.uow(site_id, lock=True) as tx:
        conn = tx.conn
        await _check_teams(conn, site_id, teams)
        email = normalise_email(body.email)
        holder = await admin_store.email_site(conn, email)
        if holder == site_id:
            raise Conflict("email_taken", f"{email} is already an agent of this site")
        if holder is not None:
            raise _email_unavailable(email)
        base = domain.agent_id_for(site_id, email)
        agent_id, n = base, 1
        while await admin_store.agent_id_taken(conn, agent_id):
            n += 1
            agent_id = f"{base}-{n}"
        try:
            await admin_store.insert_agent(
                conn,
                site_id=site_id,
                agent_id=agent_id,
                email=email,
                name=body.name,
                role=body.role,
                max_chats=body.max_chats,
            )
        except asyncpg.UniqueViolationError:  # invited on another site at the same moment
            raise _email_unavailable(email) from None
        for team in teams:
            await admin_store.add_member(conn, site_id, team, agent_id)
        await assignment.rebalance(tx, agent_ids=[], teams=teams)
        invite = await _new_invite(conn, site_id, agent_id, admin.agent_id)
    agents = await _agents(rt, site_id)
    return {"agent": next(a for a in agents if a["id"] == agent_id), "invite": invite}


@router.post("/admin/agents/{agent_id}")
async def change_agent(request: Request, agent_id: str) -> dict[str, Any]:
    """Name, role, chat limit (1 to 50) and teams of an agent."""
    rt, admin = await admin_of(request)
    body = await read_body(request, AgentChangeBody)
    site_id = admin.site_id
    async with rt.uow(site_id, lock=True) as tx:
        conn = tx.conn
        row = await admin_store.agent_row(conn, site_id, agent_id)
        if row is None:
            raise NotFound("unknown_agent", "no such agent")
        if row["deactivated_at"] is not None:
            raise Conflict("agent_deactivated", f"{row['name']} is deactivated")
        demoted = body.role == "agent" and row["role"] == "admin"
        if demoted and await admin_store.active_admins(conn, site_id) <= {agent_id}:
            raise Conflict("last_admin", "the site needs at least one admin")
        before = await admin_store.teams_of(conn, site_id, agent_id)
        await admin_store.update_agent(
            conn,
            site_id,
            agent_id,
            name=body.name,
            role=body.role,
            max_chats=body.max_chats,
            avatar_url=body.avatar_url,
        )
        after = before
        if body.teams is not None:
            after = set(body.teams)
            await _check_teams(conn, site_id, sorted(after))
            for team in sorted(before - after):
                await admin_store.remove_member(conn, site_id, team, agent_id)
            for team in sorted(after - before):
                await admin_store.add_member(conn, site_id, team, agent_id)
        # presence carries the name and avatar the widget shows with invitations
        capacity = (
            body.max_chats is not None or body.name is not None or body.avatar_url is not None
        )
        touched = (before | after) if capacity else (before ^ after)
        await assignment.rebalance(tx, agent_ids=[agent_id], teams=touched)
    agents = await _agents(rt, site_id)
    return {"agent": next(a for a in agents if a["id"] == agent_id)}


@router.post("/admin/agents/{agent_id}/invite")
async def reinvite_agent(request: Request, agent_id: str) -> dict[str, Any]:
    """A fresh set-password link (the earlier ones stop working); reactivates on use."""
    rt, admin = await admin_of(request)
    async with rt.service.pool.acquire() as conn, conn.transaction():
        row = await admin_store.agent_row(conn, admin.site_id, agent_id)
        if row is None:
            raise NotFound("unknown_agent", "no such agent")
        invite = await _new_invite(conn, admin.site_id, agent_id, admin.agent_id)
    return {"invite": invite}


@router.post("/admin/agents/{agent_id}/deactivate")
async def deactivate_agent(request: Request, agent_id: str) -> dict[str, Any]:
    """The agent can no longer log in, goes offline and leaves every team."""
    rt, admin = await admin_of(request)
    site_id = admin.site_id
    if agent_id == admin.agent_id:
        raise Conflict("deactivate_self", "another admin must deactivate you")
    async with rt.uow(site_id, lock=True) as tx:
        conn = tx.conn
        row = await admin_store.agent_row(conn, site_id, agent_id)
        if row is None:
            raise NotFound("unknown_agent", "no such agent")
        open_chats = await admin_store.open_chats(conn, site_id, agent_id)
        if open_chats:
            raise Conflict(
                "agent_has_chats",
                f"{row['name']} has {open_chats} open chat(s): transfer or close them first",
            )
        teams = await admin_store.teams_of(conn, site_id, agent_id)
        await admin_store.deactivate(conn, site_id, agent_id, _now())
        await assignment.rebalance(tx, agent_ids=[agent_id], teams=teams)
    rt.sessions.forget(AgentRef(site_id, agent_id))
    agents = await _agents(rt, site_id)
    return {"agent": next(a for a in agents if a["id"] == agent_id)}


@router.post("/invite/accept")
async def accept_invite(request: Request) -> dict[str, Any]:
    """Public: set one's password with an invitation token (single use, expiring); the
    agent's earlier sessions end."""
    rt = runtime(request)
    if not same_origin(request.headers.get("origin"), request.headers.get("host")):
        raise Forbidden("cross_site", "the console only accepts calls from its own pages")
    body = await read_body(request, AcceptBody)
    weak = domain.password_problem(body.password)
    if weak is not None:
        raise Invalid("weak_password", weak)
    token_hash = domain.token_hash(body.token)
    # argon2 is slow on purpose: never spend it on a link that cannot work (nor inside the
    # transaction); the link is taken for good below, once, under the transaction
    async with rt.service.pool.acquire() as conn:
        if not await admin_store.invite_is_open(conn, token_hash, _now()):
            raise Gone("invite_invalid", "this link was used already or has expired")
    password_hash = hash_password(body.password)
    async with rt.service.pool.acquire() as conn, conn.transaction():
        taken = await admin_store.take_invite(conn, token_hash, _now())
        if taken is None:
            raise Gone("invite_invalid", "this link was used already or has expired")
        row = await admin_store.set_password(
            conn, taken["site_id"], taken["agent_id"], password_hash
        )
        if row is None:
            raise Gone("invite_invalid", "this account no longer exists")
    rt.sessions.forget(AgentRef(taken["site_id"], taken["agent_id"]))
    return {"ok": True, "email": row["email"], "name": row["name"]}


# --- site settings -------------------------------------------------------------------------


def _worker_settings(site_settings: dict[str, Any], rules: SiteRules | None) -> dict[str, Any]:
    """Timezone and business hours as the workers apply them: the site's own, else its
    rules document's, else UTC and always open."""
    timezone = site_settings.get("timezone")
    hours = site_settings.get("business_hours")
    rules_hours = rules.business_hours if rules is not None else None
    return {
        "timezone": timezone or (rules.timezone if rules is not None else "UTC"),
        "timezone_source": "site" if timezone else ("rules" if rules is not None else "default"),
        "business_hours": hours
        if hours is not None
        else (rules_hours.model_dump(mode="json") if rules_hours is not None else None),
        "business_hours_source": "site"
        if hours is not None
        else ("rules" if rules_hours is not None else "default"),
    }


def _site(row: Any, rules: SiteRules | None) -> dict[str, Any]:
    settings = admin_store.settings_of(row)
    return {
        "site_id": row["site_id"],
        "name": row["name"],
        "site_key": row["site_key"],
        "write_key": row["write_key"],
        "allowed_origins": list(row["allowed_origins"]),
        "greeting": settings.get("greeting", ""),
        "color": settings.get("color", "#1f6feb"),
        "typing_preview": bool(settings.get("typing_preview", True)),
        "language": settings.get("language", "auto"),
        "offline_message": settings.get("offline_message", ""),
        "default_team": settings.get("default_team", "sales"),
        **_worker_settings(settings, rules),
    }


@router.get("/admin/site")
async def get_site(request: Request) -> dict[str, Any]:
    rt, agent = await admin_of(request)
    rules, _ = await current_rules(rt, agent.site_id)
    async with rt.service.pool.acquire() as conn:
        row = await admin_store.site(conn, agent.site_id)
    assert row is not None
    return {"site": _site(row, rules)}


@router.post("/admin/site")
async def change_site(request: Request) -> Any:
    """Origins, widget colour and greeting, typing preview, language, offline text, default
    team, timezone and business hours. Invalid fields come back located, nothing is saved.
    The change is published whole on `sites.config` (outbox, same transaction): the tracker
    takes the origins, the workers the timezone and business hours, within seconds. The
    rules are never touched: a timezone or hours equal to what the page showed are not
    saved, so the form's other fields never pin them on the site."""
    rt, agent = await admin_of(request)
    data = await read_json(request)
    try:
        change = domain.SiteSettingsChange.model_validate(data)
    except ValidationError as exc:
        errors = domain.problems(exc)
        return problem(
            422,
            "invalid",
            f"{errors[0].loc}: {errors[0].msg}",
            errors=[e.to_dict() for e in errors],
        )
    rules, _ = await current_rules(rt, agent.site_id)
    async with rt.service.pool.acquire() as conn, conn.transaction():
        if change.default_team is not None and not await store.team_exists(
            conn, agent.site_id, change.default_team
        ):
            raise Invalid("unknown_team", f"team {change.default_team!r} does not exist")
        before = await admin_store.site(conn, agent.site_id)
        assert before is not None
        own = admin_store.settings_of(before)
        patch = domain.unchanged_worker_settings(
            change.settings_patch(), _worker_settings(own, rules), own
        )
        await admin_store.update_site(
            conn, agent.site_id, allowed_origins=change.allowed_origins, settings_patch=patch
        )
        await admin_store.publish_site(conn, agent.site_id)
        row = await admin_store.site(conn, agent.site_id)
    assert row is not None
    rt.relay.kick()
    rt.sites.forget(agent.site_id)
    return {"site": _site(row, rules)}
