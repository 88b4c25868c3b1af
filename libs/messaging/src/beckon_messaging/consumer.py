"""A consumer group's loop that never skips a record, for the services that keep their effects
in Postgres (leads' capture, the notifier's intake).

- **Offsets after effects.** A poll's records go to `process`; their offsets are committed
  only once it returned (while the next poll is fetched). A crash in between re-reads them,
  so each record's unit of work must be idempotent (its `first_delivery` of the event id).
- **Until done.** `handle_until_done` runs one record's handler again with a growing pause
  while the world is away (Postgres, the broker: `transient`), forever, and gives up a
  record only after `max_attempts` unexpected failures, through the caller's dead letter.
- **A clean stop.** `stop` lets the poll in hand finish (up to `stop_grace_s`) and commits
  it before the consumer leaves the group, so a rolling restart re-reads nothing handled.
- **Watched.** Each poll is reported to its `ConsumerProgress` (the service's `/healthz`
  and the consumer gauges read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from beckon_messaging.progress import ConsumerProgress, untracked
from beckon_messaging.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger("beckon.consumer")

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
Polled: TypeAlias = "dict[TopicPartition, list[Record]]"
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")
# The world is away, not the record: a consumer tries the same record again (never skips it)
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError,  # admin shutdown, cannot connect now
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
    KafkaError,
)


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.2
    max_s: float = 10.0
    max_attempts: int = 5  # for errors that are neither transient nor poison

    def pause(self, attempt: int) -> float:
        return float(min(self.max_s, self.initial_s * 2 ** min(attempt - 1, 20)))


async def handle_until_done(
    handle: Callable[[Record], Awaitable[T]],
    give_up: Callable[[BaseException, Record], Awaitable[T]],
    record: Record,
    *,
    transient: tuple[type[BaseException], ...],
    backoff: Backoff,
    name: str,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """`handle(record)`, tried again while a `transient` error says the world is away (never
    skipping the record), and handed to `give_up` (a dead letter) after `backoff.max_attempts`
    other failures."""
    attempt = 0
    failures = 0
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    while True:
        attempt += 1
        try:
            return await handle(record)
        except asyncio.CancelledError:
            raise
        except transient as error:
            log.warning(
                f"{name} could not handle a record; trying again",
                extra={**where, "error": repr(error)},
            )
        except Exception as error:
            failures += 1
            log.exception(f"{name} failed on a record", extra=where)
            if failures >= backoff.max_attempts:
                with contextlib.suppress(*transient):
                    return await give_up(error, record)
        await sleep(backoff.pause(attempt))


async def finish_then_cancel(task: asyncio.Task[Any] | None, grace_s: float) -> None:
    """Let a loop that was told to stop finish its round (handle and commit what it holds)
    for up to `grace_s`, then cancel it and wait until it has ended."""
    if task is None:
        return
    if not task.done():
        with contextlib.suppress(Exception):  # its own failure was its loop's to report
            await asyncio.wait_for(asyncio.shield(task), grace_s)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class GroupConsumer:
    """`process(polled)` for every poll of `topics` in the group `group_id`; the offsets of
    what it processed are committed after it returns (one commit at a time, in order).
    `progress` (by default unwatched) hears of every poll."""

    def __init__(
        self,
        topics: Iterable[str],
        process: Callable[[Polled], Awaitable[None]],
        *,
        bootstrap: str,
        group_id: str,
        client_id: str,
        name: str,
        backoff: Backoff = Backoff(),
        before: Callable[[], Awaitable[object]] | None = None,
        session_timeout_ms: int = 10_000,
        fetch_max_wait_ms: int = 50,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.topics = tuple(topics)
        self.process = process
        self.name = name
        self.backoff = backoff
        self.before = before
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "client_id": client_id,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": 1000,
            **security.aiokafka_options(),
        }
        self.consumer: AIOKafkaConsumer | None = None
        self.committed = 0  # records whose offsets were committed (tests, metrics)
        self._committing: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.progress = progress or untracked(group_id)
        self.stop_grace_s = stop_grace_s
        self._stopping = False

    async def start(self) -> None:
        """Start consuming in the background (returns at once, broker up or not)."""
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish the poll in hand and commit it (for up to `stop_grace_s`; cut short, its
        records are read again by the next owner), then leave the group."""
        self._stopping = True
        self.progress.close()
        # still waiting for its start (`before`, a broker): nothing in hand to finish
        grace_s = self.stop_grace_s if self.consumer is not None else 0.0
        await finish_then_cancel(self._task, grace_s)
        if self._committing is not None:  # the last round's offsets
            with contextlib.suppress(Exception):
                await self._committing
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _connect(self) -> AIOKafkaConsumer:
        attempt = 0
        while True:
            attempt += 1
            consumer = AIOKafkaConsumer(*self.topics, **self._options)
            try:
                await consumer.start()
                return consumer
            except KafkaError:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                log.warning(f"{self.name} cannot reach Kafka; trying again")
                await asyncio.sleep(self.backoff.pause(attempt))

    async def _run(self) -> None:
        with self.progress.running():
            await self._consume()

    async def _consume(self) -> None:
        if self.before is not None:
            await self.before()
        self.consumer = await self._connect()
        attempt = 0
        while not self._stopping:
            try:
                polled = await self.consumer.getmany(timeout_ms=500)  # all that is buffered
                attempt = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup: keep consuming
                attempt += 1
                log.exception(f"{self.name} could not fetch; trying again")
                await asyncio.sleep(self.backoff.pause(attempt))
                continue
            if self._stopping:
                return  # not handled, not committed: the partitions' next owner reads them
            self.progress.fetched(sum(len(records) for records in polled.values()))
            await self.progress.observe_lag(self.consumer)
            if not polled:
                continue
            await self.process(polled)
            self.progress.handled()
            offsets = {tp: records[-1].offset + 1 for tp, records in polled.items()}
            # the commit goes on while the next records are fetched (one at a time, in order)
            if self._committing is not None:
                await self._committing
            self._committing = asyncio.create_task(
                self._commit(offsets, sum(len(records) for records in polled.values()))
            )

    async def _commit(self, offsets: dict[TopicPartition, int], count: int) -> None:
        assert self.consumer is not None
        try:
            await self.consumer.commit(offsets)
            self.committed += count
        except CommitFailedError:
            # the partitions moved to another member meanwhile: it reads them again from the
            # last commit, and the units' first_delivery makes that change nothing
            log.warning(f"{self.name} lost its partitions before committing; they are re-read")
        except KafkaError:
            log.exception(f"{self.name} could not commit; the records will be read again")
