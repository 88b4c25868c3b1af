"""The conversations' use cases: what a visitor and an agent do with a chat.

Each one runs in one unit of work: what it changes and the facts it writes to the outbox
commit together, so a committed change is always published (at least once, in order per
conversation). The ones that move a conversation between queue and agents (start, pick-up,
transfer, close) hold the site's assignment lock (`lock=True`).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import orjson
from beckon_contracts.chat_events import Channel, Language
from beckon_contracts.ids import uuid7
from beckon_edge.identity import credential_hash, new_credential, verify_user

from chat.adapters.store import Row
from chat.conversations import assignment, views
from chat.conversations.model import Conversation, EmailReplyEffect, messages_after, seen_grows
from chat.conversations.store import ConversationStore
from chat.errors import Conflict, Forbidden, Invalid, NotAuthenticated, NotFound
from chat.refs import AgentRef, Visitor, now_utc
from chat.uow import UnitOfWork, UnitsOfWork
from chat.views import note as note_view
from chat.views import site as site_settings

Outcome = Literal["shown", "accepted", "declined"]
# what an e-mailed reply did: see `add_email_reply`
EmailReplyOutcome = Literal["added", "reopened", "kept_closed", "duplicate", "skipped"]
_EMAIL_REPLY_OUTCOMES: dict[EmailReplyEffect, EmailReplyOutcome] = {
    "add": "added",
    "reopen": "reopened",
    "keep_closed": "kept_closed",
}
Scope = Literal["queue", "mine", "all"]
# how far an invitation's answer may move it: the first answer stands
_OUTCOME_FROM: dict[str, tuple[str, ...]] = {
    "shown": ("issued",),
    "accepted": ("issued", "shown"),
    "declined": ("issued", "shown"),
}


# --- visitors -------------------------------------------------------------------------------


async def visitor_session(
    *,
    uow: UnitsOfWork,
    site_key: str,
    visitor_id: str,
    origin: str | None,
    credential: str | None,
    user_id: str | None = None,
    user_hash: str | None = None,
) -> dict[str, Any]:
    """The widget's start: the site of the key (refused from an origin it does not allow),
    the browser's credential (a new one, with nothing in it, unless the one presented was
    issued to this visitor), the identity the store vouched for, the settings and the
    conversation this browser (or verified user) reaches."""
    async with uow.read(site_key) as tx:  # no site yet: the key names it
        site = await tx.store(ConversationStore).site_by_key(site_key)
    if site is None:
        raise NotAuthenticated("unknown_site_key", "this site key is not known")
    check_origin(origin, site["allowed_origins"])
    info = site_settings(site)
    identity = identity_of(site, user_id, user_hash)
    verified = user_id if identity == "verified" else None
    issued: str | None = None
    async with uow(site["site_id"]) as tx:
        conversations = tx.store(ConversationStore)
        held = (
            await conversations.credential(site["site_id"], visitor_id, credential_hash(credential))
            if credential
            else None
        )
        if held is None:
            issued = new_credential()
            credential_id = uuid7()
            await conversations.insert_credential(
                credential_id, site["site_id"], visitor_id, credential_hash(issued)
            )
        else:
            credential_id = held["credential_id"]
        if held is None or held["user_id"] != verified:
            await conversations.set_credential_user(credential_id, verified)
        visitor = Visitor(site["site_id"], visitor_id, credential_id, verified)
        conversation = await conversations.latest_conversation(visitor)
        available = await conversations.online_agents(site["site_id"], info["default_team"])
        view = await _visitor_view(conversations, conversation) if conversation else None
    return {
        "site_row": site,
        "visitor": visitor,
        "credential": issued,  # None: the one presented stands
        "identity": identity,
        "site": info,
        "conversation": view,
        "agents_available": available > 0,
    }


def check_origin(origin: str | None, allowed: list[str] | tuple[str, ...]) -> None:
    """The widget's calls come from a browser on one of the site's pages, which always sends
    Origin: a call without one is a script elsewhere (a probe with someone's visitor id)."""
    if not origin:
        raise Forbidden("origin_required", "the widget API answers browsers only: send Origin")
    if origin.rstrip("/").lower() not in allowed:
        raise Forbidden("origin_not_allowed", "this page's origin is not allowed for the site")


Identity = Literal["none", "verified", "unverified"]


def identity_of(site: Row, user_id: str | None, user_hash: str | None) -> Identity:
    """Whether the user id the page passed is vouched for by the store (its hash valid under
    one of the site's identity secrets)."""
    if not user_id:
        return "none"
    secrets = [entry["secret"] for entry in identity_secrets_of(site)]
    return "verified" if verify_user(user_id, user_hash, secrets) else "unverified"


def identity_secrets_of(site: Row) -> list[dict[str, Any]]:
    value = site["identity_secrets"]
    parsed = orjson.loads(value) if isinstance(value, str | bytes) else (value or [])
    return list(parsed)


async def start_conversation(
    *,
    uow: UnitsOfWork,
    visitor: Visitor,
    invitation_id: UUID | None,
    team: str | None,
    text: str | None,
    client_id: str | None,
    language: Language | None = None,
) -> tuple[dict[str, Any], bool]:
    """The visitor's one live conversation, created if needed; (conversation, created).
    `language`: the widget's (e-mails to the visitor are written in it)."""
    async with uow(visitor.site_id, lock=True) as tx:
        conversations = tx.store(ConversationStore)
        existing = await conversations.visitor_live_conversation(visitor)
        if existing is not None:
            return await _visitor_view(conversations, existing), False
        rule_id = None
        inviter: str | None = None  # the agent who invited personally, if any
        if invitation_id is not None:
            invitation = await conversations.invitation(
                visitor.site_id, visitor.visitor_id, invitation_id
            )
            if invitation is None:
                raise NotFound("unknown_invitation", "no such invitation for you")
            team, rule_id = invitation["team"], invitation["rule_id"]
            tx.continue_invitation_trace(invitation, "conversation.started")
            if invitation["personal"]:
                inviter = views.invitation_agent_id(invitation)
        team = await _chosen_team(conversations, visitor.site_id, team)
        conversation_id = uuid7()
        inserted = await conversations.insert_conversation(
            conversation_id=conversation_id,
            site_id=visitor.site_id,
            visitor_id=visitor.visitor_id,
            team=team,
            status="queued",
            invitation_id=invitation_id,
            rule_id=rule_id,
            email=None,
            credential_id=visitor.credential_id,
            user_id=visitor.user_id,
        )
        if not inserted:  # only without the lock (never here), kept as the last guard
            existing = await conversations.visitor_live_conversation(visitor)
            assert existing is not None
            return await _visitor_view(conversations, existing), False
        tx.emit(
            "conversation.started",
            visitor.visitor_id,
            str(conversation_id),
            conversation_id=conversation_id,
            team=team,
            invitation_id=invitation_id,
            rule_id=rule_id,
            language=language,
        )
        row = await conversations.lock_conversation(visitor.site_id, conversation_id)
        assert row is not None
        if inviter is None or not await assignment.assign_to_inviter(tx, row, inviter):
            await assignment.try_assign(tx, row, "auto")
        tx.teams.add(team)
        if text:
            await _add_message(
                tx, row, author="visitor", agent=None, text=text, client_id=client_id
            )
        created = await conversations.conversation(visitor.site_id, conversation_id)
        assert created is not None
        return await _visitor_view(conversations, created), True


async def visitor_message(
    *, uow: UnitsOfWork, visitor: Visitor, text: str, client_id: str | None
) -> dict[str, Any]:
    """The visitor writes in their live conversation (again with a `client_id`: once)."""
    async with uow(visitor.site_id) as tx:
        conversations = tx.store(ConversationStore)
        live = await conversations.visitor_live_conversation(visitor)
        if live is None:
            raise Conflict("no_conversation", "start a conversation first")
        row = await conversations.lock_conversation(visitor.site_id, live["conversation_id"])
        if row is None:
            raise Conflict("conversation_closed", "this conversation has ended")
        Conversation.of(row).check_live()
        stored, _ = await _add_message(
            tx, row, author="visitor", agent=None, text=text, client_id=client_id
        )
    return views.message(stored)


async def add_email_reply(
    *,
    uow: UnitsOfWork,
    site_id: str,
    command_id: UUID,
    conversation_id: UUID,
    text: str,
    attachments: list[dict[str, Any]],
) -> EmailReplyOutcome:
    """The visitor's e-mailed reply (a `chat.inbound` command) as their message, once per
    command; a closed conversation goes back to its team's queue (`Conversation.on_email_reply`)."""
    async with uow(site_id, lock=True) as tx:
        conversations = tx.store(ConversationStore)
        row = await conversations.lock_conversation(site_id, conversation_id)
        if row is None:
            owner = await conversations.conversation_site(conversation_id)
            if owner is None and await conversations.site_by_id(site_id) is None:
                # another chat deployment's (staging beside production on one cluster)
                return "skipped"
            if owner is None:
                raise NotFound("unknown_conversation", f"no conversation {conversation_id}")
            raise Forbidden(
                "wrong_site", f"conversation {conversation_id} is not of site {site_id!r}"
            )
        if await conversations.message_by_command(conversation_id, command_id) is not None:
            return "duplicate"
        conversation = Conversation.of(row)
        elsewhere = False
        if conversation.closed:
            live = await conversations.live_conversation(site_id, row["visitor_id"])
            elsewhere = live is not None and live["conversation_id"] != conversation_id
        effect = conversation.on_email_reply(visitor_chatting_elsewhere=elsewhere)
        if effect == "reopen":
            await conversations.reopen(conversation_id)
            # chat.events has no "reopened": the move into the team's queue is the fact the
            # consoles (and the queue) already know, a transfer to the team with nobody yet
            tx.emit(
                "conversation.transferred",
                row["visitor_id"],
                str(conversation_id),
                conversation_id=conversation_id,
                from_agent_id=row["agent_id"],
                to_agent_id=None,
                to_team=row["team"],
                note=None,
            )
            reopened = await conversations.lock_conversation(site_id, conversation_id)
            assert reopened is not None
            await assignment.try_assign(tx, reopened, "auto")
            tx.teams.add(row["team"])
            row = reopened
        await _add_message(
            tx,
            row,
            author="visitor",
            agent=None,
            text=text,
            client_id=None,
            channel="email",
            attachments=attachments,
            command_id=command_id,
        )
    return _EMAIL_REPLY_OUTCOMES[effect]


async def message_row(
    *, uow: UnitsOfWork, site_id: str, conversation_id: UUID, message_id: UUID
) -> Row | None:
    """One stored message of the site (what a live frame of an e-mailed reply adds to its
    `message.sent`: the attachment notes)."""
    async with uow.read(site_id) as tx:
        return await tx.store(ConversationStore).message(site_id, conversation_id, message_id)


async def visitor_messages(
    *, uow: UnitsOfWork, visitor: Visitor, after: int
) -> list[dict[str, Any]]:
    """The messages of the visitor's latest conversation after seq `after`."""
    async with uow.read(visitor.site_id) as tx:
        conversations = tx.store(ConversationStore)
        conversation = await conversations.latest_conversation(visitor)
        if conversation is None:
            return []
        rows = await conversations.messages(conversation["conversation_id"], messages_after(after))
    return [views.message(row) for row in rows]


async def visitor_seen(
    *, uow: UnitsOfWork, visitor: Visitor, conversation_id: UUID, seq: int
) -> bool:
    """The widget showed the visitor's conversation up to `seq` (its panel open, the page
    visible): kept when it grows, and then published as `conversation.seen` (the notifier
    e-mails only agents' messages the visitor has not seen). True when it grew."""
    async with uow(visitor.site_id) as tx:
        conversations = tx.store(ConversationStore)
        row = await conversations.seen_state(visitor, conversation_id)
        if row is None:
            raise NotFound("unknown_conversation", "no such conversation for you")
        if not seen_grows(seq=seq, last_seq=row["last_seq"], seen_seq=row["seen_seq"]):
            return False
        if not await conversations.mark_seen(conversation_id, seq):
            return False  # another tab's report got there first
        tx.emit(
            "conversation.seen",
            visitor.visitor_id,
            str(conversation_id),
            conversation_id=conversation_id,
            up_to_seq=seq,
            seen_at=now_utc(),
        )
    return True


async def visitor_hello(*, uow: UnitsOfWork, visitor: Visitor) -> dict[str, Any]:
    """The widget socket's greeting: the conversation, else the invitations still open."""
    async with uow.read(visitor.site_id) as tx:
        conversations = tx.store(ConversationStore)
        conversation = await conversations.latest_conversation(visitor)
        invitations = await conversations.pending_invitations(
            visitor.site_id, visitor.visitor_id, now_utc()
        )
        view = await _visitor_view(conversations, conversation) if conversation else None
    live = conversation is not None and Conversation.of(conversation).live
    return {
        "t": "hello",
        "conversation": view,
        "invitations": [] if live else [views.invitation(row) for row in invitations],
    }


async def capture_email(*, uow: UnitsOfWork, visitor: Visitor, email: str) -> None:
    """The visitor leaves an e-mail: theirs, and their latest conversation's."""
    async with uow(visitor.site_id) as tx:
        conversations = tx.store(ConversationStore)
        conversation = await conversations.latest_conversation(visitor)
        conversation_id = conversation["conversation_id"] if conversation else None
        await conversations.set_email(visitor.site_id, visitor.visitor_id, conversation_id, email)
        tx.emit(
            "conversation.email_captured",
            visitor.visitor_id,
            str(conversation_id or f"{visitor.site_id}:{visitor.visitor_id}"),
            conversation_id=conversation_id,
            email=email,
        )


async def leave_offline_message(
    *,
    uow: UnitsOfWork,
    visitor: Visitor,
    email: str,
    text: str,
    name: str | None,
    team: str | None,
    language: Language | None = None,
) -> dict[str, Any]:
    """Nobody is online: the visitor's message is kept as an offline conversation
    (`language`: the widget's, for the e-mails that answer it)."""
    async with uow(visitor.site_id) as tx:
        conversations = tx.store(ConversationStore)
        team = await _chosen_team(conversations, visitor.site_id, team)
        conversation_id = uuid7()
        await conversations.insert_conversation(
            conversation_id=conversation_id,
            site_id=visitor.site_id,
            visitor_id=visitor.visitor_id,
            team=team,
            status="offline",
            invitation_id=None,
            rule_id=None,
            email=email,
            credential_id=visitor.credential_id,
            user_id=visitor.user_id,
        )
        await conversations.set_email(visitor.site_id, visitor.visitor_id, None, email)
        row = await conversations.lock_conversation(visitor.site_id, conversation_id)
        assert row is not None
        await _add_message(tx, row, author="visitor", agent=None, text=text, client_id=None)
        tx.emit(
            "offline.message_left",
            visitor.visitor_id,
            str(conversation_id),
            conversation_id=conversation_id,
            team=team,
            email=email,
            name=name,
            text=text,
            language=language,
        )
        stored = await conversations.conversation(visitor.site_id, conversation_id)
    assert stored is not None
    return views.conversation(stored)


async def invitation_outcome(
    *, uow: UnitsOfWork, visitor: Visitor, invitation_id: UUID, outcome: Outcome
) -> None:
    """The widget showed, accepted or declined an invitation (the first answer stands)."""
    async with uow(visitor.site_id) as tx:
        conversations = tx.store(ConversationStore)
        row = await conversations.invitation(visitor.site_id, visitor.visitor_id, invitation_id)
        if row is None:
            raise NotFound("unknown_invitation", "no such invitation for you")
        moved = await conversations.set_invitation_status(
            invitation_id, outcome, _OUTCOME_FROM[outcome]
        )
        if not moved:
            return  # answered before: nothing new to publish
        tx.continue_invitation_trace(row, f"invitation.{outcome}")
        tx.emit(
            f"invitation.{outcome}",
            visitor.visitor_id,
            f"{visitor.site_id}:{visitor.visitor_id}",
            invitation_id=invitation_id,
            rule_id=row["rule_id"],
            team=row["team"],
        )


async def record_invitation(*, uow: UnitsOfWork, values: dict[str, Any]) -> bool:
    """Keep an invitation from triggers (idempotent on its id); True when it is new."""
    async with uow(values["site_id"]) as tx:
        conversations = tx.store(ConversationStore)
        if await conversations.site_by_id(values["site_id"]) is None:
            return False
        new: bool = await conversations.insert_invitation(values)
    return new


# --- agents ---------------------------------------------------------------------------------


async def agent_conversations(
    *, uow: UnitsOfWork, agent: AgentRef, scope: Scope
) -> list[dict[str, Any]]:
    """The agent's list: the queue of their teams, their open chats, or the site's latest."""
    async with uow.read(agent.site_id) as tx:
        conversations = tx.store(ConversationStore)
        rows = await conversations.conversations_for_agent(agent.site_id, agent.agent_id, scope)
        last = await conversations.last_messages([row["conversation_id"] for row in rows])
    return [views.agent_conversation(row, last.get(row["conversation_id"])) for row in rows]


async def agent_conversation(
    *, uow: UnitsOfWork, agent: AgentRef, conversation_id: UUID
) -> dict[str, Any]:
    """The conversation with its timeline: the invitation that opened it, its messages,
    and, for agents only, the private notes and the transfers (each with its note)."""
    async with uow.read(agent.site_id) as tx:
        conversations = tx.store(ConversationStore)
        row = await conversations.conversation(agent.site_id, conversation_id)
        if row is None:
            raise NotFound("unknown_conversation", "no such conversation")
        messages = await conversations.messages(conversation_id)
        notes = await conversations.notes(agent.site_id, conversation_id)
        transfers = await conversations.transfers(agent.site_id, conversation_id)
        opening = await _opening(conversations, row)
    return {
        "conversation": views.agent_conversation(row),
        "opening": views.opening(opening, for_agent=True),
        "messages": [views.message(m) for m in messages],
        "notes": [note_view(n) for n in notes],
        "transfers": [views.transfer(t) for t in transfers],
    }


async def conversation_row(*, uow: UnitsOfWork, site_id: str, conversation_id: UUID) -> Row | None:
    """The conversation's row as the views take it (None: not of this site)."""
    async with uow.read(site_id) as tx:
        return await tx.store(ConversationStore).conversation(site_id, conversation_id)


async def conversation_rows(
    *, uow: UnitsOfWork, site_id: str, conversation_ids: list[UUID]
) -> list[Row]:
    """Those of the conversations that are of this site, as `conversation_row` gives each."""
    async with uow.read(site_id) as tx:
        rows: list[Row] = await tx.store(ConversationStore).conversations(site_id, conversation_ids)
    return rows


async def last_message(*, uow: UnitsOfWork, site_id: str, conversation_id: UUID) -> Row | None:
    """The conversation's newest message (what an agent's list shows beside it)."""
    async with uow.read(site_id) as tx:
        last = await tx.store(ConversationStore).last_messages([conversation_id])
    return last.get(conversation_id)


async def agent_message(
    *,
    uow: UnitsOfWork,
    agent: AgentRef,
    conversation_id: UUID,
    text: str,
    client_id: str | None,
) -> dict[str, Any]:
    """The agent who holds the conversation replies (again with a `client_id`: once)."""
    async with uow(agent.site_id) as tx:
        conversations = tx.store(ConversationStore)
        row = await _locked(conversations, agent, conversation_id)
        Conversation.of(row).check_reply(agent.agent_id)
        author = await conversations.agent(agent.site_id, agent.agent_id)
        stored, _ = await _add_message(
            tx, row, author="agent", agent=author, text=text, client_id=client_id
        )
    return views.message(stored)


async def pickup(*, uow: UnitsOfWork, agent: AgentRef, conversation_id: UUID) -> dict[str, Any]:
    """The agent takes a queued conversation of their team, if they have room."""
    async with uow(agent.site_id, lock=True) as tx:
        conversations = tx.store(ConversationStore)
        row = await _locked(conversations, agent, conversation_id)
        conversation = Conversation.of(row)
        conversation.check_queued()
        me = await _agent_row(conversations, agent)
        conversation.check_pickup(
            teams=list(me["teams"]), open_chats=me["open_chats"], max_chats=me["max_chats"]
        )
        await assignment.assign(tx, row, agent.agent_id, "pickup")
        updated = await conversations.conversation(agent.site_id, conversation_id)
    assert updated is not None
    return views.agent_conversation(updated)


async def transfer(
    *,
    uow: UnitsOfWork,
    agent: AgentRef,
    conversation_id: UUID,
    to_agent: str | None,
    to_team: str | None,
    note: str | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Hand the conversation to an agent or a team; (the conversation, the transfer as the
    agents' timeline shows it, with its note)."""
    async with uow(agent.site_id, lock=True) as tx:
        conversations = tx.store(ConversationStore)
        row = await _locked(conversations, agent, conversation_id)
        conversation = Conversation.of(row)
        admin = False
        if conversation.held_by_another(agent.agent_id):
            admin = (await _agent_row(conversations, agent))["role"] == "admin"
        conversation.check_transfer(agent.agent_id, admin=admin)
        previous = row["agent_id"]
        if to_agent is not None:
            target = await conversations.agent(agent.site_id, to_agent)
            if target is None:
                raise NotFound("unknown_agent", "no such agent")
            if target["status"] != "online":
                raise Conflict("agent_unavailable", f"{target['name']} is not online")
            if target["agent_id"] != previous and target["open_chats"] >= target["max_chats"]:
                raise Conflict("at_limit", f"{target['name']} is at their limit")
            # an agent outside the conversation's team takes it into one of theirs
            teams = list(target["teams"])
            team = row["team"] if row["team"] in teams or not teams else teams[0]
            if team != row["team"]:
                await conversations.set_team(conversation_id, team)
                row = await _locked(conversations, agent, conversation_id)
            await assignment.assign(tx, row, target["agent_id"], "transfer")
        elif to_team is not None:
            if not await conversations.team_exists(agent.site_id, to_team):
                raise NotFound("unknown_team", f"team {to_team!r} does not exist")
            team = to_team
            await conversations.end_assignment(conversation_id, now_utc(), "requeue")
            await conversations.requeue(conversation_id, to_team)
            row = await _locked(conversations, agent, conversation_id)
            await assignment.try_assign(tx, row, "transfer")
            tx.teams.add(to_team)
        else:
            raise Invalid("missing_target", "give agent_id or team")
        updated = await conversations.conversation(agent.site_id, conversation_id)
        assert updated is not None
        tx.emit(
            "conversation.transferred",
            row["visitor_id"],
            str(conversation_id),
            conversation_id=conversation_id,
            from_agent_id=previous,
            to_agent_id=updated["agent_id"],
            to_team=team,
            note=None,  # the note is for agents only: in chat.transfers, never published
        )
        moved = await conversations.insert_transfer(
            transfer_id=uuid7(),
            conversation_id=conversation_id,
            site_id=agent.site_id,
            by_agent_id=agent.agent_id,
            from_agent_id=previous,
            to_agent_id=updated["agent_id"],
            to_team=team,
            target="agent" if to_agent is not None else "team",
            note=note,
            now=now_utc(),
        )
        if previous is not None:
            await tx.agent_changed(previous)
            await assignment.drain_queues(tx, await conversations.agent_teams(previous))
        updated = await conversations.conversation(agent.site_id, conversation_id)
    assert updated is not None
    return views.agent_conversation(updated), views.transfer(moved)


async def tag(
    *, uow: UnitsOfWork, agent: AgentRef, conversation_id: UUID, tags: list[str]
) -> dict[str, Any]:
    """The conversation's tags become `tags`; new ones join the site's list."""
    async with uow(agent.site_id) as tx:
        conversations = tx.store(ConversationStore)
        row = await _locked(conversations, agent, conversation_id)
        await conversations.set_tags(conversation_id, tags)
        await conversations.remember_tags(agent.site_id, tags)
        tx.emit(
            "conversation.tagged",
            row["visitor_id"],
            str(conversation_id),
            conversation_id=conversation_id,
            tags=tags,
        )
        updated = await conversations.conversation(agent.site_id, conversation_id)
    assert updated is not None
    return views.agent_conversation(updated)


async def close(*, uow: UnitsOfWork, agent: AgentRef, conversation_id: UUID) -> dict[str, Any]:
    """The agent ends the conversation; their freed slot takes the next queued chat."""
    async with uow(agent.site_id, lock=True) as tx:
        conversations = tx.store(ConversationStore)
        row = await _locked(conversations, agent, conversation_id)
        Conversation.of(row).check_close(agent.agent_id)
        closed_at = now_utc()
        await conversations.close(conversation_id, closed_at)
        await conversations.end_assignment(conversation_id, closed_at, "closed")
        tx.emit(
            "conversation.closed",
            row["visitor_id"],
            str(conversation_id),
            conversation_id=conversation_id,
            closed_by="agent",
            agent_id=row["agent_id"],
            team=row["team"],
            messages=row["last_seq"],
            email=row["email"],
        )
        tx.teams.add(row["team"])
        if row["agent_id"] is not None:
            await tx.agent_changed(row["agent_id"])
            await assignment.drain_queues(tx, await conversations.agent_teams(row["agent_id"]))
        updated = await conversations.conversation(agent.site_id, conversation_id)
    assert updated is not None
    return views.agent_conversation(updated)


# --- inside a unit of work ------------------------------------------------------------------


async def _chosen_team(conversations: ConversationStore, site_id: str, team: str | None) -> str:
    """The team asked for, else the site's default; refused when the site has no such team."""
    if team is None:
        site = await conversations.site_by_id(site_id)
        assert site is not None
        team = str(site_settings(site)["default_team"])
    if not await conversations.team_exists(site_id, team):
        raise Invalid("unknown_team", f"team {team!r} does not exist")
    return team


async def _opening(conversations: ConversationStore, row: Row) -> Row | None:
    """The invitation that opened the conversation (its text: the agent's first words)."""
    if row["invitation_id"] is None:
        return None
    return await conversations.invitation(row["site_id"], row["visitor_id"], row["invitation_id"])


async def _visitor_view(conversations: ConversationStore, row: Row) -> dict[str, Any]:
    """The visitor's conversation as loaded whole (not in frames): with its opening line,
    so the widget shows the invitation's words as the agent's first, as the console does."""
    opening = views.opening(await _opening(conversations, row), for_agent=False)
    return {**views.conversation(row), "opening": opening}


async def _locked(conversations: ConversationStore, agent: AgentRef, conversation_id: UUID) -> Row:
    """The conversation's row, locked for this unit; 404 when it is not of the agent's site."""
    row = await conversations.lock_conversation(agent.site_id, conversation_id)
    if row is None:
        raise NotFound("unknown_conversation", "no such conversation")
    return row


async def _agent_row(conversations: ConversationStore, agent: AgentRef) -> Row:
    """The calling agent's row; 401 when the account is gone."""
    row = await conversations.agent(agent.site_id, agent.agent_id)
    if row is None:
        raise NotAuthenticated("unknown_agent", "log in again")
    return row


async def _add_message(
    tx: UnitOfWork,
    row: Row,
    *,
    author: str,
    agent: Row | None,
    text: str,
    client_id: str | None,
    channel: Channel = "chat",
    attachments: list[dict[str, Any]] | None = None,
    command_id: UUID | None = None,
) -> tuple[Any, bool]:
    """The message (a stored row, or what was just written, keyed alike) and whether new."""
    conversations = tx.store(ConversationStore)
    if client_id is not None:
        existing = await conversations.message_by_client_id(
            row["conversation_id"], author, client_id
        )
        if existing is not None:
            return existing, False
    message_id = uuid7()
    sent_at = now_utc()
    seq = await conversations.insert_message(
        message_id=message_id,
        conversation_id=row["conversation_id"],
        author=author,
        agent_id=agent["agent_id"] if agent else None,
        text=text,
        client_id=client_id,
        now=sent_at,
        channel=channel,
        attachments=attachments,
        command_id=command_id,
    )
    tx.emit(
        "message.sent",
        row["visitor_id"],
        str(row["conversation_id"]),
        conversation_id=row["conversation_id"],
        message_id=message_id,
        seq=seq,
        author=author,
        agent_id=agent["agent_id"] if agent else None,
        agent_name=agent["name"] if agent else None,
        agent_avatar_url=agent["avatar_url"] if agent else None,
        text=text,
        client_id=client_id,
        sent_at=sent_at,
        channel=channel,
    )
    stored = {
        "message_id": message_id,
        "conversation_id": row["conversation_id"],
        "seq": seq,
        "author": author,
        "agent_id": agent["agent_id"] if agent else None,
        "text": text,
        "client_id": client_id,
        "created_at": sent_at,
        "agent_name": agent["name"] if agent else None,
        "agent_avatar_url": agent["avatar_url"] if agent else None,
        "channel": channel,
        "attachments": attachments or [],
    }
    return stored, True
