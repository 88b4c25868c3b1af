"""Fill the compacted topics chat is the source of with what this database knows: at
start-up, every chat instance reads the topic whole (the version it holds per key) and
publishes, through the outbox, each record the topic lacks or holds an older version of. A
fresh topic (a new cluster, or the dev stack's broker that forgets everything when it stops)
so gets every record within seconds, and its followers never wait for an admin to save a
site or an agent again.

Two topics are filled this way (`FILLS`): `sites.config` (each site's configuration, for
the tracker and the workers) and `agents.directory` (each agent's card, for the notifier).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from beckon_contracts.directory import directory_key, parse_agent_record
from beckon_contracts.sites import config_key, parse_site_record
from beckon_contracts.topics import AGENTS_DIRECTORY, SITES_CONFIG, Topic
from beckon_messaging import PLAINTEXT, KafkaSecurity
from pydantic import ValidationError

from chat.adapters.topic_reader import TopicReader
from chat.admin import service
from chat.uow import UnitsOfWork

log = logging.getLogger("chat.admin.fill")
CATCH_UP_S = 30.0


@dataclass(frozen=True, slots=True)
class TopicFill:
    """A topic chat fills: how to read a record's key and version, and the use case that
    publishes what the topic lacks (given the version it holds per key; returns how many)."""

    topic: Topic
    version_of: Callable[[bytes], tuple[str, int]]
    publish_missing: Callable[[UnitsOfWork, Mapping[str, int]], Awaitable[int]]


def _site_version(value: bytes) -> tuple[str, int]:
    config = parse_site_record(value)
    return config_key(config.site_id).decode(), config.version


def _agent_version(value: bytes) -> tuple[str, int]:
    card = parse_agent_record(value)
    return directory_key(card.site_id, card.agent_id).decode(), card.version


SITES_FILL = TopicFill(
    SITES_CONFIG,
    _site_version,
    lambda uow, on_topic: service.publish_missing_sites(uow=uow, on_topic=on_topic),
)
DIRECTORY_FILL = TopicFill(
    AGENTS_DIRECTORY,
    _agent_version,
    lambda uow, on_topic: service.publish_missing_agents(uow=uow, on_topic=on_topic),
)
FILLS = (SITES_FILL, DIRECTORY_FILL)


class VersionsFeed:
    """The version of each key's latest record on the topic of `fill`."""

    def __init__(
        self,
        fill: TopicFill,
        bootstrap: str,
        client_id: str,
        *,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.fill = fill
        self.versions: dict[str, int] = {}
        self.reader = TopicReader(bootstrap, client_id, fill.topic, self.apply, security=security)

    def apply(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:
            if record.key:
                self.versions.pop(record.key.decode(errors="replace"), None)
            return
        try:
            key, version = self.fill.version_of(record.value)
        except ValidationError:
            log.warning(
                "unusable record",
                extra={"topic": self.fill.topic.name, "offset": record.offset},
            )
            return
        self.versions[key] = max(self.versions.get(key, 0), version)

    async def start(self) -> None:
        await self.reader.start()

    async def stop(self) -> None:
        await self.reader.stop()


async def publish_missing(
    uow: UnitsOfWork, feed: VersionsFeed, catch_up_s: float = CATCH_UP_S
) -> int:
    """Publish what the topic lacks or holds older (everything if it can't be read in time:
    a repeat is harmless, followers keep the highest version). How many were sent."""
    topic = feed.fill.topic.name
    if not await feed.reader.wait_caught_up(catch_up_s):
        log.warning("topic not read in time; publishing everything", extra={"topic": topic})
    sent = await feed.fill.publish_missing(uow, feed.versions)
    if sent:
        log.info("filled the topic", extra={"topic": topic, "records": sent})
    return sent


async def keep_topic_filled(uow: UnitsOfWork, feed: VersionsFeed) -> None:
    try:
        await publish_missing(uow, feed)
    except asyncio.CancelledError:
        raise
    except Exception:  # the next start tries again; a change publishes its record anyway
        log.exception("filling the topic failed", extra={"topic": feed.fill.topic.name})
