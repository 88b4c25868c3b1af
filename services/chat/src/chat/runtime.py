"""What the routes share for the life of the process (built in main's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from beckon_edge import RateLimiter

from chat.adapters.bus import Bus, Feed, OutboxRelay
from chat.config import Settings
from chat.domain.login import LoginThrottle
from chat.domain.tokens import Signer
from chat.hub import Hub
from chat.service import ChatService


@dataclass
class Runtime:
    settings: Settings
    service: ChatService
    hub: Hub
    bus: Bus
    relay: OutboxRelay
    feed: Feed
    signer: Signer
    widget_limiter: RateLimiter
    login_throttle: LoginThrottle
    ready: bool = False
    # each console feature keeps what it runs here, under its package name (e.g. "live")
    features: dict[str, Any] = field(default_factory=dict)
