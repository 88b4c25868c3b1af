"""Producer settings: the same guarantees for aiokafka and librdkafka producers."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from beckon_messaging.security import PLAINTEXT, KafkaSecurity

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
