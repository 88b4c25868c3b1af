"""A whole (compacted) topic read by every instance: no consumer group, nothing committed.

For the small topics a chat instance keeps the latest picture of in memory (`rules.config`,
`rules.stats`): each instance reads the topic from the beginning at start-up, then follows it.
`caught_up` is set at the first poll that finds nothing new: what existed at start-up is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from beckon_contracts.topics import Topic

from chat.adapters.bus import cancel

log = logging.getLogger("chat.topic_reader")


class TopicReader:
    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        topic: Topic,
        apply: Callable[[ConsumerRecord[bytes, bytes]], None],
    ) -> None:
        self.bootstrap = bootstrap
        self.client_id = f"{client_id}-{topic.name}"
        self.topic = topic
        self.apply = apply
        self.caught_up = asyncio.Event()
        self.records = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"read-{self.topic.name}")

    async def stop(self) -> None:
        await cancel(self._task)
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_caught_up(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.caught_up.wait(), timeout_s)
        return self.caught_up.is_set()

    async def _connect(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id=self.client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(self.topic.name, partition)
                for partition in range(self.topic.partitions)
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _run(self) -> None:
        while True:
            try:
                if self._consumer is None:
                    self._consumer = await self._connect()
                batches = await self._consumer.getmany(timeout_ms=300, max_records=1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup: keep following
                log.exception(
                    "reading the topic failed; retrying", extra={"topic": self.topic.name}
                )
                await asyncio.sleep(1.0)
                continue
            for records in batches.values():
                for record in records:
                    self.records += 1
                    self.apply(record)
            if not batches:
                self.caught_up.set()
