"""The agents' use cases."""

from __future__ import annotations

from typing import Any

from argon2 import PasswordHasher

from chat import views
from chat.adapters import store
from chat.errors import NotAuthenticated
from chat.refs import AgentRef
from chat.uow import UnitsOfWork

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The stored form of a password (argon2id)."""
    return _hasher.hash(password)


async def profile(*, uow: UnitsOfWork, agent: AgentRef) -> dict[str, Any]:
    """The agent as the console shows them (name, role, teams, status, limits); 401 if gone."""
    async with uow.read(agent.site_id) as tx:
        row = await store.agent(tx.conn, agent.site_id, agent.agent_id)
    if row is None:
        raise NotAuthenticated("unknown_agent", "log in again")
    return views.agent(row)
