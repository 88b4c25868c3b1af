"""The transactional outbox every Postgres-backed service shares (chat, leads).

A use case stores the records it must publish (`add_outbox`) in the same transaction as the
change they describe; after the commit it wakes the service's `OutboxRelay`, which publishes
pending rows in id order and marks them published. One relay at a time (of every instance
on the database) holds the outbox's advisory lock, so rows committed one after another reach
their topics in commit order. Each row's stored trace context goes out as the record's
headers. Delivery is at least once: a batch the broker does not acknowledge in time is sent
again later, with the same bytes (and so the same event ids, which consumers deduplicate).

Every `measure_every_s` the relay's loop also counts the pending rows (up to
`MEASURE_CAP`) and the age of the oldest into `beckon_outbox_pending` and
`beckon_outbox_oldest_age_seconds` (label `outbox`: the table), whichever instance holds the lock.

The outbox table (per service, in its own schema) has the columns
`id bigserial, topic text, key bytea, value bytea, headers jsonb, created_at, published_at`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from beckon_observability import trace_carrier, trace_headers

from beckon_messaging.metrics import OUTBOX_OLDEST_AGE, OUTBOX_PENDING

log = logging.getLogger("beckon.outbox")

RELAY_BATCH = 500
KEEP_PUBLISHED_S = 3600
# How long the relay waits for a batch's acknowledgements before it gives up the batch
ACK_WAIT_S = 15.0
# How long `stop` lets a batch in flight finish
STOP_GRACE_S = 5.0
# How often the relay counts its backlog for the gauges, and the most rows it counts
MEASURE_EVERY_S = 15.0
MEASURE_CAP = 100_000
# `schema.table`: the only text a query here takes from its caller (never user input)
_TABLE = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One record to publish once its transaction commits."""

    topic: str
    key: bytes
    value: bytes


def outbox_table(name: str) -> str:
    """`name` if it is a plain `schema.table` (it is put into SQL text), else ValueError."""
    if not _TABLE.match(name):
        raise ValueError(f"an outbox table is named schema.table in lower case, not {name!r}")
    return name


