"""The toolkit's use cases: canned replies, a conversation's context and the variables filled
from it, private notes, tags, the Answers search, transfer targets and lead marks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from beckon_contracts.ids import uuid7
from beckon_contracts.money import money_locale

from chat import views
from chat.errors import Conflict, Forbidden, Invalid, NotAuthenticated, NotFound
from chat.features import VisitorLookup
from chat.refs import AgentRef, now_utc
from chat.text import clean_text
from chat.toolkit import domain
from chat.toolkit.domain import Scope
from chat.toolkit.store import CANNED_REPLIES, OBJECTION_TAGS, Row, ToolkitStore
from chat.uow import UnitOfWork, UnitsOfWork

MAX_NOTE_CHARS = 2000
ANSWERS_LIMIT = 40
# a frame for the site's agent consoles on every instance (`Bus.push_to_agents`)
PushToAgents = Callable[[str, dict[str, Any]], Awaitable[None]]


async def _agent(tx: UnitOfWork, agent: AgentRef) -> Row:
    row = await tx.store(ToolkitStore).agent(agent.site_id, agent.agent_id)
    if row is None:
        raise NotAuthenticated("unknown_agent", "log in again")
    return row


async def _conversation(
    tx: UnitOfWork, agent: AgentRef, conversation_id: UUID, *, for_update: bool = False
) -> Row:
    row = await tx.store(ToolkitStore).conversation(
        agent.site_id, conversation_id, for_update=for_update
    )
    if row is None:
        raise NotFound("unknown_conversation", "no such conversation")
    return row


async def ensure_defaults(*, uow: UnitsOfWork, site_id: str, what: str) -> None:
    """The site's default canned replies or objection tags exist from its first use on."""
    async with uow.read(site_id) as tx:
        if await tx.store(ToolkitStore).has_defaults(site_id, what):
            return
    async with uow(site_id) as tx:
        await tx.store(ToolkitStore).create_defaults(site_id, what)


# --- canned replies ----------------------------------------------------------------------------


def canned_view(row: Row, *, me: str, admin: bool) -> dict[str, Any]:
    """A canned reply as the console shows it, with whether `me` may change it."""
    scope = domain.scope_of(row["agent_id"], row["team"])
    return {
        "id": str(row["reply_id"]),
        "shortcut": row["shortcut"],
        "text": row["text"],
        "scope": scope,
        "team": row["team"],
        "editable": domain.may_manage(scope, owner=row["agent_id"], me=me, admin=admin),
    }


async def list_canned(
    *, uow: UnitsOfWork, agent: AgentRef, query: str | None, manage: bool
) -> dict[str, Any]:
    """The replies the agent can use, best match for `query` first; to manage, an admin
    also gets every team's set."""
    await ensure_defaults(uow=uow, site_id=agent.site_id, what=CANNED_REPLIES)
    async with uow.read(agent.site_id) as tx:
        me = await _agent(tx, agent)
        admin = me["role"] == "admin"
        canned = tx.store(ToolkitStore)
        rows = list(await canned.canned_visible(agent.site_id, agent.agent_id, list(me["teams"])))
        if manage and admin:
            seen = {row["reply_id"] for row in rows}
            rows += [
                r
                for r in await canned.canned_all_shared(agent.site_id)
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
        query,
        limit=200 if manage else 50,
    )
    return {
        "replies": [canned_view(by_id[c.reply_id], me=agent.agent_id, admin=admin) for c in found],
        "variables": list(domain.VARIABLES),
        "can_manage_shared": admin,
    }


async def create_canned(
    *,
    uow: UnitsOfWork,
    agent: AgentRef,
    shortcut: str,
    text: str,
    scope: Scope = "personal",
    team: str | None = None,
) -> dict[str, Any]:
    """A new reply in the agent's own set, or (admins) a team's or the site's."""
    async with uow(agent.site_id) as tx:
        admin = (await _agent(tx, agent))["role"] == "admin"
        if not domain.may_manage(scope, owner=agent.agent_id, me=agent.agent_id, admin=admin):
            raise Forbidden("not_admin", "only an admin manages team and site-wide replies")
        shortcut = domain.clean_shortcut(shortcut)
        text = domain.clean_canned_text(text)
        canned = tx.store(ToolkitStore)
        team = team if scope == "team" else None
        if scope == "team":
            if team is None:
                raise Invalid("invalid", "team: a team reply names its team")
            if not await canned.team_exists(agent.site_id, team):
                raise Invalid("unknown_team", f"team {team!r} does not exist")
        row = await canned.insert_canned(
            site_id=agent.site_id,
            team=team,
            agent_id=agent.agent_id if scope == "personal" else None,
            shortcut=shortcut,
            text=text,
        )
        if row is None:
            raise Conflict("shortcut_taken", f"/{shortcut} is already in that set")
    return canned_view(row, me=agent.agent_id, admin=admin)


