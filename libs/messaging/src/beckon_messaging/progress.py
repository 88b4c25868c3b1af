"""Whether a service's Kafka consumers still make progress: what its `/healthz` answers.

Each consumer loop reports to its `ConsumerProgress` what it does (`fetched` a poll's records,
`handled` them, the `lag` its fetch left) and ends inside `running()`; a `Watchdog` holds the
service's reports and judges them when asked, from memory (no call to Kafka or Postgres per
probe). A consumer is *stalled* when it has work waiting (records fetched and not yet handled,
or lag left behind its fetch) and has made no progress for `stall_after_s`, or when its loop
ended without being stopped. A consumer whose broker is away is not stalled: it has nothing in
hand, and a restart would not bring the broker back.

Progress is a handled poll, or a poll that found nothing to do. The same reports feed
`beckon_consumer_lag` and `beckon_consumer_last_progress_timestamp_seconds` (`collector`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import Field
from pydantic_settings import BaseSettings

Clock = Callable[[], float]
StallReason = Literal["no_progress", "loop_stopped"]
DEFAULT_STALL_AFTER_S = 300.0


class PartitionLike(Protocol):
    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class LagSource(Protocol):
    """What of an aiokafka consumer the lag is read from (no broker call: the high
    watermark comes with every fetch response, the position is where the fetch left off)."""

    def assignment(self) -> Any: ...

    def highwater(self, partition: Any) -> int | None: ...

    async def position(self, partition: Any) -> int: ...


@dataclass(frozen=True, slots=True)
class Stall:
    """Why a consumer is not live: its name, the reason and how long it has been so."""

    consumer: str
    reason: StallReason
    since_s: float

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "stalled",
            "consumer": self.consumer,
            "reason": self.reason,
            "since_s": round(self.since_s, 1),
        }


class ConsumerProgress:
    """One consumer loop's reports (its name is the group, or what the loop follows)."""

    def __init__(self, name: str, *, clock: Clock = time.monotonic, wall: Clock = time.time):
        self.name = name
        self._clock = clock
        self._wall = wall
        self._progress_at = clock()
        self.progress_wall = wall()  # unix time of the last progress (the metric)
        self.in_hand = 0  # records fetched and not yet handled
        self.lag: dict[tuple[str, int], int] = {}
        self._ended_at: float | None = None
        self.closed = False

    def fetched(self, records: int) -> None:
        """A poll returned `records` (none: the consumer found nothing to do, which is
        progress)."""
        if records:
            self.in_hand = records
        else:
            self._progressed()

    def handled(self, left: int = 0) -> None:
        """What the last poll returned has been handled (its offsets may be committed); a
        producer: acknowledgements arrived, `left` records still wait for theirs."""
        self.in_hand = left
        self._progressed()

    def holding(self, records: int) -> None:
        """`records` wait to be handled (a producer: for their acknowledgement)."""
        self.in_hand = records

    def set_lag(self, lag: Mapping[tuple[str, int], int]) -> None:
        """Records between each assigned partition's position and its high watermark."""
        self.lag = dict(lag)

    async def observe_lag(self, consumer: LagSource) -> None:
        """`set_lag` from what the consumer's last fetch told it (partitions it has not fetched
        from yet are left out)."""
        lag: dict[tuple[str, int], int] = {}
        try:
            assigned = list(consumer.assignment())
        except Exception:  # a gauge is never worth a consumer's loop
            return
        for partition in assigned:
            # a rebalance may take a partition away meanwhile: it is left out
            with contextlib.suppress(Exception):
                highwater = consumer.highwater(partition)
                if highwater is not None:
                    position = await consumer.position(partition)
                    lag[(partition.topic, partition.partition)] = max(0, highwater - position)
        self.set_lag(lag)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Around the consumer's loop: a loop that ends without `close()` is reported."""
        self._ended_at = None
        self._progressed()
        try:
            yield
        finally:
            self._ended_at = self._clock()

    def close(self) -> None:
        """The consumer is being stopped on purpose: its loop's end is no failure."""
        self.closed = True

    def stall(self, stall_after_s: float) -> Stall | None:
        """Why this consumer is not live now, or None."""
        now = self._clock()
        if self.closed:
            return None
        if self._ended_at is not None:
            return Stall(self.name, "loop_stopped", now - self._ended_at)
        idle_for = now - self._progress_at
        if self.waiting and idle_for >= stall_after_s:
            return Stall(self.name, "no_progress", idle_for)
        return None

    @property
    def waiting(self) -> bool:
        return self.in_hand > 0 or any(lag > 0 for lag in self.lag.values())

    def _progressed(self) -> None:
        self._progress_at = self._clock()
        self.progress_wall = self._wall()


class Watchdog:
    """The consumers of one service, judged when its `/healthz` asks."""

    def __init__(
        self,
        stall_after_s: float = DEFAULT_STALL_AFTER_S,
        *,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
    ) -> None:
        self.stall_after_s = stall_after_s
        self._clock = clock
        self._wall = wall
        self._consumers: list[ConsumerProgress] = []

    def track(self, name: str) -> ConsumerProgress:
        """A new consumer's reports, watched from now on."""
        progress = ConsumerProgress(name, clock=self._clock, wall=self._wall)
        self._consumers.append(progress)
        return progress

    @property
    def consumers(self) -> tuple[ConsumerProgress, ...]:
        return tuple(self._consumers)

    def stalls(self) -> list[Stall]:
        return [
            stall
            for progress in self._consumers
            if (stall := progress.stall(self.stall_after_s)) is not None
        ]

    def health(self) -> tuple[int, dict[str, Any]]:
        """`/healthz`'s status and body: 200 while every consumer is live, else 503 with the
        one stalled longest, how many are stalled and their names."""
        stalls = self.stalls()
        if not stalls:
            return 200, {"status": "ok"}
        worst = max(stalls, key=lambda stall: stall.since_s)
        return 503, {
            **worst.as_json(),
            "stalled_consumers": len(stalls),
            "stalled": sorted(stall.consumer for stall in stalls),
        }

    def collector(self) -> Collector:
        """The consumer gauges, read from the reports at scrape time."""
        return _ProgressCollector(self)


class _ProgressCollector(Collector):
    def __init__(self, watchdog: Watchdog) -> None:
        self.watchdog = watchdog

    def collect(self) -> Iterable[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "beckon_consumer_lag",
            "Records between the consumer's position and the high watermark (as of its last fetch)",
            labels=["group", "topic", "partition"],
        )
        progress = GaugeMetricFamily(
            "beckon_consumer_last_progress_timestamp_seconds",
            "Unix time the consumer last handled a batch or found nothing to do",
            labels=["group"],
        )
        for consumer in self.watchdog.consumers:
            if consumer.closed:
                continue
            progress.add_metric([consumer.name], consumer.progress_wall)
            for (topic, partition), records in sorted(consumer.lag.items()):
                lag.add_metric([consumer.name, topic, str(partition)], records)
        yield lag
        yield progress


def untracked(name: str) -> ConsumerProgress:
    """Reports nobody reads: for a consumer built without a watchdog (tools, some tests)."""
    return ConsumerProgress(name)


class ProgressSettings(BaseSettings):
    """Every service's liveness threshold (its own prefix: `CHAT_STALL_AFTER_S`, ...)."""

    stall_after_s: float = Field(
        default=DEFAULT_STALL_AFTER_S,
        gt=0,
        description="/healthz answers 503 when a Kafka consumer with work waiting (lag, or "
        "records in hand) has made no progress for this long, or its loop stopped",
    )
