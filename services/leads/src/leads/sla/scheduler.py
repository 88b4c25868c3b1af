"""The SLA scheduler every leads instance runs: fires due timers, each exactly once.

    scheduler = SlaScheduler(uow, instance="leads-1")
    await scheduler.start()   ...   await scheduler.stop()

A pass claims due timers in batches (`service.fire_due`, one transaction per batch, claimed
with `FOR UPDATE SKIP LOCKED` so instances split the work and never fire a timer twice) until a
batch comes back short. Then it sleeps until the next due time, or `poll_s` at most (timers
stored by another instance far ahead are found then), or until woken: a timer due within a
minute is announced on commit (Postgres NOTIFY on `leads_sla_timers`, heard by every instance),
and `wake()` does the same in-process. Timers that are due but held by another instance's batch
are retried after a short real-time pause.

The clock is injectable (`Clock`: `now()` and `sleep_until(moment, wake)`); `ManualClock` lets
tests move time by hand, so an SLA of hours runs in milliseconds.

A batch that fails (a bug, a lost connection) rolls back whole; the pass then fires its timers
one per transaction, and a timer that still fails is postponed by `retry_s` with its error kept
(`leads.timers.failures`, `last_error`), so one bad lead cannot hold up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
from prometheus_client import Histogram

from leads.sla.service import FireReport, Reassign, fire_due
from leads.sla.store import TIMERS_CHANNEL, TimerQueue
from leads.uow import EVERY_SITE, UnitOfWorkFactory

log = logging.getLogger("leads.sla")
BUSY_PAUSE_S = 0.05  # due timers held by another instance: look again after this (real time)
FAILED_PAUSE_S = 1.0  # after an error outside a batch (e.g. the database is away)


class Clock(Protocol):
    """Time as the scheduler sees it."""

    def now(self) -> datetime: ...

    async def sleep_until(self, moment: datetime, wake: asyncio.Event) -> None:
        """Return at `moment`, or earlier once `wake` is set."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime, wake: asyncio.Event) -> None:
        delay = (moment - self.now()).total_seconds()
        if delay <= 0 or wake.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), delay)


