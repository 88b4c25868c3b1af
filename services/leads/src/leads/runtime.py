"""What the routes share for the life of the process (built in main's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
from beckon_edge.console_sessions import ConsoleSessions
from beckon_messaging.outbox import OutboxRelay

from leads.adapters.bus import Bus
from leads.config import Settings
from leads.uow import UnitOfWorkFactory

if TYPE_CHECKING:
    from leads.assignment.presence import PresenceFollower


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool  # for readiness only: use cases go through `uow`
    uow: UnitOfWorkFactory
    bus: Bus
    relay: OutboxRelay
    ready: bool = False
    presence: PresenceFollower | None = None  # agents.presence into leads.presence
    sessions: ConsoleSessions | None = None  # the console's agent sessions, confirmed by chat
