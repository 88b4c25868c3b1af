"""How a console feature plugs into the service.

A feature (`live`, `activity`, `toolkit`, `admin`, `reports`, `inbound`) is a package whose
`__init__` exports one class implementing `Feature`. `main.create_app` builds one instance of each,
includes their routers, and in the lifespan calls `start(rt)` in order and `stop()` in reverse.
The console's socket hands a frame `{"t": kind}` to the feature whose `frames` has `kind`, and
tells every feature when a socket goes away (`disconnected`).

Features do not look each other up. What one offers the others is a small protocol below
(`VisitorLookup`, `RulesLookup`) that `main` wires into the runtime (`rt.visitors`,
`rt.rules`); a route finds its own feature with `rt.feature(LiveFeature)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import APIRouter

if TYPE_CHECKING:
    from beckon_contracts.rules import SiteRules

    from chat.hub import Connection
    from chat.refs import AgentRef
    from chat.runtime import Runtime

FrameHandler = Callable[["Runtime", "Connection", "AgentRef", dict[str, Any]], Awaitable[None]]


def console_router() -> APIRouter:
    """A feature's router, under the console's API prefix."""
    return APIRouter(prefix="/v1/console", tags=["console"])


class Feature(Protocol):
    """What `main` assembles: routes, socket frames, and what runs in the background."""

    router: APIRouter
    frames: Mapping[str, FrameHandler]  # socket frame kinds (`t`) this feature answers

    async def start(self, rt: Runtime) -> None:
        """Start what runs for the life of the process (consumers, sweeps)."""

    async def stop(self) -> None:
        """Stop what `start` started (called in reverse order, also after a failed start)."""

    def disconnected(self, connection: Connection) -> None:
        """An agent's socket went away (drop what it subscribed to)."""


class RequestsOnly:
    """A feature that is only routes: nothing starts, no frames, no subscriptions."""

    router: APIRouter
    frames: Mapping[str, FrameHandler] = {}

    async def start(self, rt: Runtime) -> None:
        return None

    async def stop(self) -> None:
        return None

    def disconnected(self, connection: Connection) -> None:
        return None


class VisitorLookup(Protocol):
    """What the live list offers the other features: a visitor as this instance sees it now."""

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        """The visitor's latest snapshot (None: not on the site, or the list is not running)."""

    def brief(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        """Device, browser and landing page of a visitor still on the site (or None)."""


class RulesLookup(Protocol):
    """What the admin feature offers the others: every site's current published rules."""

    def current(self, site_id: str) -> SiteRules | None:
        """The rules the site's workers run now (None: not known yet)."""


class NoVisitors:
    """The live list when it does not run: nobody is known to be on the site."""

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return None

    def brief(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return None


class NoRules:
    """The rules when nothing follows `rules.config`: none known."""

    def current(self, site_id: str) -> SiteRules | None:
        return None