class ManualClock:
    """A clock that moves only when told (`advance`, `set`): for tests and benchmarks."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        return self.set(self._now + delta)

    def set(self, moment: datetime) -> datetime:
        if moment < self._now:
            raise ValueError(f"a clock does not go back ({moment} < {self._now})")
        self._now = moment
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        return moment

    async def sleep_until(self, moment: datetime, wake: asyncio.Event) -> None:
        while self._now < moment and not wake.is_set():
            waits = [
                asyncio.ensure_future(self._moved.wait()),
                asyncio.ensure_future(wake.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()


class SlaScheduler:
    """Fires this database's due SLA timers, together with the other instances."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        instance: str,
        clock: Clock | None = None,
        poll_s: float = 5.0,
        batch: int = 500,
        retry_s: float = 30.0,
        reassign: Reassign | None = None,
        listen: bool = True,
        fire_lag: Histogram | None = None,
    ) -> None:
        self.uow = uow
        self.instance = instance
        self.clock: Clock = clock or SystemClock()
        self.poll = timedelta(seconds=poll_s)
        self.batch = batch
        self.retry = timedelta(seconds=retry_s)
        self.reassign = reassign
        self.listen = listen
        self.fired = 0  # timers this instance fired (a metric)
        self.fire_lag = fire_lag  # leads_sla_fire_lag_seconds: each firing's lateness
        self.lateness_s: list[float] = []  # the last pass's, for the benchmark
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.pool.PoolConnectionProxy | None = None
        self._settled = asyncio.Condition()
        self._idle_since: datetime | None = None  # the clock at the start of the last idle pass

    # ---- life ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("the SLA scheduler runs already")
        if self.listen:
            await self._listen()
        self._task = asyncio.create_task(self._run(), name=f"sla-scheduler-{self.instance}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._unlisten()

    def wake(self) -> None:
        """Look for due timers now (a timer due sooner than planned was stored)."""
        self._wake.set()

    async def _listen(self) -> None:
        conn = await self.uow.pool.acquire()
        try:
            await conn.add_listener(TIMERS_CHANNEL, self._heard)
        except BaseException:
            await self.uow.pool.release(conn)
            raise
        self._listener = conn

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.remove_listener(TIMERS_CHANNEL, self._heard)
            # a lost connection was taken back by the pool already: nothing to give back
            with contextlib.suppress(asyncpg.InterfaceError):
                await self.uow.pool.release(conn)

    def _listening(self) -> bool:
        """Whether the LISTEN connection still serves. When its connection is lost (Postgres
        restarted, the link cut) the pool takes the proxy back, and the proxy then raises on
        every call, `is_closed()` too: that is "not listening" as well, not a failed pass
        (taking it for one stopped the scheduler for good)."""
        conn = self._listener
        if conn is None:
            return False
        try:
            return not conn.is_closed()
        except asyncpg.InterfaceError:
            return False

    def _heard(self, conn: object, pid: int, channel: str, payload: str) -> None:
        self.wake()

    # ---- the loop -----------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._wake.clear()
            started = self.clock.now()
            try:
                if self.listen and not self._listening():
                    await self._relisten()
                await self.run_pass()
                async with self.uow.read(EVERY_SITE) as tx:
                    next_due = await tx.store(TimerQueue).next_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("SLA scheduler pass failed; trying again")
                await self._pause(FAILED_PAUSE_S)
                continue
            now = self.clock.now()
            if next_due is not None and next_due <= now:
                await self._pause(BUSY_PAUSE_S)  # someone else's batch holds them
                continue
            await self._idle(started)
            until = now + self.poll if next_due is None else min(next_due, now + self.poll)
            await self.clock.sleep_until(until, self._wake)

    async def _relisten(self) -> None:
        await self._unlisten()
        await self._listen()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _idle(self, started: datetime) -> None:
        async with self._settled:
            self._idle_since = started
            self._settled.notify_all()

    async def settled(self, *, at: datetime | None = None) -> None:
        """Return once a pass that began at clock time `at` (default: now) or later found
        nothing more to fire (tests: move the clock, then await this)."""
        moment = self.clock.now() if at is None else at
        self.wake()
        async with self._settled:
            await self._settled.wait_for(
                lambda: self._idle_since is not None and self._idle_since >= moment
            )

    async def run_pass(self) -> int:
        """Fire everything due now, batch after batch; returns how many timers fired."""
        fired = 0
        lateness: list[float] = []
        while True:
            now = self.clock.now()
            try:
                report = await self._batch(now, self.batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("an SLA batch failed; firing its timers one by one")
                report = await self._one_by_one(now)
            fired += report.fired
            lateness.extend(report.lateness_s)
            if self.fire_lag is not None:
                for late_s in report.lateness_s:
                    self.fire_lag.observe(max(0.0, late_s))
            if report.claimed < self.batch:
                break
        self.fired += fired
        self.lateness_s = lateness
        return fired

    async def _batch(self, now: datetime, limit: int, only: list[int] | None = None) -> FireReport:
        async with self.uow(EVERY_SITE) as tx:
            return await fire_due(
                tx,
                now=now,
                limit=limit,
                instance=self.instance,
                reassign=self.reassign,
                only=only,
            )

    async def _one_by_one(self, now: datetime) -> FireReport:
        async with self.uow.read(EVERY_SITE) as tx:
            ids = await tx.store(TimerQueue).due_ids(now, self.batch)
        total = FireReport()
        for timer_id in ids:
            try:
                report = await self._batch(now, 1, only=[timer_id])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("SLA timer %s failed; postponed", timer_id)
                async with self.uow(EVERY_SITE) as tx:
                    await tx.store(TimerQueue).postpone(
                        timer_id, until=now + self.retry, error=f"{type(exc).__name__}: {exc}"
                    )
                continue
            total.claimed += report.claimed
            total.fired += report.fired
            total.cancelled += report.cancelled
            total.left += report.left
            total.lateness_s.extend(report.lateness_s)
        total.claimed = min(total.claimed, self.batch - 1)  # the pass ends after this
        return total
