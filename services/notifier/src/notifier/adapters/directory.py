"""Who staff are and what sites look like, followed whole from two compacted topics chat
fills: `agents.directory` (an agent's e-mail, name, language, role, teams) and
`sites.config` (a site's widget colour and language). Each instance keeps both in memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import ConsumerRecord
from beckon_contracts.directory import AgentCard, newer, parse_agent_record
from beckon_contracts.sites import SiteConfig, parse_site_record
from beckon_contracts.sites import newer as newer_site
from beckon_contracts.topics import AGENTS_DIRECTORY, SITES_CONFIG
from beckon_messaging import PLAINTEXT, CompactedTopicFollower, KafkaSecurity
from beckon_messaging.progress import Watchdog
from pydantic import ValidationError

log = logging.getLogger("notifier.directory")
DEFAULT_COLOR = "#1f6feb"


@dataclass(frozen=True, slots=True)
class SiteLook:
    """What e-mails take from the site's widget settings."""

    color: str = DEFAULT_COLOR
    language: str = "en"
    time_zone: str = "UTC"


class Directory:
    """Agents by (site, agent id) and sites' looks, as the topics last said."""

    def __init__(self) -> None:
        self.agents: dict[tuple[str, str], AgentCard] = {}
        self.sites: dict[str, SiteConfig] = {}

    def agent(self, site_id: str, agent_id: str) -> AgentCard | None:
        """The agent, if listed and active."""
        card = self.agents.get((site_id, agent_id))
        return card if card is not None and card.active else None

    def admins(self, site_id: str) -> list[AgentCard]:
        return sorted(
            (
                c
                for (s, _), c in self.agents.items()
                if s == site_id and c.active and c.role == "admin"
            ),
            key=lambda card: card.agent_id,
        )

    def look(self, site_id: str) -> SiteLook:
        config = self.sites.get(site_id)
        if config is None:
            return SiteLook()
        color = config.settings.get("color")
        language = config.settings.get("language")
        return SiteLook(
            color=color if isinstance(color, str) else DEFAULT_COLOR,
            language=language if language in ("en", "fi") else "en",
            time_zone=config.timezone or "UTC",
        )

    def on_agent(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:  # a tombstone: the agent is gone
            if record.key:
                site_id, _, agent_id = record.key.decode(errors="replace").partition(":")
                self.agents.pop((site_id, agent_id), None)
            return
        try:
            card = parse_agent_record(record.value)
        except ValidationError:
            log.warning("unusable agents.directory record", extra={"offset": record.offset})
            return
        key = (card.site_id, card.agent_id)
        if newer(self.agents.get(key), card):
            self.agents[key] = card

    def on_site(self, record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is None:
            if record.key:
                self.sites.pop(record.key.decode(errors="replace"), None)
            return
        try:
            config = parse_site_record(record.value)
        except ValidationError:
            log.warning("unusable sites.config record", extra={"offset": record.offset})
            return
        if newer_site(self.sites.get(config.site_id), config):
            self.sites[config.site_id] = config


class DirectoryFollowers:
    """The two followers that keep a `Directory` current."""

    def __init__(
        self,
        directory: Directory,
        bootstrap: str,
        client_id: str,
        *,
        security: KafkaSecurity = PLAINTEXT,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.directory = directory
        watchdog = watchdog or Watchdog()
        self.followers = (
            CompactedTopicFollower(
                bootstrap,
                AGENTS_DIRECTORY,
                directory.on_agent,
                client_id=client_id,
                security=security,
                progress=watchdog.track(f"follow:{AGENTS_DIRECTORY.name}"),
            ),
            CompactedTopicFollower(
                bootstrap,
                SITES_CONFIG,
                directory.on_site,
                client_id=client_id,
                security=security,
                progress=watchdog.track(f"follow:{SITES_CONFIG.name}"),
            ),
        )

    async def start(self) -> None:
        for follower in self.followers:
            await follower.start()

    async def stop(self) -> None:
        for follower in self.followers:
            await follower.stop()

    async def wait_caught_up(self, timeout_s: float) -> bool:
        caught = [await follower.wait_caught_up(timeout_s) for follower in self.followers]
        return all(caught)
