"""The producer a service instance shares among its parts (the outbox relay first of all),
with the check readiness makes of it (leads, notifier)."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaProducer

from beckon_messaging.producer import close_producer, make_producer
from beckon_messaging.security import PLAINTEXT, KafkaSecurity

CONNECTED_WAIT_S = 1.0


class Bus:
    """The instance's producer; `connected()` is what readiness asks of it."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        *,
        idempotent: bool,
        close_grace_s: float = 5.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        # latency over batching: a fact (`lead.assigned`, a reply) should not wait for a linger
        self.producer: AIOKafkaProducer = make_producer(
            bootstrap, client_id, idempotent=idempotent, linger_ms=0, security=security
        )
        self._client_id = client_id
        self._close_grace_s = close_grace_s
        self.started = False

    async def start(self) -> None:
        await self.producer.start()
        self.started = True

    async def stop(self) -> None:
        """Within the grace period even with the broker down: what the broker has not
        acknowledged by then fails (outbox rows stay unpublished, to be sent again)."""
        self.started = False
        await close_producer(self.producer, grace_s=self._close_grace_s, name=self._client_id)

    async def connected(self, wait_s: float = CONNECTED_WAIT_S) -> bool:
        """Whether the producer holds (or can open within `wait_s`) a connection to a broker
        of the cluster it knows."""
        if not self.started:
            return False
        client = self.producer.client
        for broker in client.cluster.brokers():
            with contextlib.suppress(Exception):
                if await asyncio.wait_for(client.ready(broker.nodeId), wait_s):
                    return True
        return False
