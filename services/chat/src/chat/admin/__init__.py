"""Console feature: admin (issue 5) — the rules editor (validate, preview, backtest, publish),
teams, agents (invite, limits, roles, deactivate) and site settings, for a site's admins.

Modules: `domain` (pure checks and previews), `store` (SQL), `rules_feed` (every site's
current rules from `rules.config`), `sites_feed` (fills `sites.config` at start-up),
`rules_api` and `people_api` (the routes).
"""

from __future__ import annotations

import asyncio
import contextlib

from chat.admin import people_api, rules_api
from chat.admin.rules_feed import RulesFeed
from chat.admin.sites_feed import SitesFeed, keep_topic_filled
from chat.features import Stop, no_router
from chat.runtime import Runtime

router = no_router()
router.include_router(rules_api.router)
router.include_router(people_api.router)


async def start(rt: Runtime) -> Stop | None:
    """Follow `rules.config` (the rules every site runs now) for as long as the process, and
    fill `sites.config` with the sites it lacks."""
    client_id = f"chat-{rt.settings.instance_id}"
    security = rt.settings.kafka_security
    feed = RulesFeed(rt.settings.kafka_bootstrap, client_id, security=security)
    sites = SitesFeed(rt.settings.kafka_bootstrap, client_id, security=security)
    rt.features["admin"] = {"feed": feed, "sites": sites}
    await feed.start()
    await sites.start()
    filling = asyncio.create_task(keep_topic_filled(rt, sites), name="sites-config-fill")

    async def stop() -> None:
        filling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await filling
        await sites.stop()
        await feed.stop()

    return stop
