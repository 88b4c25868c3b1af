"""Who gets the next conversation of a team: pure, so every rule is unit-tested."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

AgentStatus = str


@dataclass(frozen=True, slots=True)
class AgentLoad:
    agent_id: str
    status: AgentStatus
    open_chats: int
    max_chats: int
    last_assigned_at: datetime | None = None

    @property
    def free_slots(self) -> int:
        return max(0, self.max_chats - self.open_chats) if self.status == "online" else 0


def pick_agent(agents: Iterable[AgentLoad]) -> AgentLoad | None:
    """The online agent with the fewest open chats and a free slot; ties go to whoever has
    waited longest since their last assignment (never assigned counts as longest)."""
    available = [agent for agent in agents if agent.free_slots > 0]
    if not available:
        return None
    return min(
        available,
        key=lambda agent: (
            agent.open_chats,
            agent.last_assigned_at is not None,
            agent.last_assigned_at or datetime.min,
            agent.agent_id,
        ),
    )


def queue_position(arrivals_before: int) -> int:
    """1-based place in the queue from how many queued conversations arrived earlier."""
    return arrivals_before + 1
