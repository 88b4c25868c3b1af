"""Keeps the tracker's sites in step with `sites.config` (chat's site admin), live.

Every tracker process reads the small compacted topic whole at start-up and then follows it;
a site's new origins or keys apply to the next request, without a restart.
"""

from __future__ import annotations

import logging

from aiokafka import ConsumerRecord
from beckon_contracts.sites import parse_site_record
from beckon_contracts.topics import SITES_CONFIG
from beckon_messaging import PLAINTEXT, CompactedTopicFollower, KafkaSecurity
from beckon_messaging.progress import ConsumerProgress
from pydantic import ValidationError

from tracker.domain.sites import SiteRegistry

log = logging.getLogger("tracker.sites")


class SitesFeed:
    def __init__(
        self,
        bootstrap: str,
        registry: SiteRegistry,
        *,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.registry = registry
        self.follower = CompactedTopicFollower(
            bootstrap,
            SITES_CONFIG,
            self.apply,
            client_id="tracker",
            security=security,
            progress=progress,
        )

    def apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:
            if record.key:
                self.registry.remove(record.key.decode(errors="replace"))
                log.info("site removed", extra={"site_id": record.key.decode(errors="replace")})
            return
        try:
            config = parse_site_record(record.value)
        except ValidationError as exc:
            log.warning(
                "sites.config record rejected",
                extra={"offset": record.offset, "error": str(exc)[:300]},
            )
            return
        if self.registry.apply(config):
            log.info(
                "site configured",
                extra={
                    "site_id": config.site_id,
                    "version": config.version,
                    "origins": len(config.allowed_origins),
                },
            )

    @property
    def caught_up(self) -> bool:
        return self.follower.caught_up.is_set()

    async def start(self) -> None:
        await self.follower.start()

    async def stop(self) -> None:
        await self.follower.stop()
