"""Read a small, keyed topic from the beginning on every worker: rules, presence, stats.

Faust's global tables would do this too, but they are the least reliable part of
faust-streaming; a plain consumer without a group, assigned every partition, is simple and
works the same on Tansu and Kafka. `caught_up` is set once a poll finds nothing new, which
is when the follower has seen what existed at start-up (end offsets are not trusted: Tansu
reports them wrong).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

log = logging.getLogger(__name__)

OnRecord = Callable[[ConsumerRecord[bytes, bytes]], None]


class TopicFollower:
    def __init__(self, bootstrap: str, topic: str, on_record: OnRecord) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_record = on_record
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        partitions = consumer.partitions_for_topic(self.topic) or set()
        for _ in range(50):
            if partitions:
                break
            await asyncio.sleep(0.1)
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(self.topic) or set()
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name=f"follow:{self.topic}")

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batches.values():
                for record in records:
                    try:
                        self.on_record(record)
                    except Exception:  # one bad record must not stop the follower
                        log.exception("could not apply a record from %s", self.topic)
            if not batches:
                self.caught_up.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()
