"""The live list's use cases: list who is on the site now, and invite one of them personally.

A personal invitation is an agent inviting one visitor from the live list with their own
words, name and avatar. It is stored like triggers' invitations (`personal`, no rule) and shown
on the visitor's widget the same way, through a `chat.signals` signal every instance hears;
when the visitor accepts, the chat goes to the inviting agent if they are online with room
(`conversations.assignment.assign_to_inviter`). Refused when it cannot help: the visitor is
not on the site now or already chats, or the agent is not online.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from beckon_contracts.chat_signals import AgentCard, ChatSignal, InvitationSignal, ShownInvitation
from beckon_contracts.ids import uuid7

from chat import views
from chat.errors import Conflict, NotAuthenticated, Unavailable
from chat.live.domain import Filter, SortKey, select
from chat.live.store import LiveStore
from chat.refs import AgentRef, now_utc
from chat.text import clean_text
from chat.uow import UnitsOfWork

INVITATION_TTL_S = 600.0  # as long as a visitor idle on a page still counts as on site
MAX_MESSAGE_CHARS = 1000  # the contract's limit for invitation messages

Signal = Callable[[ChatSignal], Awaitable[None]]  # Bus.signal: news for every instance's sockets


class LiveRows(Protocol):
    """The live list's rows of a site (`live.domain.Registry`)."""

    def rows(self, site_id: str) -> Iterator[dict[str, Any]]: ...

    def count(self, site_id: str) -> int: ...


class LiveList(Protocol):
    """This instance's live list as the use cases need it (`live.reader.LiveVisitors`)."""

    @property
    def registry(self) -> LiveRows: ...

    @property
    def loaded(self) -> asyncio.Event: ...

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None: ...

    def note_invited(self, site_id: str, visitor_id: str) -> None: ...


L = TypeVar("L", bound=LiveList)


def running(live: L | None) -> L:
    """The live list, or Unavailable while it has not started."""
    if live is None:
        raise Unavailable("starting", "the live list is not running yet")
    return live


def visitors(
    *,
    live: LiveList | None,
    agent: AgentRef,
    wanted: Filter,
    sort: SortKey = "score",
    descending: bool = True,
    limit: int = 10_000,
) -> dict[str, Any]:
    """Every visitor on the agent's site now that `wanted` matches (compact rows, sorted)."""
    found = running(live)
    rows = select(
        found.registry.rows(agent.site_id), wanted, sort=sort, descending=descending, limit=limit
    )
    return {
        "visitors": rows,
        "count": len(rows),
        "total": found.registry.count(agent.site_id),
        "loaded": found.loaded.is_set(),
    }


async def invite(
    *,
    uow: UnitsOfWork,
    live: LiveList | None,
    signal: Signal,
    agent: AgentRef,
    visitor_id: str,
    message: str,
) -> dict[str, Any]:
    """Store the agent's personal invitation and show it on the visitor's widget."""
    message = clean_text(message, max_chars=MAX_MESSAGE_CHARS, field="message")
    found = running(live)
    snapshot = found.visitor(agent.site_id, visitor_id)
    if snapshot is None:
        raise Conflict("not_live", "this visitor is not on the site now")
    if snapshot.get("chatting"):
        raise Conflict("already_chatting", "this visitor is already in a chat")
    async with uow(agent.site_id) as tx:
        stored = tx.store(LiveStore)
        row = await stored.agent(agent.site_id, agent.agent_id)
        if row is None:
            raise NotAuthenticated("unknown_agent", "log in again")
        if row["status"] != "online":
            raise Conflict("agent_offline", "go online to invite visitors")
        if await stored.chatting(agent.site_id, visitor_id):
            raise Conflict("already_chatting", "this visitor is already in a chat")
        teams = list(row["teams"])
        team = teams[0] if teams else await stored.default_team(agent.site_id)
        expires_at = now_utc() + timedelta(seconds=INVITATION_TTL_S)
        invitation_id = uuid7()
        await stored.insert_invitation(
            {
                "invitation_id": invitation_id,
                "site_id": agent.site_id,
                "visitor_id": visitor_id,
                "rule_id": None,
                "team": team,
                "message": message,
                "agent": {
                    "agent_id": row["agent_id"],
                    "name": row["name"],
                    "avatar_url": row["avatar_url"],
                },
                "personal": True,
                "expires_at": expires_at,
            }
        )
    # the same signal InvitationConsumer sends for triggers' invitations
    await signal(
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
    found.note_invited(agent.site_id, visitor_id)
    return {
        "id": str(invitation_id),
        "message": message,
        "agent": views.agent_card(row["name"], row["avatar_url"]),
        "team": team,
        "expires_at": expires_at.isoformat(),
        "rule_id": None,
        "visitor_id": visitor_id,
        "personal": True,
    }
