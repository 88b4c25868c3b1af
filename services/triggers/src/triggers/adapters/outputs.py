"""Everything a stage writes in one batch, sent as one record batch per partition.

The stages produce about two records per event (the visitor's changelog record and, often,
a `visitors.state` snapshot); `AIOKafkaProducer.send` costs tens of microseconds per
record, more than the engine's own work. So records are appended to a batch per
topic-partition and sent with `send_batch` when the stage flushes, or when a batch is full.
Keyed records without an explicit partition get the producer's own partitioner (murmur2,
like Kafka's Java client), so keys land where every other producer puts them.

`flush` is awaited at the end of each stream batch, before Faust acknowledges its events, so
an event whose offset is committed has had all its outputs accepted by the broker (at
least once). Table changelogs go through here too (see tables.py).

While the broker is away (restarted, or a leader moving) sends fail after the producer's
request timeout: the stage then waits and sends the same records again until the broker takes
them, rather than crash (a crashed Faust timer stopped the whole worker, which then hung in its
shutdown). A batch that was written before its acknowledgement was lost is written twice: its
consumers are idempotent (invitation ids, event ids, table keys).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from beckon_messaging import PLAINTEXT, KafkaSecurity, close_producer, make_producer

log = logging.getLogger(__name__)

T = TypeVar("T")
Record = tuple[
    bytes, bytes | None, list[tuple[str, bytes]]
]  # key, value (None: tombstone), headers
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


def broker_away(exc: BaseException) -> bool:
    """A failure that waiting cures: no connection, no leader, no metadata, no ack in time."""
    return isinstance(exc, KafkaTimeoutError) or (isinstance(exc, KafkaError) and exc.retriable)


class Outputs:
    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        *,
        idempotent: bool = False,
        close_grace_s: float = 5.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self._producer: AIOKafkaProducer = make_producer(
            bootstrap, client_id, idempotent=idempotent, linger_ms=2, security=security
        )
        self._client_id = client_id
        self._close_grace_s = close_grace_s
        self._batches: dict[tuple[str, int], tuple[Any, list[Record]]] = {}
        self._partitions: dict[str, list[int]] = {}
        # each batch sent and not yet acknowledged, with its records (to send again)
        self._pending: list[tuple[tuple[str, int], list[Record], asyncio.Future[Any]]] = []
        self.retries = 0  # sends repeated because the broker was away

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        """Send what is batched, then close within the grace period (the rest fails)."""
        batches, self._batches = self._batches, {}
        for slot, (batch, records) in batches.items():
            await self._submit(slot, batch, records)
        pending, self._pending = self._pending, []
        await close_producer(self._producer, grace_s=self._close_grace_s, name=self._client_id)
        # done by now; what failed is in close_producer's warning (nobody is left to tell)
        await asyncio.gather(*(future for _, _, future in pending), return_exceptions=True)

    async def _partition_for(self, topic: str, key: bytes) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            found = await self._until_broker_takes(lambda: self._producer.partitions_for(topic))
            partitions = self._partitions[topic] = sorted(found)
        chosen: int = self._producer._partitioner(key, partitions, partitions)
        return chosen

    async def send(
        self,
        topic: str,
        key: str,
        value: bytes | None,  # from the topic's contract model; None: a tombstone
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        raw = value
        key_bytes = key.encode()
        if partition is None:
            partition = await self._partition_for(topic, key_bytes)
        slot = (topic, partition)
        record: Record = (key_bytes, raw, headers or [])
        held = self._batches.get(slot)
        if held is None:
            held = self._batches[slot] = (self._producer.create_batch(), [])
        batch, records = held
        if batch.append(key=key_bytes, value=raw, timestamp=None, headers=record[2]) is None:
            # full: send it and start another
            await self._submit(slot, batch, records)
            batch, records = self._batches[slot] = (self._producer.create_batch(), [])
            if batch.append(key=key_bytes, value=raw, timestamp=None, headers=record[2]) is None:
                size = len(raw or b"")
                raise ValueError(f"a {size}-byte record for {topic} exceeds the batch size")
        records.append(record)

    async def _submit(self, slot: tuple[str, int], batch: Any, records: list[Record]) -> None:
        topic, partition = slot
        future = await self._until_broker_takes(
            lambda: self._producer.send_batch(batch, topic, partition=partition)
        )
        self._pending.append((slot, records, future))

    def _rebuilt(self, records: list[Record]) -> Any:
        batch = self._producer.create_batch()
        for key, value, headers in records:
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise ValueError("records that fitted one batch no longer fit one")  # never
        return batch

    async def flush(self) -> None:
        batches, self._batches = self._batches, {}
        for slot, (batch, records) in batches.items():
            await self._submit(slot, batch, records)
        pending, self._pending = self._pending, []
        wait = RETRY_FIRST_S
        while pending:
            results = await asyncio.gather(*(f for _, _, f in pending), return_exceptions=True)
            failed = []
            for (slot, records, _), result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    if not broker_away(result):
                        raise result
                    failed.append((slot, records, result))
            if not failed:
                return
            self.retries += len(failed)
            log.warning(
                "the broker did not take %d batch(es); sending them again in %.1f s",
                len(failed),
                wait,
                extra={"error": repr(failed[0][2])},
            )
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_S)
            for slot, records, _ in failed:
                await self._submit(slot, self._rebuilt(records), records)
            pending, self._pending = self._pending, []

    async def _until_broker_takes(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, again and again while the broker is away (with a growing pause)."""
        wait, since = RETRY_FIRST_S, time.monotonic()
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if not broker_away(exc):
                    raise
                self.retries += 1
                log.warning(
                    "the broker is away; trying again in %.1f s",
                    wait,
                    extra={"error": repr(exc), "away_s": round(time.monotonic() - since, 1)},
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, RETRY_MAX_S)
