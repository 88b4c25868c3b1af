"""Console feature: admin (issue 5) — the rules editor (validate, preview, backtest, publish),
teams, agents (invite, limits, roles, deactivate) and site settings, for a site's admins.

Modules: `domain` (pure checks and previews), `store` (SQL), `rules_feed` (every site's
current rules from `rules.config`), `rules_api` and `people_api` (the routes).
"""

from __future__ import annotations

from chat.admin import people_api, rules_api
from chat.admin.rules_feed import RulesFeed
from chat.features import Stop, no_router
from chat.runtime import Runtime

router = no_router()
router.include_router(rules_api.router)
router.include_router(people_api.router)


async def start(rt: Runtime) -> Stop | None:
    """Follow `rules.config` (the rules every site runs now) for as long as the process."""
    feed = RulesFeed(rt.settings.kafka_bootstrap, f"chat-{rt.settings.instance_id}")
    rt.features["admin"] = {"feed": feed}
    await feed.start()

    async def stop() -> None:
        await feed.stop()

    return stop
