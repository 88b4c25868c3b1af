"""The toolkit's routes under /v1/console: canned replies, a conversation's context and the
variables filled from it, private notes, tags, the Answers search, transfer targets, and
marking a conversation as a lead. Every route names the agent first (agent_of / admin_of)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from beckon_contracts.envelope import Identifier
from beckon_contracts.money import money_locale
from fastapi import Request
from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.responses import Response

from chat import views
from chat.adapters import store as chat_store
from chat.agents import service as agents
from chat.api.common import read_body
from chat.api.console import agent_of
from chat.errors import Conflict, Forbidden, Invalid, NotFound
from chat.features import console_router
from chat.refs import AgentRef
from chat.runtime import Runtime
from chat.text import clean_text
from chat.toolkit import domain, store

router = console_router()
MAX_NOTE_CHARS = 2000


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoteBody(_Body):
    text: str


class CannedBody(_Body):
    shortcut: str
    text: str
    scope: Literal["personal", "team", "site"] = "personal"
    team: Identifier | None = None


class CannedChange(_Body):
    shortcut: str | None = None
    text: str | None = None


class FillBody(_Body):
    text: Annotated[str, StringConstraints(max_length=domain.MAX_CANNED_CHARS * 2)]


class LeadBody(_Body):
    validation: str
    note: str | None = None


def _canned_view(row: Any, *, me: str, admin: bool) -> dict[str, Any]:
    scope = domain.scope_of(row["agent_id"], row["team"])
    return {
        "id": str(row["reply_id"]),
        "shortcut": row["shortcut"],
        "text": row["text"],
        "scope": scope,
        "team": row["team"],
        "editable": domain.may_manage(scope, owner=row["agent_id"], me=me, admin=admin),
    }


# --- canned replies ----------------------------------------------------------------------------


@router.get("/canned")
async def list_canned(
    request: Request, q: str | None = None, manage: bool = False
) -> dict[str, Any]:
    """The replies the agent can use (`?q=` searches shortcut and text, best first); with
    `?manage=true` an admin also gets every team's set, not only their own teams'."""
    rt, ref = await agent_of(request)
    profile = await agents.profile(uow=rt.uow, agent=ref)
    admin = profile["role"] == "admin"
    async with rt.service.pool.acquire() as conn:
        await store.ensure_canned_defaults(conn, ref.site_id)
        rows = list(await store.canned_visible(conn, ref.site_id, ref.agent_id, profile["teams"]))
        if manage and admin:
            seen = {row["reply_id"] for row in rows}
            rows += [
                r
                for r in await store.canned_all_shared(conn, ref.site_id)
                if r["reply_id"] not in seen
            ]
    by_id = {str(row["reply_id"]): row for row in rows}
    found = domain.search_canned(
        (
            domain.Canned(
                key, row["shortcut"], row["text"], domain.scope_of(row["agent_id"], row["team"])
            )
            for key, row in by_id.items()
        ),
        q,
        limit=200 if manage else 50,
    )
    return {
        "replies": [_canned_view(by_id[c.reply_id], me=ref.agent_id, admin=admin) for c in found],
        "variables": list(domain.VARIABLES),
        "can_manage_shared": admin,
    }


@router.post("/canned", status_code=201)
async def create_canned(request: Request) -> dict[str, Any]:
    rt, ref = await agent_of(request)
    body = await read_body(request, CannedBody)
    profile = await agents.profile(uow=rt.uow, agent=ref)
    admin = profile["role"] == "admin"
    if not domain.may_manage(body.scope, owner=ref.agent_id, me=ref.agent_id, admin=admin):
        raise Forbidden("not_admin", "only an admin manages team and site-wide replies")
    shortcut = domain.clean_shortcut(body.shortcut)
    text = domain.clean_canned_text(body.text)
    team = body.team if body.scope == "team" else None
    async with rt.service.pool.acquire() as conn:
        if body.scope == "team":
            if team is None:
                raise Invalid("invalid", "team: a team reply names its team")
            if not await _team_exists(conn, ref.site_id, team):
                raise Invalid("unknown_team", f"team {team!r} does not exist")
        row = await store.insert_canned(
            conn,
            site_id=ref.site_id,
            team=team,
            agent_id=ref.agent_id if body.scope == "personal" else None,
            shortcut=shortcut,
            text=text,
        )
    if row is None:
        raise Conflict("shortcut_taken", f"/{shortcut} is already in that set")
    return {"reply": _canned_view(row, me=ref.agent_id, admin=admin)}


async def _team_exists(conn: Any, site_id: str, team: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM chat.teams WHERE site_id = $1 AND team = $2)",
            site_id,
            team,
        )
    )


async def _managed(rt: Runtime, ref: AgentRef, reply_id: UUID) -> tuple[Any, bool]:
    profile = await agents.profile(uow=rt.uow, agent=ref)
    admin = profile["role"] == "admin"
    async with rt.service.pool.acquire() as conn:
        row = await store.canned(conn, ref.site_id, reply_id)
    if row is None:
        raise NotFound("unknown_reply", "no such canned reply")
    scope = domain.scope_of(row["agent_id"], row["team"])
    if not domain.may_manage(scope, owner=row["agent_id"], me=ref.agent_id, admin=admin):
        if scope == "personal":  # another agent's own replies are not even there for you
            raise NotFound("unknown_reply", "no such canned reply")
        raise Forbidden("not_admin", "only an admin manages team and site-wide replies")
    return row, admin


@router.patch("/canned/{reply_id}")
async def update_canned(request: Request, reply_id: UUID) -> dict[str, Any]:
    rt, ref = await agent_of(request)
    body = await read_body(request, CannedChange)
    row, admin = await _managed(rt, ref, reply_id)
    shortcut = (
        domain.clean_shortcut(body.shortcut) if body.shortcut is not None else row["shortcut"]
    )
    text = domain.clean_canned_text(body.text) if body.text is not None else row["text"]
    async with rt.service.pool.acquire() as conn:
        updated = await store.update_canned(conn, ref.site_id, reply_id, shortcut, text)
    if updated is None:
        raise Conflict("shortcut_taken", f"/{shortcut} is already in that set")
    return {"reply": _canned_view(updated, me=ref.agent_id, admin=admin)}


@router.delete("/canned/{reply_id}", status_code=204)
async def delete_canned(request: Request, reply_id: UUID) -> Response:
    rt, ref = await agent_of(request)
    await _managed(rt, ref, reply_id)
    async with rt.service.pool.acquire() as conn:
        await store.delete_canned(conn, ref.site_id, reply_id)
    return Response(status_code=204)


# --- a conversation's context: the variables' values -----------------------------------------


async def _values(rt: Runtime, ref: AgentRef, conversation_id: UUID) -> dict[str, str]:
    profile = await agents.profile(uow=rt.uow, agent=ref)
    async with rt.service.pool.acquire() as conn:
        row = await store.conversation_row(conn, ref.site_id, conversation_id)
        if row is None:
            raise NotFound("unknown_conversation", "no such conversation")
        snapshot = rt.visitors.visitor(ref.site_id, row["visitor_id"])
        activity = await store.recent_activity(conn, ref.site_id, row["visitor_id"])
        site = await chat_store.site_by_id(conn, ref.site_id)
    facts = domain.context_facts(snapshot, [dict(r) for r in activity])
    return domain.variable_values(
        agent_name=profile["name"],
        # the visitor reads it: money as the site writes it (as its invitations do), not in
        # the agent's own console language
        locale=money_locale(views.site(site)["language"] if site is not None else None),
        visitor_name=row["visitor_name"] or facts["name"],
        product=facts["product"],
        cart_value=facts["cart_value"],
        currency=facts["currency"],
    )


@router.get("/conversations/{conversation_id}/context")
async def context(request: Request, conversation_id: UUID) -> dict[str, Any]:
    """What the canned replies' variables stand for in this conversation (empty if unknown)."""
    rt, ref = await agent_of(request)
    return {"values": await _values(rt, ref, conversation_id)}


