"""The agents' use cases: logging in, who they are, their status, preferences and presence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chat import views
from chat.agents.domain import LoginThrottle, normalise_email
from chat.agents.store import AgentStore
from chat.conversations import assignment
from chat.errors import Invalid, NotAuthenticated, TooMany
from chat.refs import AgentRef, now_utc
from chat.uow import EVERY_SITE, UnitsOfWork

_hasher = PasswordHasher()
# verifying against a real hash keeps a wrong e-mail as slow as a wrong password
_DUMMY_HASH = _hasher.hash("beckon-not-a-password")
MAX_SETTINGS = 50  # keys in an agent's console settings


def hash_password(password: str) -> str:
    """The stored form of a password (argon2id)."""
    return _hasher.hash(password)


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """Who logged in, the session version their cookie carries, and their profile."""

    agent: AgentRef
    session_version: int
    profile: dict[str, Any]


def _unknown() -> NotAuthenticated:
    return NotAuthenticated("unknown_agent", "log in again")


async def login(
    *, uow: UnitsOfWork, throttle: LoginThrottle, email: str, password: str, client: str
) -> LoggedIn:
    """Check an agent's e-mail and password; failures are throttled per address and account."""
    # failures count per client address (spraying) and per account from that address
    # (guessing), so a stranger elsewhere cannot lock the agent out (docs/chat.md)
    wait = throttle.admit(email, client)
    if wait > 0:
        raise TooMany("rate_limited", f"too many attempts; retry in {wait:.0f} s", retry_after=wait)
    async with uow.read(EVERY_SITE) as tx:
        row = await tx.store(AgentStore).by_email(normalise_email(email))
    try:
        _hasher.verify(row["password_hash"] if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        row = None
    if row is None:  # the same refusal for a wrong e-mail and a wrong password
        raise NotAuthenticated("bad_credentials", "wrong e-mail or password")
    throttle.succeeded(email, client)
    return LoggedIn(
        agent=AgentRef(row["site_id"], row["agent_id"]),
        session_version=row["session_version"],
        profile=views.agent(row),
    )


async def profile(*, uow: UnitsOfWork, agent: AgentRef) -> dict[str, Any]:
    """The agent as the console shows them (name, role, teams, status, limits); 401 if gone."""
    async with uow.read(agent.site_id) as tx:
        row = await tx.store(AgentStore).get(agent.site_id, agent.agent_id)
    if row is None:
        raise _unknown()
    return views.agent(row)


async def me(*, uow: UnitsOfWork, agent: AgentRef) -> dict[str, Any]:
    """What the console starts with: the agent, their site and the site's teams."""
    async with uow.read(agent.site_id) as tx:
        agents = tx.store(AgentStore)
        row = await agents.get(agent.site_id, agent.agent_id)
        if row is None:
            raise _unknown()
        site = await agents.site(agent.site_id)
        teams = await agents.site_teams(agent.site_id)
    assert site is not None
    return {
        "agent": views.agent(row),
        "site": views.site(site),
        "teams": [{"team": t["team"], "name": t["name"]} for t in teams],
    }


async def set_status(*, uow: UnitsOfWork, agent: AgentRef, status: str) -> dict[str, Any]:
    """Go online or away; coming online takes the waiting chats the agent has room for."""
    async with uow(agent.site_id, lock=True) as tx:
        agents = tx.store(AgentStore)
        await agents.set_status(agent.site_id, agent.agent_id, status, now_utc())
        await tx.agent_changed(agent.agent_id)
        if status == "online":
            await assignment.drain_queues(tx, await agents.teams_of(agent.agent_id))
        row = await agents.get(agent.site_id, agent.agent_id)
        if row is None:
            raise _unknown()
    return views.agent(row)


async def set_preferences(
    *,
    uow: UnitsOfWork,
    agent: AgentRef,
    locale: str | None,
    settings: dict[str, Any] | None,
) -> dict[str, Any]:
    """The agent's own language and console preferences (notifications, sound, …)."""
    if settings is not None and len(settings) > MAX_SETTINGS:
        raise Invalid("invalid", f"settings: at most {MAX_SETTINGS} keys")
    async with uow(agent.site_id) as tx:
        agents = tx.store(AgentStore)
        await agents.set_preferences(
            agent.site_id,
            agent.agent_id,
            locale,
            orjson.dumps(settings).decode() if settings is not None else None,
        )
        if locale is not None:
            tx.agent_listed(agent.agent_id)  # the directory carries their language
        row = await agents.get(agent.site_id, agent.agent_id)
        if row is None:
            raise _unknown()
    return views.agent(row)


async def heartbeat(*, uow: UnitsOfWork, agent: AgentRef) -> None:
    """The agent's console is still open (the presence sweep leaves them be)."""
    # a touch that tells nobody: the unit stores no outbox records and wakes no relay
    async with uow(agent.site_id) as tx:
        await tx.store(AgentStore).touch(agent.agent_id, now_utc())


async def sweep_absent_agents(*, uow: UnitsOfWork, older_than_s: float) -> int:
    """Agents whose console went silent go offline, and their teams' presence says so."""
    async with uow.read(EVERY_SITE) as tx:
        stale = await tx.store(AgentStore).stale(now_utc() - timedelta(seconds=older_than_s))
    for row in stale:
        async with uow(row["site_id"], lock=True) as tx:
            await tx.store(AgentStore).go_offline(row["agent_id"])
            await tx.agent_changed(row["agent_id"])
    return len(stale)
