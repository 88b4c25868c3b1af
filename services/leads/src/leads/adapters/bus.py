"""Kafka for the leads service: the producer every part of an instance shares, and the
outbox relay that publishes what units of work committed (`leads.outbox`, through the relay
every service shares, beckon_messaging.outbox)."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from aiokafka import AIOKafkaProducer
from beckon_messaging import PLAINTEXT, KafkaSecurity, close_producer, make_producer
from beckon_messaging.outbox import ACK_WAIT_S, OutboxRelay

OUTBOX_TABLE = "leads.outbox"
OUTBOX_LOCK = 0x0BEC_1EA1  # pg advisory lock id of the leads relay: chat's is 0x0BEC_C0A7
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
        # latency over batching: a lead's `lead.assigned` should not wait for a linger window
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


def outbox_relay(
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    *,
    poll_s: float,
    ack_wait_s: float = ACK_WAIT_S,
) -> OutboxRelay:
    """The relay of `leads.outbox` (one at a time among the instances on one database)."""
    return OutboxRelay(
        pool,
        producer,
        table=OUTBOX_TABLE,
        lock_id=OUTBOX_LOCK,
        poll_s=poll_s,
        ack_wait_s=ack_wait_s,
    )