@router.post("/conversations/{conversation_id}/fill")
async def fill(request: Request, conversation_id: UUID) -> dict[str, Any]:
    """A canned reply's text with this conversation's values in (for the composer to edit)."""
    rt, ref = await agent_of(request)
    body = await read_body(request, FillBody)
    values = await _values(rt, ref, conversation_id)
    return {"text": domain.fill(body.text, values), "values": values}


# --- private notes ---------------------------------------------------------------------------


@router.post("/conversations/{conversation_id}/notes", status_code=201)
async def add_note(request: Request, conversation_id: UUID) -> dict[str, Any]:
    """A note only agents see: stored, and pushed to the site's consoles on every instance;
    never a message, never on chat.events, never on a visitor's socket."""
    rt, ref = await agent_of(request)
    body = await read_body(request, NoteBody)
    text = clean_text(body.text, max_chars=MAX_NOTE_CHARS)
    note = await rt.service.add_note(ref, conversation_id, text)
    await rt.bus.push_to_agents(
        ref.site_id, {"t": "note", "conversation_id": note["conversation_id"], "note": note}
    )
    return {"note": note}


# --- tags and answers ------------------------------------------------------------------------


@router.get("/tags")
async def list_tags(request: Request) -> dict[str, Any]:
    rt, ref = await agent_of(request)
    async with rt.service.pool.acquire() as conn:
        await store.ensure_objection_tags(conn, ref.site_id)
        rows = await store.tags(conn, ref.site_id)
    return {
        "tags": [
            {
                "tag": row["tag"],
                "label": row["label"],
                "kind": row["kind"],
                "conversations": row["conversations"],
            }
            for row in rows
        ]
    }