async def add_outbox(
    conn: asyncpg.Connection,
    table: str,
    records: Sequence[OutboxRecord],
    *,
    trace: Mapping[str, str] | None = None,
) -> None:
    """Store records for the relay, with `trace` (by default the current span's trace
    context: the request's, or the consumed record's) to publish as their headers."""
    if records:
        headers = orjson.dumps(trace_carrier() if trace is None else dict(trace)).decode()
        await conn.executemany(
            f"INSERT INTO {outbox_table(table)} (topic, key, value, headers) "  # noqa: S608
            "VALUES ($1, $2, $3, $4::jsonb)",
            [(record.topic, record.key, record.value, headers) for record in records],
        )


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class OutboxRelay:
    """Publishes one service's committed outbox rows (`table`), one relay at a time per
    database (`lock_id`: the service's own pg advisory lock id)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        *,
        table: str,
        lock_id: int,
        poll_s: float,
        ack_wait_s: float = ACK_WAIT_S,
        batch: int = RELAY_BATCH,
        keep_published_s: float = KEEP_PUBLISHED_S,
        measure_every_s: float = MEASURE_EVERY_S,
    ) -> None:
        self.pool = pool
        self.producer = producer
        self.table = outbox_table(table)
        self.lock_id = lock_id
        self.poll_s = poll_s
        self.ack_wait_s = ack_wait_s
        self.batch = batch
        self.keep_published_s = keep_published_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_cleanup = 0.0
        self.measure_every_s = measure_every_s
        self._last_measure = -measure_every_s
        self.published = 0

    def kick(self) -> None:
        """Something was committed: publish it now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay {self.table}")

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Let a batch in flight finish for up to `grace_s` (it was sent: marking it spares
        consumers a second copy), then stop; a batch cut short is sent again later."""
        self._stopping = True
        self._wake.set()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), grace_s)
        await _cancel(self._task)

    async def _run(self) -> None:
        backoff = 0.05
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()
            if self._stopping:
                return
            await self._measure_now_and_then()
            try:
                while not self._stopping:
                    sent = await self.publish_pending()
                    if sent is None:  # another instance's relay holds the lock: retry soon
                        await asyncio.sleep(0.005)
                        continue
                    if sent < self.batch:
                        break
                backoff = 0.05
                if not self._stopping:
                    await self._cleanup()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "outbox relay failed; retrying",
                    extra={"table": self.table, "backoff_s": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wake.set()

    async def publish_pending(self) -> int | None:
        """Publish one batch in id order; None when another relay holds the lock."""
        async with self.pool.acquire() as conn, conn.transaction():
            # The lock, then (only when it is ours) the batch, in one round trip: the first
            # row says whether the lock was taken, the rest are the batch (none: nothing
            # pending). Marking rows published need not wait for the WAL flush: a mark lost
            # in a crash sends those rows again, which at least once allows (consumers
            # deduplicate), and the relay's next batch does not queue behind the disk.
            found = await conn.fetch(
                "SELECT held.locked, o.id, o.topic, o.key, o.value, o.headers "  # noqa: S608
                "FROM (SELECT pg_try_advisory_xact_lock($1) "
                "      AND set_config('synchronous_commit', 'off', true) = 'off' AS locked) "
                "     AS held "
                "LEFT JOIN LATERAL (SELECT id, topic, key, value, headers "
                f"                  FROM {self.table} "
                "                   WHERE held.locked AND published_at IS NULL "
                "                   ORDER BY id LIMIT $2) AS o ON true "
                "ORDER BY o.id",
                self.lock_id,
                self.batch,
            )
            if not found[0]["locked"]:
                return None
            rows = [row for row in found if row["id"] is not None]
            if not rows:
                return 0
            futures = [
                await self.producer.send(
                    row["topic"],
                    row["value"],
                    key=row["key"],
                    headers=trace_headers(orjson.loads(row["headers"])),
                )
                for row in rows
            ]
            # The idempotent producer retries a batch until the broker takes it, however long
            # an outage lasts; the transaction (and the relay lock every instance polls for)
            # is not held that long. On time-out it rolls back and the rows are sent again
            # later: at least once, with the same event ids, which consumers deduplicate.
            await asyncio.wait_for(asyncio.gather(*futures), self.ack_wait_s)
            await conn.execute(
                f"UPDATE {self.table} SET published_at = now() "  # noqa: S608
                "WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
            )
        self.published += len(rows)
        return len(rows)

    async def measure(self) -> tuple[int, float]:
        """The pending rows (up to `MEASURE_CAP`) and the oldest one's age in seconds, into
        the outbox gauges."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM "  # noqa: S608
                f"{self.table} WHERE published_at IS NULL LIMIT $1) AS capped) AS pending, "
                "COALESCE(EXTRACT(EPOCH FROM now() - (SELECT created_at FROM "
                f"{self.table} WHERE published_at IS NULL ORDER BY id LIMIT 1)), 0)::float8 "
                "AS oldest",
                MEASURE_CAP,
            )
        pending, oldest = int(row["pending"]), max(0.0, float(row["oldest"]))
        OUTBOX_PENDING.labels(self.table).set(pending)
        OUTBOX_OLDEST_AGE.labels(self.table).set(oldest)
        return pending, oldest

    async def _measure_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._last_measure < self.measure_every_s:
            return
        self._last_measure = now
        try:
            await self.measure()
        except asyncio.CancelledError:
            raise
        except Exception:  # the database is away: the relay's own retry says so
            log.warning("could not count the outbox backlog", extra={"table": self.table})

    async def _cleanup(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < 60:
            return
        self._last_cleanup = now
        async with self.pool.acquire() as conn:
            await conn.execute(
                f"DELETE FROM {self.table} "  # noqa: S608
                "WHERE published_at < now() - make_interval(secs => $1)",
                float(self.keep_published_s),
            )
