"""Fill `sites.config` with what this database knows: at start-up, every chat instance reads
the topic whole (the version it holds per site) and publishes, through the outbox, each site
the topic lacks or holds an older version of. A fresh topic (a new cluster, or the dev
stack's broker that forgets everything when it stops) so gets every site within seconds,
and the tracker and the workers never wait for an admin to save a site again.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import ConsumerRecord
from beckon_contracts.sites import parse_site_record
from beckon_contracts.topics import SITES_CONFIG
from beckon_messaging import PLAINTEXT, KafkaSecurity
from pydantic import ValidationError

from chat.adapters.topic_reader import TopicReader
from chat.admin import service
from chat.uow import UnitsOfWork

log = logging.getLogger("chat.admin.sites")
CATCH_UP_S = 30.0


class SitesFeed:
    """The version of each site's latest record on `sites.config`."""

    def __init__(
        self, bootstrap: str, client_id: str, *, security: KafkaSecurity = PLAINTEXT
    ) -> None:
        self.versions: dict[str, int] = {}
        self.reader = TopicReader(bootstrap, client_id, SITES_CONFIG, self.apply, security=security)

    def apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:
            if record.key:
                self.versions.pop(record.key.decode(errors="replace"), None)
            return
        try:
            config = parse_site_record(record.value)
        except ValidationError:
            log.warning("unusable sites.config record", extra={"offset": record.offset})
            return
        held = self.versions.get(config.site_id, 0)
        self.versions[config.site_id] = max(held, config.version)

    async def start(self) -> None:
        await self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()


async def publish_missing(uow: UnitsOfWork, feed: SitesFeed, catch_up_s: float = CATCH_UP_S) -> int:
    """Publish the sites the topic lacks or holds older (all of them if it can't be read in
    time: a repeat is harmless, followers keep the highest version). How many were sent."""
    if not await feed.reader.wait_caught_up(catch_up_s):
        log.warning("sites.config not read in time; publishing every site")
    sent = await service.publish_missing_sites(uow=uow, on_topic=feed.versions)
    if sent:
        log.info("published site configurations", extra={"sites": sent})
    return sent


async def keep_topic_filled(uow: UnitsOfWork, feed: SitesFeed) -> None:
    try:
        await publish_missing(uow, feed)
    except asyncio.CancelledError:
        raise
    except Exception:  # the next start tries again; saving a site publishes it anyway
        log.exception("publishing the sites' configurations failed")
