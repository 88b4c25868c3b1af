"""Follow a small compacted topic whole, on every instance: sites, rules, presence, stats.

Each instance keeps the latest picture of such a topic in memory: it reads the topic from
the beginning at start-up, then follows it, with a plain consumer assigned every partition
(no consumer group, nothing committed; Faust's global tables would do this too, but they are
the least reliable part of faust-streaming).

`caught_up` is set once every partition's position has reached the end offset it had at
start-up: what existed then has been read (compaction may have left gaps; the position
passes them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from beckon_contracts.topics import Topic

from beckon_messaging.progress import ConsumerProgress, untracked
from beckon_messaging.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)

OnRecord = Callable[[ConsumerRecord[bytes, bytes]], None]
METADATA_TRIES = 50  # x 0.1 s: a topic created a moment ago shows up in the metadata


class CompactedTopicFollower:
    """`on_record` gets every record in partition order (a tombstone has `value` None); a
    record it raises on is logged and skipped, and a broker error is retried, so the follower
    keeps following for as long as it runs."""

    def __init__(
        self,
        bootstrap: str,
        topic: Topic,
        on_record: OnRecord,
        *,
        client_id: str | None = None,
        poll_ms: int = 200,
        retry_s: float = 1.0,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_record = on_record
        self.client_id = f"{client_id or 'beckon'}-{topic.name}"
        self.poll_ms = poll_ms
        self.retry_s = retry_s
        self.security = security
        self.caught_up = asyncio.Event()
        self.records = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._ends: dict[TopicPartition, int] = {}  # where the topic ended at start-up
        self._task: asyncio.Task[None] | None = None
        self.progress = progress or untracked(f"follow:{topic.name}")

    async def start(self) -> None:
        """Start following in the background (this returns at once, broker up or not)."""
        self._task = asyncio.create_task(self._run(), name=f"follow:{self.topic.name}")

    async def stop(self) -> None:
        self.progress.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                await consumer.stop()
            except asyncio.CancelledError:
                # with the broker gone, aiokafka's fetcher lets the cancellation of its own
                # fetch tasks out of stop(); only a cancellation of the caller goes on
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def wait_caught_up(self, timeout_s: float) -> bool:
        """Whether the follower has read what the topic held at start-up (within `timeout_s`)."""
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
            fetch_max_wait_ms=self.poll_ms,
            **self.security.aiokafka_options(),
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self.topic.name) or set()
            for _ in range(METADATA_TRIES):
                if partitions:
                    break
                await asyncio.sleep(0.1)
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(self.topic.name) or set()
            numbers = sorted(partitions) or list(range(self.topic.partitions))
            assigned = [TopicPartition(self.topic.name, number) for number in numbers]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            self._ends = dict(await consumer.end_offsets(assigned))
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _run(self) -> None:
        with self.progress.running():
            await self._follow()

    async def _follow(self) -> None:
        while True:
            try:
                if self._consumer is None:
                    self._consumer = await self._connect()
                batches = await self._consumer.getmany(timeout_ms=self.poll_ms, max_records=1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup: keep following
                log.exception("reading %s failed; retrying", self.topic.name)
                await asyncio.sleep(self.retry_s)
                continue
            self.progress.fetched(sum(len(records) for records in batches.values()))
            await self.progress.observe_lag(self._consumer)
            for records in batches.values():
                for record in records:
                    self.records += 1
                    try:
                        self.on_record(record)
                    except Exception:  # one bad record must not stop the follower
                        log.exception(
                            "could not apply %s offset %s", self.topic.name, record.offset
                        )
            self.progress.handled()
            if not self.caught_up.is_set() and await self._read_to_the_ends():
                self.caught_up.set()

    async def _read_to_the_ends(self) -> bool:
        consumer = self._consumer
        assert consumer is not None
        for partition, end in self._ends.items():
            if await consumer.position(partition) < end:
                return False
        return True
