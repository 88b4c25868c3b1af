"""Reads `rules.stats` into a RuleStatsBook: every instance, no consumer group, from the
beginning of the (compacted) topic, then follows it. A restart simply reads it again."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from beckon_contracts.topics import RULES_STATS

from chat.adapters.bus import cancel
from chat.reports.stats import RuleStatsBook

log = logging.getLogger("chat.reports")


class RuleStatsReader:
    def __init__(self, bootstrap: str, client_id: str, book: RuleStatsBook) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=f"{client_id}-rule-stats",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        self.book = book
        self.caught_up = asyncio.Event()
        self.records = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [
            TopicPartition(RULES_STATS.name, partition)
            for partition in range(RULES_STATS.partitions)
        ]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._run(), name="rule-stats")

    async def stop(self) -> None:
        await cancel(self._task)
        await self.consumer.stop()

    async def _run(self) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup: keep following
                log.exception("rules.stats fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    self.records += 1
                    if not self.book.apply(record.key, record.value):
                        log.warning("unusable rules.stats record", extra={"offset": record.offset})
            if not batches:
                self.caught_up.set()
