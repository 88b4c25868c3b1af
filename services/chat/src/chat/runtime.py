"""What the routes share for the life of the process (built in main's lifespan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from beckon_edge import RateLimiter
from beckon_edge.tokens import Signer
from beckon_messaging.progress import Watchdog

from chat.adapters.bus import Bus, Feed, OutboxRelay
from chat.adapters.sites import SiteCache
from chat.agents.domain import LoginThrottle
from chat.agents.sessions import Sessions
from chat.config import Settings
from chat.features import Feature, NoRules, NoVisitors, RulesLookup, VisitorLookup
from chat.hub import Hub
from chat.uow import UnitOfWorkFactory

T = TypeVar("T")


@dataclass
class Runtime:
    settings: Settings
    uow: UnitOfWorkFactory
    sessions: Sessions
    sites: SiteCache
    hub: Hub
    bus: Bus
    relay: OutboxRelay
    feed: Feed
    signer: Signer
    widget_limiter: RateLimiter
    login_throttle: LoginThrottle
    ready: bool = False
    draining: bool = False  # shutting down: /readyz says 503, sockets are being closed
    # the instance's consumers report their progress here (/healthz asks it)
    watchdog: Watchdog = field(default_factory=Watchdog)
    features: tuple[Feature, ...] = ()
    # what features offer each other (main wires them to the features that provide them)
    visitors: VisitorLookup = field(default_factory=NoVisitors)
    rules: RulesLookup = field(default_factory=NoRules)
    # what the features run, by type (e.g. the live list's reader), for their own routes
    _running: dict[type, Any] = field(default_factory=dict)

    def provide(self, component: object) -> None:
        """A feature started `component`; its routes find it with `running(type)`."""
        self._running[type(component)] = component

    def withdraw(self, component: object) -> None:
        """`component` stopped."""
        if self._running.get(type(component)) is component:
            del self._running[type(component)]

    def running(self, kind: type[T]) -> T | None:
        """The running component of that type (None: its feature has not started)."""
        found: T | None = self._running.get(kind)
        return found
