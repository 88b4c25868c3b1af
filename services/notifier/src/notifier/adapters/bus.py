"""Kafka for the notifier: the instance's producer (beckon_messaging.bus) and the relay of
`notifier.outbox` (replies for chat on `chat.inbound`, dead letters)."""

from __future__ import annotations

import asyncpg
from aiokafka import AIOKafkaProducer
from beckon_messaging.bus import Bus
from beckon_messaging.outbox import ACK_WAIT_S, OutboxRelay

OUTBOX_TABLE = "notifier.outbox"
OUTBOX_LOCK = 0x0BEC_4A12  # pg advisory lock id of the notifier's relay (leads' 0x0BEC_1EA1)
__all__ = ["OUTBOX_LOCK", "OUTBOX_TABLE", "Bus", "outbox_relay"]


def outbox_relay(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, *, poll_s: float, ack_wait_s: float = ACK_WAIT_S
) -> OutboxRelay:
    """The relay of `notifier.outbox` (one at a time among the instances on one database)."""
    return OutboxRelay(
        pool,
        producer,
        table=OUTBOX_TABLE,
        lock_id=OUTBOX_LOCK,
        poll_s=poll_s,
        ack_wait_s=ack_wait_s,
    )
