"""The librdkafka publisher (confluent-kafka): batching, partitioning and I/O run in C threads.

One future per request, resolved by the delivery report of its last record. Reports are
served by `poll()` on the event loop's own thread, so callbacks resolve futures directly:
no GIL hand-over to a polling thread, no cross-thread wake-up per report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError as AdminError
from beckon_messaging import librdkafka_config
from beckon_messaging.progress import ConsumerProgress, untracked
from confluent_kafka import KafkaError, KafkaException, Producer

from tracker.adapters.kafka import (
    BrokerUnavailable,
    OutboundRecord,
    connect_with_backoff,
    create_topics,
)
from tracker.config import Settings

log = logging.getLogger(__name__)


class _OncePerWindow(logging.Filter):
    """librdkafka logs a failure again at every reconnect attempt: pass each one once a minute."""

    def __init__(self, window_s: float) -> None:
        super().__init__()
        self._window_s = window_s
        self._last_seen: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = re.sub(r"after \d+ms", "after", record.getMessage())
        now = time.monotonic()
        if now - self._last_seen.get(message, -self._window_s) < self._window_s:
            return False
        if len(self._last_seen) > 1_000:
            self._last_seen.clear()
        self._last_seen[message] = now
        return True


rdkafka_log = logging.getLogger("tracker.librdkafka")
rdkafka_log.addFilter(_OncePerWindow(60.0))

POLL_INTERVAL_S = 0.001  # while records are in flight: what waiting for a report may add
IDLE_POLL_S = 0.5  # otherwise only librdkafka's logs and errors are waiting
PROBE_TIMEOUT_S = 1.0  # a metadata request; short, as it blocks a thread


class _Request:
    """One request's records in flight: one future, done at the last ack or the first error."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[None], remaining: int) -> None:
        self.future = future
        self.remaining = remaining

    def delivered(self, error: KafkaError | None, _message: Any) -> None:
        if self.future.done():  # failed already, or its waiter timed out
            return
        if error is not None:
            self.future.set_exception(BrokerUnavailable(str(error)))
            return
        self.remaining -= 1
        if not self.remaining:
            self.future.set_result(None)


class ConfluentPublisher:
    def __init__(self, settings: Settings, progress: ConsumerProgress | None = None) -> None:
        self._settings = settings
        # delivery reports still arrive while records wait for them (the tracker's liveness)
        self.progress = progress or untracked("tracker-producer")
        self._config = librdkafka_config(
            settings.kafka_bootstrap,
            client_id="tracker",
            idempotent=settings.kafka_idempotent,
            linger_ms=settings.kafka_linger_ms,
            compression_type=settings.kafka_compression,
            request_timeout_ms=int(settings.ack_timeout_s * 1000),
            security=settings.kafka_security,
        ) | {"logger": rdkafka_log}
        self._client: Producer | None = None
        self._producer: Producer | None = None  # the client, once the broker has answered
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._ready_checked_at = 0.0
        self._ready = False

    async def start(self) -> None:
        # librdkafka connects in its own threads; creating the client never blocks.
        self._client = client = Producer(self._config)
        self._tasks = [
            asyncio.create_task(self._connect(client), name="kafka-connect"),
            asyncio.create_task(self._serve(client), name="kafka-delivery-reports"),
        ]

    async def _connect(self, client: Producer) -> None:
        async def attempt() -> None:
            await create_topics(self._settings)
            await asyncio.to_thread(client.list_topics, None, PROBE_TIMEOUT_S)

        await connect_with_backoff(attempt, (AdminError, KafkaException, OSError, TimeoutError))
        self._producer = client
        log.info("connected to the broker", extra={"bootstrap": self._settings.kafka_bootstrap})

    async def _serve(self, client: Producer) -> None:
        with self.progress.running():
            await self._serve_reports(client)

    async def _serve_reports(self, client: Producer) -> None:
        """Deliver reports (and librdkafka's logs) on this thread: every ms while in flight."""
        poll, progress = client.poll, self.progress
        while True:
            if poll(0):  # reports (or logs) served: the producer is not wedged
                progress.handled(left=len(client))
            elif self._in_flight:
                progress.holding(len(client))
            if self._in_flight:
                await asyncio.sleep(POLL_INTERVAL_S)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(IDLE_POLL_S):
                    await self._wake.wait()

    async def stop(self) -> None:
        self.progress.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        client, self._client, self._producer = self._client, None, None
        if client is None:
            return
        grace_s = self._settings.kafka_close_grace_s
        deadline = time.monotonic() + grace_s
        while len(client) and time.monotonic() < deadline:  # records awaiting their ack
            client.poll(0)
            await asyncio.sleep(0.01)
        client.poll(0)
        if abandoned := len(client):
            # Their delivery reports (purged) fail their requests: 503, never a silent drop.
            client.purge(in_queue=True, in_flight=True)
            client.poll(0)
            log.warning(
                "producer closed with records the broker never acknowledged; their senders "
                "got an error",
                extra={"producer": "tracker", "abandoned": abandoned, "grace_s": grace_s},
            )
        await asyncio.to_thread(client.close)

    @property
    def in_flight(self) -> int:
        """Requests awaiting their acks."""
        return self._in_flight

    async def publish(self, records: Sequence[OutboundRecord]) -> None:
        producer = self._producer
        if producer is None:
            raise BrokerUnavailable("not connected to the broker yet")
        if not records:
            return
        request = _Request(asyncio.get_running_loop().create_future(), len(records))
        produce, delivered = producer.produce, request.delivered
        try:
            for r in records:
                # a list of (str, bytes) is what it takes; the stub's list type is invariant
                headers: Any = r.headers
                produce(r.topic, r.value, r.key, on_delivery=delivered, headers=headers)
        except (BufferError, KafkaException) as exc:  # local queue full, record refused
            request.future.cancel()  # reports of the records already queued are ignored
            raise BrokerUnavailable(repr(exc)) from exc
        if not self._in_flight:
            self._wake.set()
        self._in_flight += 1
        try:
            async with asyncio.timeout(self._settings.ack_timeout_s):
                await request.future
        except TimeoutError as exc:
            raise BrokerUnavailable("no acknowledgement in time") from exc
        finally:
            self._in_flight -= 1

    async def is_ready(self) -> bool:
        producer = self._producer
        if producer is None:
            return False
        now = time.monotonic()
        if now - self._ready_checked_at < 1.0:
            return self._ready
        try:
            metadata = await asyncio.to_thread(producer.list_topics, None, PROBE_TIMEOUT_S)
            self._ready = bool(metadata.brokers)
        except KafkaException:
            self._ready = False
        self._ready_checked_at = now
        return self._ready