async def _managed(tx: UnitOfWork, agent: AgentRef, reply_id: UUID) -> tuple[Row, bool]:
    """The reply, if the agent may change it, and whether they are an admin."""
    admin = (await _agent(tx, agent))["role"] == "admin"
    row = await tx.store(ToolkitStore).canned(agent.site_id, reply_id)
    if row is None:
        raise NotFound("unknown_reply", "no such canned reply")
    scope = domain.scope_of(row["agent_id"], row["team"])
    if not domain.may_manage(scope, owner=row["agent_id"], me=agent.agent_id, admin=admin):
        if scope == "personal":  # another agent's own replies are not even there for you
            raise NotFound("unknown_reply", "no such canned reply")
        raise Forbidden("not_admin", "only an admin manages team and site-wide replies")
    return row, admin


async def update_canned(
    *,
    uow: UnitsOfWork,
    agent: AgentRef,
    reply_id: UUID,
    shortcut: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """A reply's new shortcut or text (what is not given stays)."""
    async with uow(agent.site_id) as tx:
        row, admin = await _managed(tx, agent, reply_id)
        shortcut = domain.clean_shortcut(shortcut) if shortcut is not None else row["shortcut"]
        text = domain.clean_canned_text(text) if text is not None else row["text"]
        updated = await tx.store(ToolkitStore).update_canned(
            agent.site_id, reply_id, shortcut, text
        )
        if updated is None:
            raise Conflict("shortcut_taken", f"/{shortcut} is already in that set")
    return canned_view(updated, me=agent.agent_id, admin=admin)


async def delete_canned(*, uow: UnitsOfWork, agent: AgentRef, reply_id: UUID) -> None:
    """Delete a reply the agent may manage (a deleted default stays deleted)."""
    async with uow(agent.site_id) as tx:
        await _managed(tx, agent, reply_id)
        await tx.store(ToolkitStore).delete_canned(agent.site_id, reply_id)


# --- a conversation's context: the variables' values -------------------------------------------


async def context_values(
    *, uow: UnitsOfWork, visitors: VisitorLookup, agent: AgentRef, conversation_id: UUID
) -> dict[str, str]:
    """What the canned replies' variables stand for in this conversation (empty if unknown)."""
    async with uow.read(agent.site_id) as tx:
        me = await _agent(tx, agent)
        row = await _conversation(tx, agent, conversation_id)
        toolkit = tx.store(ToolkitStore)
        activity = await toolkit.recent_activity(agent.site_id, row["visitor_id"])
        site = await toolkit.site(agent.site_id)
    snapshot = visitors.visitor(agent.site_id, row["visitor_id"])
    facts = domain.context_facts(snapshot, [dict(r) for r in activity])
    return domain.variable_values(
        agent_name=me["name"],
        # the visitor reads it: money as the site writes it (as its invitations do), not in
        # the agent's own console language
        locale=money_locale(views.site(site)["language"] if site is not None else None),
        visitor_name=row["visitor_name"] or facts["name"],
        product=facts["product"],
        cart_value=facts["cart_value"],
        currency=facts["currency"],
    )


async def fill(
    *, uow: UnitsOfWork, visitors: VisitorLookup, agent: AgentRef, conversation_id: UUID, text: str
) -> dict[str, Any]:
    """A canned reply's text with this conversation's values in (for the composer to edit)."""
    values = await context_values(
        uow=uow, visitors=visitors, agent=agent, conversation_id=conversation_id
    )
    return {"text": domain.fill(text, values), "values": values}


# --- private notes -----------------------------------------------------------------------------


async def add_note(
    *,
    uow: UnitsOfWork,
    push_to_agents: PushToAgents,
    agent: AgentRef,
    conversation_id: UUID,
    text: str,
) -> dict[str, Any]:
    """A note only agents see: stored, then pushed to the site's consoles on every instance;
    deliberately no outbox record (chat.events reaches the visitor's socket and the
    transcripts the notifier mails)."""
    text = clean_text(text, max_chars=MAX_NOTE_CHARS)
    async with uow(agent.site_id) as tx:
        await _conversation(tx, agent, conversation_id)
        await _agent(tx, agent)
        row = await tx.store(ToolkitStore).insert_note(
            conversation_id=conversation_id, agent_id=agent.agent_id, text=text, now=now_utc()
        )
    note = views.note(row)
    await push_to_agents(
        agent.site_id, {"t": "note", "conversation_id": note["conversation_id"], "note": note}
    )
    return note


# --- tags and answers --------------------------------------------------------------------------


async def list_tags(*, uow: UnitsOfWork, agent: AgentRef) -> list[dict[str, Any]]:
    """The site's tags, objections first, with how many conversations carry each."""
    await ensure_defaults(uow=uow, site_id=agent.site_id, what=OBJECTION_TAGS)
    async with uow.read(agent.site_id) as tx:
        rows = await tx.store(ToolkitStore).tags(agent.site_id)
    return [
        {
            "tag": row["tag"],
            "label": row["label"],
            "kind": row["kind"],
            "conversations": row["conversations"],
        }
        for row in rows
    ]


async def search_answers(
    *, uow: UnitsOfWork, agent: AgentRef, tag: str | None, query: str | None
) -> list[dict[str, Any]]:
    """Tagged conversations as the visitor's questions and the agents' answers."""
    tag = (tag or "").strip().lower() or None
    query = (query or "").strip() or None
    async with uow.read(agent.site_id) as tx:
        toolkit = tx.store(ToolkitStore)
        rows = await toolkit.tagged_conversations(agent.site_id, tag, query, ANSWERS_LIMIT)
        messages = await toolkit.messages_of([row["conversation_id"] for row in rows])
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
    return found


# --- transfer ----------------------------------------------------------------------------------


async def transfer_targets(*, uow: UnitsOfWork, agent: AgentRef) -> dict[str, Any]:
    """Online agents of the site with their load, and the teams with who is online."""
    async with uow.read(agent.site_id) as tx:
        toolkit = tx.store(ToolkitStore)
        agents = await toolkit.transfer_agents(agent.site_id)
        teams = await toolkit.transfer_teams(agent.site_id)
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
                "me": row["agent_id"] == agent.agent_id,
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


# --- leads -------------------------------------------------------------------------------------


async def lead(
    *, uow: UnitsOfWork, agent: AgentRef, conversation_id: UUID
) -> dict[str, Any] | None:
    """The conversation's lead mark (None: not marked); 404 for a conversation the site
    does not have, as every other call about a conversation answers."""
    async with uow.read(agent.site_id) as tx:
        await _conversation(tx, agent, conversation_id)
        row = await tx.store(ToolkitStore).lead_mark(agent.site_id, conversation_id)
    return views.lead_mark(row) if row is not None else None


async def mark_lead(
    *,
    uow: UnitsOfWork,
    agent: AgentRef,
    conversation_id: UUID,
    validation: str,
    note: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Mark (or re-mark) the conversation as a lead: one mark per conversation, and
    `conversation.lead_marked` only when something changed. (mark, changed)."""
    validation = domain.clean_validation(validation)
    note = domain.clean_note(note)
    async with uow(agent.site_id) as tx:
        row = await _conversation(tx, agent, conversation_id, for_update=True)
        await _agent(tx, agent)
        toolkit = tx.store(ToolkitStore)
        existing = await toolkit.lead_mark(agent.site_id, conversation_id, for_update=True)
        if existing is not None and (
            existing["validation"],
            existing["note"],
            existing["agent_id"],
        ) == (validation, note, agent.agent_id):
            return views.lead_mark(existing), False
        mark = await toolkit.save_lead_mark(
            mark_id=existing["mark_id"] if existing is not None else uuid7(),
            conversation_id=conversation_id,
            site_id=agent.site_id,
            visitor_id=row["visitor_id"],
            agent_id=agent.agent_id,
            validation=validation,
            note=note,
        )
        tx.emit(
            "conversation.lead_marked",
            row["visitor_id"],
            str(conversation_id),
            mark_id=mark["mark_id"],
            conversation_id=conversation_id,
            agent_id=agent.agent_id,
            validation=validation,
            note=note,
            email=row["email"] or row["visitor_email"],
            team=row["team"],
        )
    return views.lead_mark(mark), True
