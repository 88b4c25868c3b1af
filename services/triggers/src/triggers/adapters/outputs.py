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
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaProducer
from beckon_messaging import PLAINTEXT, KafkaSecurity, close_producer, make_producer


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
        self._batches: dict[tuple[str, int], Any] = {}
        self._partitions: dict[str, list[int]] = {}
        self._pending: list[asyncio.Future[Any]] = []

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        """Send what is batched, then close within the grace period (the rest fails)."""
        batches, self._batches = self._batches, {}
        for slot, batch in batches.items():
            await self._submit(slot, batch)
        pending, self._pending = self._pending, []
        await close_producer(self._producer, grace_s=self._close_grace_s, name=self._client_id)
        # done by now; what failed is in close_producer's warning (nobody is left to tell)
        await asyncio.gather(*pending, return_exceptions=True)

    async def _partition_for(self, topic: str, key: bytes) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(
                await self._producer.partitions_for(topic)
            )
        chosen: int = self._producer._partitioner(key, partitions, partitions)
        return chosen

    async def send(
        self,
        topic: str,
        key: str,
        value: bytes,  # built from the topic's contract model, never a hand-built dict
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        raw = value
        key_bytes = key.encode()
        if partition is None:
            partition = await self._partition_for(topic, key_bytes)
        slot = (topic, partition)
        batch = self._batches.get(slot)
        if batch is None:
            batch = self._batches[slot] = self._producer.create_batch()
        if batch.append(key=key_bytes, value=raw, timestamp=None, headers=headers or []) is None:
            # full: send it and start another
            await self._submit(slot, batch)
            batch = self._batches[slot] = self._producer.create_batch()
            if (
                batch.append(key=key_bytes, value=raw, timestamp=None, headers=headers or [])
                is None
            ):
                raise ValueError(f"a {len(raw)}-byte record for {topic} exceeds the batch size")

    async def _submit(self, slot: tuple[str, int], batch: Any) -> None:
        topic, partition = slot
        self._pending.append(await self._producer.send_batch(batch, topic, partition=partition))

    async def flush(self) -> None:
        batches, self._batches = self._batches, {}
        for slot, batch in batches.items():
            await self._submit(slot, batch)
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
