"""Publishing to Kafka: returns only once the broker has acknowledged every record (acks=all).

Two clients behind one interface, chosen by `TRACKER_KAFKA_CLIENT`: librdkafka
(confluent-kafka, the default: about twice aiokafka's throughput per CPU) and aiokafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from beckon_messaging import close_producer, ensure_topics, make_producer
from beckon_messaging.progress import ConsumerProgress, untracked

from tracker.config import Settings

log = logging.getLogger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time; nothing may be reported as accepted."""


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class KafkaPublisher(Protocol):
    """Connects in the background (the tracker starts without a broker) and publishes."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Wait up to `kafka_close_grace_s` for the acks of what was sent, fail the rest (its
        requests answer 503), then close."""

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        """Send all records; raise BrokerUnavailable unless every one is acknowledged in time."""

    async def is_ready(self) -> bool:
        """Connected and the broker answers a metadata request (cached for a second)."""

    @property
    def in_flight(self) -> int:
        """Requests awaiting their acks."""


async def connect_with_backoff(
    attempt: Callable[[], Awaitable[None]], errors: tuple[type[BaseException], ...]
) -> None:
    """Retry `attempt` until it succeeds, 0.2 s doubling to 5 s between tries: the tracker
    starts (and answers 503) while the broker is still away."""
    delay = 0.2
    while True:
        try:
            await attempt()
            return
        except errors as exc:
            log.warning("broker not reachable yet", extra={"error": repr(exc), "retry_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def create_topics(settings: Settings) -> None:
    """The registry's topics, when the settings ask for it (either client, before it is used)."""
    if settings.create_topics:
        await ensure_topics(
            settings.kafka_bootstrap,
            replication_factor=settings.kafka_replication_factor,
            min_insync_replicas=settings.kafka_min_insync_replicas,
            timeout_s=10,
            security=settings.kafka_security,
        )


def make_publisher(settings: Settings, progress: ConsumerProgress | None = None) -> KafkaPublisher:
    """The configured client; `progress` hears whether acknowledgements still arrive while
    records wait for them (the tracker's liveness: a wedged producer is restarted)."""
    if settings.kafka_client == "aiokafka":
        return AioKafkaPublisher(settings, progress)
    from tracker.adapters.librdkafka import ConfluentPublisher

    return ConfluentPublisher(settings, progress)


class AioKafkaPublisher:
    """aiokafka: pure-Python batching and partitioning on the event loop."""

    def __init__(self, settings: Settings, progress: ConsumerProgress | None = None) -> None:
        self._settings = settings
        self.progress = progress or untracked("tracker-producer")
        self._producer: AIOKafkaProducer | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._ready_checked_at = 0.0
        self._ready = False
        self.in_flight = 0  # requests awaiting their acks

    async def start(self) -> None:
        self._connecting = asyncio.create_task(self._connect(), name="kafka-connect")

    def make_producer(self) -> AIOKafkaProducer:
        return make_producer(
            self._settings.kafka_bootstrap,
            client_id="tracker",
            idempotent=self._settings.kafka_idempotent,
            linger_ms=self._settings.kafka_linger_ms,
            compression_type=self._settings.kafka_compression,
            request_timeout_ms=int(self._settings.ack_timeout_s * 1000),
            security=self._settings.kafka_security,
        )

    async def _connect(self) -> None:
        async def attempt() -> None:
            producer = self.make_producer()
            try:
                await create_topics(self._settings)
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer

        await connect_with_backoff(attempt, (KafkaError, OSError, TimeoutError))
        log.info("connected to the broker", extra={"bootstrap": self._settings.kafka_bootstrap})

    async def stop(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._producer is not None:
            await close_producer(
                self._producer, grace_s=self._settings.kafka_close_grace_s, name="tracker"
            )

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker yet")
        self.in_flight += 1
        self.progress.holding(max(self.in_flight, self.progress.in_hand))
        try:
            async with asyncio.timeout(self._settings.ack_timeout_s):
                futures = [
                    await producer.send(r.topic, r.value, key=r.key, headers=r.headers)
                    for r in records
                ]
                await asyncio.gather(*futures)
            self.progress.handled(left=self.in_flight - 1)
        except TimeoutError as exc:  # no answer: not progress (the request still counts)
            raise BrokerUnavailable(repr(exc)) from exc
        except (KafkaError, OSError) as exc:  # SendAbandoned when stopped
            self.progress.handled(left=self.in_flight - 1)  # the broker answered
            raise BrokerUnavailable(repr(exc)) from exc
        finally:
            self.in_flight -= 1

    async def is_ready(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        now = time.monotonic()
        if now - self._ready_checked_at < 1.0:
            return self._ready
        try:
            async with asyncio.timeout(2.0):
                self._ready = bool(await producer.client.fetch_all_metadata())
        except (KafkaError, TimeoutError, OSError):
            self._ready = False
        self._ready_checked_at = now
        return self._ready
