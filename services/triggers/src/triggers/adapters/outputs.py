"""Records the worker sends besides its table changelogs, batched, with acks awaited per batch.

Everything the stages write, table changelogs included (see tables.py), goes through this
batching aiokafka producer. `flush` is awaited at the end of each stream batch, before Faust
acknowledges its events, so an event whose offset is committed has had all its outputs
accepted by the broker (at least once).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from beckon_messaging import make_producer


class Outputs:
    def __init__(self, bootstrap: str, client_id: str, *, idempotent: bool = False) -> None:
        self._producer: AIOKafkaProducer = make_producer(
            bootstrap, client_id, idempotent=idempotent, linger_ms=2
        )
        self._pending: list[asyncio.Future[Any]] = []
        self.sent = 0

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self.flush()
        await self._producer.stop()

    async def send(
        self,
        topic: str,
        key: str,
        value: bytes | dict[str, Any],
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
    ) -> None:
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        future = await self._producer.send(
            topic, raw, key=key.encode(), headers=headers, partition=partition
        )
        self._pending.append(future)
        self.sent += 1

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
