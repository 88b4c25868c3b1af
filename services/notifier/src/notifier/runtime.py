"""What the routes share for the life of the process (built in main's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from beckon_edge.console_sessions import ConsoleSessions
from beckon_messaging.bus import Bus
from beckon_messaging.outbox import OutboxRelay

from notifier.adapters.directory import Directory
from notifier.config import Settings
from notifier.domain.render import Renderer
from notifier.domain.tokens import ReplyTokens
from notifier.emails.service import Limits
from notifier.unsubscribe import UnsubscribeLinks
from notifier.uow import UnitOfWorkFactory


@dataclass
class Runtime:
    settings: Settings
    pool: asyncpg.Pool  # for readiness only: use cases go through `uow`
    uow: UnitOfWorkFactory
    bus: Bus
    relay: OutboxRelay
    directory: Directory
    renderer: Renderer
    tokens: ReplyTokens
    unsubscribe: UnsubscribeLinks
    limits: Limits
    sessions: ConsoleSessions | None = None
    ready: bool = False
