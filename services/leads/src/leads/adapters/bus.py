"""Kafka for the leads service: the producer every part of an instance shares, and the
outbox relay that publishes what units of work committed (`leads.outbox`, through the relay
every service shares, beckon_messaging.outbox)."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer
from beckon_messaging.bus import Bus
from beckon_messaging.outbox import ACK_WAIT_S, OutboxRelay

OUTBOX_TABLE = "leads.outbox"
OUTBOX_LOCK = 0x0BEC_1EA1  # pg advisory lock id of the leads relay: chat's is 0x0BEC_C0A7
__all__ = ["OUTBOX_LOCK", "OUTBOX_TABLE", "Bus", "outbox_relay"]


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
