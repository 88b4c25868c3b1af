"""Console feature: admin — the rules editor (validate, preview, backtest, publish), teams,
agents (invite, limits, roles, deactivate) and site settings, for a site's admins.

Modules: `service` (the use cases), `domain` (pure checks, previews and the records a change
publishes), `store` (SQL, a store per topic), `triggers` (the worker's backtest over HTTP),
`rules_feed` (every site's current rules from `rules.config`), `topic_fill` (fills
`sites.config` and `agents.directory` at start-up), `rules_api` and `people_api` (the
routes).

The feature is the runtime's `RulesLookup` (`rt.rules`): other features read a site's
current rules with `rt.rules.current(site_id)`.
"""

from __future__ import annotations

import asyncio
import contextlib

from beckon_contracts.rules import SiteRules

from chat.admin import people_api, rules_api
from chat.admin.rules_feed import RulesFeed
from chat.admin.topic_fill import FILLS, VersionsFeed, keep_topic_filled
from chat.features import RequestsOnly, console_router
from chat.runtime import Runtime

__all__ = ["AdminFeature"]

router = console_router()
router.include_router(rules_api.router)
router.include_router(people_api.router)


class AdminFeature(RequestsOnly):
    """Follows `rules.config` (the rules every site runs now) for as long as the process, and
    fills `sites.config` and `agents.directory` with the sites and agents they lack."""

    router = router

    def __init__(self) -> None:
        self.feed: RulesFeed | None = None
        self._fills: list[VersionsFeed] = []
        self._filling: list[asyncio.Task[None]] = []
        self._rt: Runtime | None = None

    async def start(self, rt: Runtime) -> None:
        client_id = f"chat-{rt.settings.instance_id}"
        security = rt.settings.kafka_security
        self._rt = rt
        self.feed = RulesFeed(rt.settings.kafka_bootstrap, client_id, security=security)
        rt.provide(self.feed)
        await self.feed.start()
        for fill in FILLS:
            feed = VersionsFeed(fill, rt.settings.kafka_bootstrap, client_id, security=security)
            self._fills.append(feed)
            await feed.start()
            self._filling.append(
                asyncio.create_task(keep_topic_filled(rt.uow, feed), name=f"{fill.topic.name}-fill")
            )

    async def stop(self) -> None:
        for task in self._filling:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for feed in self._fills:
            await feed.stop()
        if self.feed is not None:
            if self._rt is not None:
                self._rt.withdraw(self.feed)
            await self.feed.stop()
        self._filling, self._fills, self.feed = [], [], None

    # --- RulesLookup -----------------------------------------------------------------------

    def current(self, site_id: str) -> SiteRules | None:
        return self.feed.current(site_id) if self.feed is not None else None
