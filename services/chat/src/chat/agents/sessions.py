"""Console sessions: a signed cookie names an agent and a session version; the session ends
when the agent logs out, gets a new password or is deactivated (the version moves on)."""

from __future__ import annotations

import time

from chat.agents.store import AgentStore
from chat.errors import NotAuthenticated
from chat.refs import AgentRef
from chat.uow import UnitsOfWork

# how long an instance trusts what it last read of an agent's session (a logout, a new
# password or a deactivation reaches every instance within this, the one that did it at once)
SESSION_CHECK_S = 5.0


class Sessions:
    """This instance's view of which sessions are still current."""

    def __init__(self, uow: UnitsOfWork) -> None:
        self.uow = uow
        # agent -> (when read, session version) of agents seen active
        self._seen: dict[AgentRef, tuple[float, int]] = {}

    async def ensure(self, ref: AgentRef, version: int) -> None:
        """Refuse a session that has ended since it began: the agent logged out, got a new
        password, or was deactivated (or deleted). What an instance read is trusted for a
        few seconds, so a console call costs no query; a newer session is re-read at once."""
        now = time.monotonic()
        cached = self._seen.get(ref)
        if cached is None or now - cached[0] >= SESSION_CHECK_S or version > cached[1]:
            async with self.uow.read(ref.site_id) as tx:
                row = await tx.store(AgentStore).session(ref.site_id, ref.agent_id)
            if row is None or not row["active"]:
                self._seen.pop(ref, None)
                raise NotAuthenticated("deactivated", "this account is not active; ask an admin")
            if len(self._seen) > 10_000:
                self._seen.clear()
            cached = self._seen[ref] = (now, row["session_version"])
        if version != cached[1]:
            raise NotAuthenticated(
                "session_ended",
                "this session has ended (logged out, new password or account changed); "
                "log in again",
            )

    async def end(self, ref: AgentRef, version: int) -> bool:
        """Log out: every session of the agent ends, if `version` is still current (an
        older cookie cannot end newer sessions). True when they ended."""
        async with self.uow(ref.site_id) as tx:
            ended: bool = await tx.store(AgentStore).end_sessions(
                ref.site_id, ref.agent_id, version
            )
            if ended:  # the agent's consoles on every instance hear of it and check now
                tx.agents.add(ref.agent_id)
        self.forget(ref)
        return ended

    def forget(self, ref: AgentRef) -> None:
        """The agent's sessions changed here: this instance re-reads them on the next call."""
        self._seen.pop(ref, None)
