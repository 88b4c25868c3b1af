"""Every site's current rules, as the triggers workers apply them: `rules.config` read whole,
from the beginning, without a consumer group, on every chat instance.

The topic is small and compacted (one record per site that ever published); a record wins
when its version is at least the one held, which is the triggers workers' own rule
(`Sites.put`), so the console shows exactly what the workers run, whether it was published
from the console or with `beckon rules apply`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import parse_rules_record
from beckon_contracts.topics import RULES_CONFIG

log = logging.getLogger("chat.admin.rules")


class RulesFeed:
    def __init__(self, bootstrap: str, client_id: str) -> None:
        self.bootstrap = bootstrap
        self.client_id = client_id
        self.sites: dict[str, SiteRules] = {}
        self.caught_up = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

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
        self._task = asyncio.create_task(self._run(), name="admin-rules-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    async def _connect(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=f"{self.client_id}-rules",
            group_id=None,  # no group: nothing is committed, every instance reads it whole
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        partitions = consumer.partitions_for_topic(RULES_CONFIG.name) or set()
        for _ in range(50):
            if partitions:
                break
            await asyncio.sleep(0.1)
            await consumer.client.force_metadata_update()
            partitions = consumer.partitions_for_topic(RULES_CONFIG.name) or set()
        if not partitions:  # the topic is created by `ensure_topics`; count it as one
            partitions = set(range(RULES_CONFIG.partitions))
        assigned = [TopicPartition(RULES_CONFIG.name, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        return consumer

    async def _run(self) -> None:
        while True:
            try:
                if self._consumer is None:
                    self._consumer = await self._connect()
                batches = await self._consumer.getmany(timeout_ms=300, max_records=500)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("rules.config feed failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    self.apply(record.value)
            if not batches:
                # a poll that finds nothing: what existed at start-up has been read
                self.caught_up.set()

    async def wait_caught_up(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.caught_up.wait(), timeout_s)
        return self.caught_up.is_set()
