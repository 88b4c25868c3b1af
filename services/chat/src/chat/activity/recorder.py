"""The activity recorder: `tracking.events` → `chat.activity`, in the `chat-activity` group.

Per fetch (up to `max_records`): validate each record with the contracts, map it to a row
(domain.to_row), insert the batch with one statement (`ON CONFLICT (event_id) DO NOTHING`, so
a replay stores nothing twice), publish the dead letters, and only then commit the offsets.
If anything fails, the consumer seeks back to the batch's first offsets and tries again: the
offsets never run ahead of what is stored. A record the database refuses (its data, not the
database being away) is dead-lettered alone, so one bad record cannot stall a partition.

A periodic sweep deletes rows older than `activity_retention_days`, in bounded batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from beckon_contracts.dead_letter import DeadLettered, ReasonCode
from beckon_contracts.topics import TRACKING_DLQ, TRACKING_EVENTS
from beckon_contracts.tracking import parse_tracking_event
from beckon_messaging import PLAINTEXT, KafkaSecurity, classify, dead_letter, encode_dead_letter
from beckon_messaging.consumer import finish_then_cancel
from beckon_messaging.metrics import count_dead_letter
from beckon_messaging.progress import ConsumerProgress, untracked
from pydantic import ValidationError

from chat.activity.domain import ActivityRow, retention_cutoff_id, to_row
from chat.activity.store import ActivityStore
from chat.adapters.bus import cancel

log = logging.getLogger("chat.activity")

GROUP_ID = "chat-activity"
SWEEP_EVERY_S = 600.0
SWEEP_BATCH = 5_000
SWEEP_LOCK = 0x0BEC_AC71  # pg advisory lock: one sweeper at a time across instances


class DeadLetter:
    """A record that will not be stored, with why."""

    __slots__ = ("detail", "errors", "offset", "partition", "raw", "reason")

    def __init__(
        self,
        raw: bytes,
        partition: int,
        reason: ReasonCode,
        detail: str,
        errors: Sequence[Any] = (),
        offset: int | None = None,
    ) -> None:
        self.raw = raw
        self.partition = partition
        self.offset = offset
        self.reason = reason
        self.detail = detail
        self.errors = errors

    def record(self) -> DeadLettered:
        return dead_letter(
            self.raw,
            reason=self.reason,
            detail=self.detail,
            errors=self.errors,
            source=f"{GROUP_ID}:{TRACKING_EVENTS.name}:{self.partition}",
            topic=TRACKING_EVENTS.name,
            partition=self.partition,
            offset=self.offset,
        )


def read_batch(records: Sequence[ConsumerRecord]) -> tuple[list[ActivityRow], list[DeadLetter]]:
    """Validate and map one fetch: the rows to store (deduplicated) and the dead letters."""
    rows: dict[Any, ActivityRow] = {}
    letters: list[DeadLetter] = []
    for record in records:
        raw: bytes = record.value or b""
        try:
            event = parse_tracking_event(raw)
        except ValidationError as exc:
            reason, errors = classify(exc)
            letters.append(
                DeadLetter(raw, record.partition, reason, str(exc), errors, record.offset)
            )
            continue
        row = to_row(event)
        if row is not None:
            rows.setdefault(row.event_id, row)
    return list(rows.values()), letters


class ActivityRecorder:
    """Consumes `tracking.events` into `chat.activity`; every chat instance runs one member."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        bootstrap: str,
        client_id: str,
        retention_days: int,
        max_records: int = 2_000,
        session_timeout_ms: int = 10_000,
        group_id: str = GROUP_ID,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.progress = progress or untracked(group_id)
        self.stop_grace_s = stop_grace_s
        self._stopping = False
        self.pool = pool
        self.producer = producer
        self.retention_days = retention_days
        self.max_records = max_records
        self.consumer = AIOKafkaConsumer(
            TRACKING_EVENTS.name,
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=1000,
            **security.aiokafka_options(),
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.stored = 0
        self.dead_lettered = 0

    async def start(self) -> None:
        await self.consumer.start()
        self._tasks = [
            asyncio.create_task(self._run(), name="activity-recorder"),
            asyncio.create_task(self._sweep_forever(), name="activity-sweep"),
        ]

    async def stop(self) -> None:
        """Finish and commit the fetch in hand (up to `stop_grace_s`), then leave the group."""
        self._stopping = True
        self.progress.close()
        for task in self._tasks:  # the recorder first: it may finish its round
            if task.get_name() == "activity-recorder":
                await finish_then_cancel(task, self.stop_grace_s)
            await cancel(task)
        await self.consumer.stop()

    async def _run(self) -> None:
        with self.progress.running():
            await self._record()

    async def _record(self) -> None:
        backoff = 0.1
        while not self._stopping:
            batches: dict[TopicPartition, list[ConsumerRecord]] = {}
            try:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
                if self._stopping:
                    return  # not handled, not committed: read again by the next owner
                self.progress.fetched(sum(len(records) for records in batches.values()))
                await self.progress.observe_lag(self.consumer)
                if not batches:
                    continue
                await self.handle(batches)
                await self.consumer.commit(
                    {tp: records[-1].offset + 1 for tp, records in batches.items()}
                )
                self.progress.handled()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker or the database is away: retry the same records
                log.exception("activity batch failed; retrying", extra={"backoff_s": backoff})
                for tp, records in batches.items():
                    with contextlib.suppress(Exception):  # not ours any more after a rebalance
                        self.consumer.seek(tp, records[0].offset)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def handle(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Store one fetch and publish its dead letters (the caller commits afterwards)."""
        records = [record for records in batches.values() for record in records]
        rows, letters = read_batch(records)
        if rows:
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    self.stored += await ActivityStore(conn).insert_rows(rows)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
                letters.extend(await self._insert_one_by_one(rows, records))
        for letter in letters:
            dead = letter.record()
            await self.producer.send_and_wait(
                TRACKING_DLQ.name, encode_dead_letter(dead), key=dead.site_id.encode()
            )
            count_dead_letter(TRACKING_DLQ.name, dead)
            log.warning(
                "tracking record dead-lettered",
                extra={"reason": letter.reason, "detail": letter.detail[:200]},
            )
        self.dead_lettered += len(letters)

    async def _insert_one_by_one(
        self, rows: list[ActivityRow], records: Sequence[ConsumerRecord]
    ) -> list[DeadLetter]:
        """The batch was refused for some row's data: store the rest, dead-letter that one."""
        raw_by_id: dict[str, tuple[bytes, int, int]] = {}
        for record in records:
            with contextlib.suppress(Exception):
                raw_by_id[str(orjson.loads(record.value or b"")["event_id"])] = (
                    record.value or b"",
                    record.partition,
                    record.offset,
                )
        letters = []
        async with self.pool.acquire() as conn:
            for row in rows:
                try:
                    async with conn.transaction():
                        self.stored += await ActivityStore(conn).insert_rows([row])
                except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                    raw, partition, offset = raw_by_id.get(str(row.event_id), (b"", 0, None))
                    detail = f"{type(exc).__name__}: {exc}"
                    letters.append(
                        DeadLetter(raw, partition, "processing_failed", detail, offset=offset)
                    )
        return letters

    async def _sweep_forever(self) -> None:
        await asyncio.sleep(30.0)
        while True:
            try:
                deleted = await sweep_expired(self.pool, retention_days=self.retention_days)
                if deleted:
                    log.info("activity swept", extra={"deleted": deleted})
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("activity sweep failed")
            await asyncio.sleep(SWEEP_EVERY_S)


async def sweep_expired(
    pool: asyncpg.Pool,
    *,
    retention_days: int,
    now: datetime | None = None,
    batch: int = SWEEP_BATCH,
) -> int:
    """Delete what is older than the retention, `batch` rows per transaction; returns how
    many. One instance sweeps at a time (the others find the lock taken and skip)."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    below = retention_cutoff_id(cutoff)
    deleted = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SWEEP_LOCK):
                return deleted
            done = await ActivityStore(conn).delete_expired(
                cutoff=cutoff, below_id=below, batch=batch
            )
        deleted += done
        if done < batch:
            return deleted
        await asyncio.sleep(0.05)  # let the inserts breathe between batches
