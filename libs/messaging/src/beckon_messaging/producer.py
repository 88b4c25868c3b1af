"""Producer settings (the same guarantees for aiokafka and librdkafka producers) and a
bounded close."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import Field
from pydantic_settings import BaseSettings

from beckon_messaging.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger("beckon_messaging.producer")

# Kafka's default max message size: a bigger record fails in the client, with a clear error.
MAX_REQUEST_SIZE = 1_048_576


def producer_options(
    *,
    idempotent: bool = False,
    linger_ms: int = 5,
    max_batch_size: int = 262_144,
    compression_type: str | None = None,
    request_timeout_ms: int = 10_000,
) -> dict[str, Any]:
    """acks=all always; the idempotent producer when the service's settings ask for it."""
    return {
        "acks": "all",
        "enable_idempotence": idempotent,
        "linger_ms": linger_ms,
        "max_batch_size": max_batch_size,
        "max_request_size": MAX_REQUEST_SIZE,
        "compression_type": compression_type,
        "request_timeout_ms": request_timeout_ms,
    }


def make_producer(
    bootstrap_servers: str,
    client_id: str,
    *,
    security: KafkaSecurity = PLAINTEXT,
    **options: Any,
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        **producer_options(**options),
        **security.aiokafka_options(),
    )


class ProducerSettings(BaseSettings):
    """The producer settings of a service's `Settings`, under the service's prefix."""

    kafka_idempotent: bool = Field(
        default=True,
        description="The idempotent producer (acks=all either way): a batch retried after a "
        "lost ack is written once and in order. While the broker is down it retries until "
        "the broker is back; stopping waits `kafka_close_grace_s` for it, then fails what is "
        "left",
    )
    kafka_close_grace_s: float = Field(
        default=5.0,
        ge=0,
        description="On shutdown, how long to wait for the broker to acknowledge what was "
        "sent; what is still unacknowledged then fails (its senders see an error) and is "
        "logged as abandoned",
    )


class SendAbandoned(KafkaError):  # type: ignore[misc]
    """The producer was closed before the broker acknowledged this record."""

    retriable = False


async def close_producer(producer: AIOKafkaProducer, *, grace_s: float, name: str) -> int:
    """Stop `producer` within `grace_s` (plus, against a broker that takes connections but
    does not answer, what its requests already sent take to time out), even with the
    idempotent producer and the broker down. Returns how many records were abandoned.

    aiokafka's `stop()` waits until every batch is acknowledged, and the idempotent producer
    never expires a batch (its retry may not be dropped), so against a broker that is down
    `stop()` never returns, and a batch left in the queue after its sender stops is never
    resolved at all (aio-libs/aiokafka#1101). So after the grace period the sender is
    cancelled, its requests on the wire end (they put their batches back in the queue), and
    then every batch still unacknowledged fails with `SendAbandoned`: whoever awaits it sees
    an error, never a silent drop. Failing the batches before the requests end would not do:
    a request that ends with a retriable error puts its (failed) batch back in the queue.
    """
    stopping = asyncio.create_task(producer.stop(), name=f"{name}-stop")
    done, _ = await asyncio.wait({stopping}, timeout=grace_s)
    if done:
        await stopping
        return 0
    # Reaching into aiokafka: it has no way to abort. Checked against aiokafka 0.14.
    sender = producer._sender
    accumulator = producer._message_accumulator
    sender_task: asyncio.Task[None] | None = sender.sender_task if sender else None
    if sender_task is None or sender_task.done():  # nothing is retried: stop() will end
        await stopping
        return 0
    abandoned = 0

    def fail_unsent(_task: object) -> None:
        nonlocal abandoned
        queued = [batch for batches in accumulator._batches.values() for batch in batches]
        unsent = [b for b in [*queued, *accumulator._pending_batches] if not b.future.done()]
        abandoned = sum(batch.record_count for batch in unsent)
        accumulator.fail_all(
            SendAbandoned(f"{name}: closed before the broker acknowledged the record")
        )

    # `stop()` goes on once the sender task has ended; by then the batches have failed.
    sender_task.add_done_callback(fail_unsent)
    sender_task.cancel()
    await stopping
    log.warning(
        "producer closed with records the broker never acknowledged; their senders got an error",
        extra={"producer": name, "abandoned": abandoned, "grace_s": grace_s},
    )
    return abandoned


def librdkafka_config(
    bootstrap_servers: str,
    client_id: str,
    *,
    idempotent: bool = False,
    linger_ms: int = 5,
    max_batch_size: int = 262_144,
    compression_type: str | None = None,
    request_timeout_ms: int = 10_000,
    security: KafkaSecurity = PLAINTEXT,
) -> dict[str, Any]:
    """The same guarantees as `producer_options`, for a librdkafka (confluent-kafka) producer.

    `murmur2_random` is the Java client's (and aiokafka's) partitioner: a key lands on the
    same partition whichever client wrote it. A record not acknowledged within
    `request_timeout_ms` fails instead of being retried for ever.
    """
    return {
        "bootstrap.servers": bootstrap_servers,
        "client.id": client_id,
        "acks": "all",
        "enable.idempotence": idempotent,
        "linger.ms": linger_ms,
        "batch.size": max_batch_size,
        "message.max.bytes": MAX_REQUEST_SIZE,
        "compression.type": compression_type or "none",
        "partitioner": "murmur2_random",
        "request.timeout.ms": request_timeout_ms,
        "message.timeout.ms": request_timeout_ms,
        **security.librdkafka_options(),
    }
