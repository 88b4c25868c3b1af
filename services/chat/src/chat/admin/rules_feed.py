"""Every site's current rules, as the triggers workers apply them: `rules.config` read whole,
from the beginning, without a consumer group, on every chat instance.

The topic is small and compacted (one record per site that ever published); a record wins
when its version is at least the one held, which is the triggers workers' own rule
(`Sites.put`), so the console shows exactly what the workers run, whether it was published
from the console or with `beckon rules apply`.
"""

from __future__ import annotations

import logging

from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import parse_rules_record
from beckon_contracts.topics import RULES_CONFIG
from beckon_messaging import PLAINTEXT, KafkaSecurity

from chat.adapters.topic_reader import TopicReader

log = logging.getLogger("chat.admin.rules")


class RulesFeed:
    def __init__(
        self, bootstrap: str, client_id: str, *, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self.sites: dict[str, SiteRules] = {}
        self.reader = TopicReader(
            bootstrap, client_id, RULES_CONFIG, lambda r: self.apply(r.value), security=security
        )
        self.caught_up = self.reader.caught_up

    def current(self, site_id: str) -> SiteRules | None:
        return self.sites.get(site_id)

    def apply(self, value: bytes | None) -> None:
        """One record of the topic (None: a tombstone, ignored as the workers ignore it)."""
        if value is None:
            return
        try:
            rules = parse_rules_record(value)
        except Exception as exc:  # the workers reject it too (dead letters are theirs)
            log.warning("rules.config record rejected", extra={"error": str(exc)[:300]})
            return
        held = self.sites.get(rules.site_id)
        if held is None or rules.version >= held.version:
            self.sites[rules.site_id] = rules

    async def start(self) -> None:
        await self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()

    async def wait_caught_up(self, timeout_s: float) -> bool:
        return await self.reader.wait_caught_up(timeout_s)