@router.get("/answers")
async def answers(
    request: Request,
    tag: Annotated[str, StringConstraints(max_length=40)] | None = None,
    q: Annotated[str, StringConstraints(max_length=200)] | None = None,
) -> dict[str, Any]:
    """Tagged conversations as the visitor's questions and the agents' answers."""
    rt, ref = await agent_of(request)
    tag = (tag or "").strip().lower() or None
    query = (q or "").strip() or None
    async with rt.service.pool.acquire() as conn:
        rows = await store.tagged_conversations(conn, ref.site_id, tag, query, limit=40)
        messages = await store.messages_of(conn, [row["conversation_id"] for row in rows])
    found = []
    for row in rows:
        history = [dict(m) for m in messages.get(row["conversation_id"], [])]
        pairs = domain.qa_pairs(history, query) or domain.qa_pairs(history)
        if not pairs:
            continue
        found.append(
            {
                "conversation_id": str(row["conversation_id"]),
                "visitor_id": row["visitor_id"],
                "team": row["team"],
                "tags": list(row["tags"]),
                "status": row["status"],
                "agent_name": row["agent_name"],
                "created_at": row["created_at"].isoformat(),
                "pairs": pairs[:3],
            }
        )
    return {"answers": found}


# --- transfer --------------------------------------------------------------------------------


@router.get("/transfer-targets")
async def transfer_targets(request: Request) -> dict[str, Any]:
    """Online agents of the site with their load, and the teams with who is online."""
    rt, ref = await agent_of(request)
    async with rt.service.pool.acquire() as conn:
        agents = await store.transfer_agents(conn, ref.site_id)
        teams = await store.transfer_teams(conn, ref.site_id)
    return {
        "agents": [
            {
                "id": row["agent_id"],
                "name": row["name"],
                "avatar_url": row["avatar_url"],
                "status": row["status"],
                "open_chats": row["open_chats"],
                "max_chats": row["max_chats"],
                "teams": list(row["teams"]),
                "me": row["agent_id"] == ref.agent_id,
            }
            for row in agents
        ],
        "teams": [
            {
                "team": row["team"],
                "name": row["name"],
                "online": row["online"],
                "queued": row["queued"],
            }
            for row in teams
        ],
    }


# --- leads -----------------------------------------------------------------------------------


@router.get("/conversations/{conversation_id}/lead")
async def get_lead(request: Request, conversation_id: UUID) -> dict[str, Any]:
    rt, ref = await agent_of(request)
    async with rt.service.pool.acquire() as conn:
        row = await store.lead_mark(conn, ref.site_id, conversation_id)
    return {"lead": views.lead_mark(row) if row is not None else None}


@router.post("/conversations/{conversation_id}/lead")
async def mark_lead(request: Request, conversation_id: UUID) -> dict[str, Any]:
    """Mark (or re-mark) the conversation as a lead; `conversation.lead_marked` goes out."""
    rt, ref = await agent_of(request)
    body = await read_body(request, LeadBody)
    mark, changed = await rt.service.mark_lead(
        ref,
        conversation_id,
        validation=domain.clean_validation(body.validation),
        note=domain.clean_note(body.note),
    )
    return {"lead": mark, "changed": changed}
