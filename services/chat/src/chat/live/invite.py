"""Personal invitations: an agent invites one visitor from the live list, with their own words,
name and avatar. Stored like triggers' invitations (`personal`, no rule) and shown on the
visitor's widget the same way, through a `chat.signals` signal every instance hears; when the
visitor accepts, `ChatService.start_conversation` gives the chat to the inviting agent if they
are online with room."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from beckon_contracts.chat_signals import AgentCard, InvitationSignal, ShownInvitation
from beckon_contracts.ids import uuid7

from chat import views
from chat.adapters import store
from chat.errors import Conflict, NotAuthenticated
from chat.refs import AgentRef, now_utc
from chat.runtime import Runtime

INVITATION_TTL_S = 600.0  # as long as a visitor idle on a page still counts as on site
MAX_MESSAGE_CHARS = 1000  # the contract's limit for invitation messages


async def send_personal_invitation(
    rt: Runtime, *, agent: AgentRef, visitor_id: str, message: str, live: dict[str, Any] | None
) -> dict[str, Any]:
    """Store the invitation and show it on the visitor's widget; refuse when it cannot help."""
    if live is None:
        raise Conflict("not_live", "this visitor is not on the site now")
    if live.get("chatting"):
        raise Conflict("already_chatting", "this visitor is already in a chat")
    async with rt.service.pool.acquire() as conn, conn.transaction():
        row = await store.agent(conn, agent.site_id, agent.agent_id)
        if row is None:
            raise NotAuthenticated("unknown_agent", "log in again")
        if row["status"] != "online":
            raise Conflict("agent_offline", "go online to invite visitors")
        if await store.live_conversation(conn, agent.site_id, visitor_id) is not None:
            raise Conflict("already_chatting", "this visitor is already in a chat")
        teams = list(row["teams"])
        if teams:
            team = teams[0]
        else:
            site = await store.site_by_id(conn, agent.site_id)
            assert site is not None
            team = str(views.site(site)["default_team"])
        expires_at = now_utc() + timedelta(seconds=INVITATION_TTL_S)
        card = {"agent_id": row["agent_id"], "name": row["name"], "avatar_url": row["avatar_url"]}
        invitation_id = uuid7()
        await store.insert_invitation(
            conn,
            {
                "invitation_id": invitation_id,
                "site_id": agent.site_id,
                "visitor_id": visitor_id,
                "rule_id": None,
                "team": team,
                "message": message,
                "agent": card,
                "personal": True,
                "expires_at": expires_at,
            },
        )
    shown = {
        "id": str(invitation_id),
        "message": message,
        "agent": views.agent_card(row["name"], row["avatar_url"]),
        "team": team,
        "expires_at": expires_at.isoformat(),
        "rule_id": None,
    }
    # the same signal InvitationConsumer sends for triggers' invitations
    await rt.bus.signal(
        InvitationSignal(
            site_id=agent.site_id,
            visitor_id=visitor_id,
            invitation=ShownInvitation(
                id=invitation_id,
                message=message,
                agent=AgentCard(name=row["name"], avatar_url=row["avatar_url"])
                if row["name"]
                else None,
                team=team,
                expires_at=expires_at,
            ),
        )
    )
    return {**shown, "visitor_id": visitor_id, "personal": True}
