"""Assignment: every function here runs inside a unit of work that holds the site's
assignment lock (`uow(site_id, lock=True)`), so concurrent requests on any number of
instances never put an agent above their limit."""

from __future__ import annotations

from collections.abc import Iterable

from chat.adapters.store import Row
from chat.conversations.model import pick_agent
from chat.conversations.store import ConversationStore
from chat.refs import now_utc
from chat.uow import UnitOfWork


async def assign(tx: UnitOfWork, row: Row, agent_id: str, how: str) -> None:
    """Give the conversation to the agent (`how`: auto, personal, pickup, transfer, dequeue)."""
    conversations = tx.store(ConversationStore)
    agent = await conversations.agent(tx.site_id, agent_id)
    assert agent is not None
    now = now_utc()
    await conversations.assign(row["conversation_id"], agent_id, now)
    await conversations.start_assignment(
        conversation_id=row["conversation_id"],
        site_id=tx.site_id,
        agent_id=agent_id,
        team=row["team"],
        how=how,
        now=now,
    )
    tx.emit(
        "conversation.assigned",
        row["visitor_id"],
        str(row["conversation_id"]),
        conversation_id=row["conversation_id"],
        team=row["team"],
        agent_id=agent_id,
        agent_name=agent["name"],
        agent_avatar_url=agent["avatar_url"],
        how=how,
    )
    await tx.agent_changed(agent_id)


async def try_assign(tx: UnitOfWork, row: Row, how: str) -> bool:
    """Give the conversation to the team's agent with the most room; False if nobody has any."""
    chosen = pick_agent(await tx.store(ConversationStore).team_loads(tx.site_id, row["team"]))
    if chosen is None:
        return False
    await assign(tx, row, chosen.agent_id, how)
    return True


async def assign_to_inviter(tx: UnitOfWork, row: Row, agent_id: str) -> bool:
    """A personal invitation's chat goes to the agent who wrote it, if they have room."""
    agent = await tx.store(ConversationStore).agent(tx.site_id, agent_id)
    if agent is None or agent["status"] != "online":
        return False
    if agent["open_chats"] >= agent["max_chats"]:
        return False
    await assign(tx, row, agent_id, "personal")
    return True


async def drain_queues(tx: UnitOfWork, teams: Iterable[str]) -> None:
    """Hand queued conversations, oldest first, to agents who have room now."""
    for team in sorted(set(teams)):
        while True:
            queued = await tx.store(ConversationStore).oldest_queued(tx.site_id, team)
            if queued is None or not await try_assign(tx, queued, "dequeue"):
                break
            tx.teams.add(team)


async def rebalance(tx: UnitOfWork, *, agent_ids: Iterable[str], teams: Iterable[str]) -> None:
    """Agents' limits, teams or accounts changed (an admin's change, in a unit of work with
    `lock=True`): waiting chats go to agents who have room now, and the teams' presence is
    republished on commit (capacity for triggers)."""
    tx.teams.update(teams)
    for agent_id in agent_ids:
        await tx.agent_changed(agent_id)
    await drain_queues(tx, set(tx.teams))
