"""The consumer watchdog's judgement, on a fake clock (no broker, no event loop timing)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from beckon_messaging.progress import ConsumerProgress, ProgressSettings, Watchdog
from prometheus_client import CollectorRegistry, generate_latest
from pydantic_settings import SettingsConfigDict


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Partition:
    topic: str
    partition: int


@dataclass
class FakeConsumer:
    """What the lag is read from: high watermarks from the last fetch, positions."""

    highwaters: dict[Partition, int | None] = field(default_factory=dict)
    positions: dict[Partition, int] = field(default_factory=dict)

    def assignment(self) -> set[Partition]:
        return set(self.highwaters)

    def highwater(self, partition: Partition) -> int | None:
        return self.highwaters[partition]

    async def position(self, partition: Partition) -> int:
        if partition not in self.positions:
            raise AssertionError("partition is not assigned")  # taken by a rebalance
        return self.positions[partition]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def watchdog(clock: FakeClock) -> Watchdog:
    return Watchdog(300, clock=clock, wall=lambda: clock.now + 1_700_000_000)


def test_a_consumer_with_records_in_hand_stalls_after_the_threshold(watchdog, clock):
    progress = watchdog.track("leads")
    with progress.running():
        progress.fetched(5)
        clock.now += 299
        assert watchdog.health() == (200, {"status": "ok"})
        clock.now += 1
        status, body = watchdog.health()
    assert status == 503
    assert body["consumer"] == "leads"


def test_stalled_body_names_the_consumer_reason_and_duration(watchdog, clock):
    progress = watchdog.track("notifier")
    with progress.running():
        progress.fetched(1)
        clock.now += 412.34
        assert watchdog.health() == (
            503,
            {
                "status": "stalled",
                "consumer": "notifier",
                "reason": "no_progress",
                "since_s": 412.3,
                "stalled_consumers": 1,
                "stalled": ["notifier"],
            },
        )


def test_handling_the_batch_is_progress(watchdog, clock):
    progress = watchdog.track("chat")
    with progress.running():
        progress.fetched(5)
        clock.now += 299
        progress.handled()
        progress.fetched(5)
        clock.now += 299
        assert watchdog.health()[0] == 200


def test_an_idle_consumer_never_stalls(watchdog, clock):
    progress = watchdog.track("chat")
    with progress.running():
        progress.fetched(0)
        clock.now += 10_000
        assert watchdog.health()[0] == 200


def test_a_consumer_whose_fetches_hang_stalls_only_with_lag_waiting(watchdog, clock):
    idle = watchdog.track("idle")
    behind = watchdog.track("behind")
    with idle.running(), behind.running():
        idle.set_lag({("t", 0): 0})
        behind.set_lag({("t", 0): 0, ("t", 1): 7})
        clock.now += 301  # no poll returned since: both are stuck in a fetch
        status, body = watchdog.health()
    assert status == 503
    assert body["consumer"] == "behind"
    assert body["stalled_consumers"] == 1


def test_a_poll_that_finds_nothing_is_progress_even_with_old_lag(watchdog, clock):
    progress = watchdog.track("chat")
    with progress.running():
        progress.set_lag({("t", 0): 3})
        clock.now += 299
        progress.fetched(0)
        clock.now += 299
        assert watchdog.health()[0] == 200


def test_a_loop_that_ends_by_itself_is_reported_at_once(watchdog, clock):
    progress = watchdog.track("leads")
    with pytest.raises(RuntimeError), progress.running():
        raise RuntimeError("the handler's bug")
    clock.now += 2
    assert watchdog.health() == (
        503,
        {
            "status": "stalled",
            "consumer": "leads",
            "reason": "loop_stopped",
            "since_s": 2.0,
            "stalled_consumers": 1,
            "stalled": ["leads"],
        },
    )


def test_a_consumer_stopped_on_purpose_is_not_reported(watchdog, clock):
    progress = watchdog.track("leads")
    progress.fetched(5)
    with progress.running():
        progress.close()
    clock.now += 1000
    assert watchdog.health()[0] == 200


def test_the_worst_stall_is_reported(watchdog, clock):
    first = watchdog.track("first")
    second = watchdog.track("second")
    with first.running(), second.running():
        first.fetched(1)
        clock.now += 100
        second.fetched(1)
        clock.now += 400
        _, body = watchdog.health()
    assert body["consumer"] == "first"
    assert body["stalled_consumers"] == 2
    assert body["stalled"] == ["first", "second"]


async def test_lag_is_the_high_watermark_less_the_position():
    consumer = FakeConsumer(
        highwaters={Partition("a", 0): 10, Partition("a", 1): None, Partition("b", 0): 4},
        positions={Partition("a", 0): 7, Partition("a", 1): 0, Partition("b", 0): 4},
    )
    progress = ConsumerProgress("g")
    await progress.observe_lag(consumer)
    # a partition not fetched from yet has no high watermark: left out
    assert progress.lag == {("a", 0): 3, ("b", 0): 0}


async def test_a_partition_taken_by_a_rebalance_is_left_out():
    consumer = FakeConsumer(
        highwaters={Partition("a", 0): 10, Partition("a", 1): 5},
        positions={Partition("a", 0): 9},
    )
    progress = ConsumerProgress("g")
    await progress.observe_lag(consumer)
    assert progress.lag == {("a", 0): 1}


def test_the_gauges_read_the_reports(watchdog, clock):
    progress = watchdog.track("leads")
    stopped = watchdog.track("gone")
    stopped.close()
    with progress.running():
        progress.set_lag({("chat.events", 2): 42})
        clock.now += 5
        progress.fetched(0)
    registry = CollectorRegistry()
    registry.register(watchdog.collector())
    text = generate_latest(registry).decode()
    assert 'beckon_consumer_lag{group="leads",partition="2",topic="chat.events"} 42.0' in text
    assert 'beckon_consumer_last_progress_timestamp_seconds{group="leads"} 1.700001005e+09' in text
    assert 'group="gone"' not in text


def test_the_threshold_is_a_setting_of_each_service(monkeypatch):
    class Settings(ProgressSettings):
        model_config = SettingsConfigDict(env_prefix="SOME_")

    assert Settings().stall_after_s == 300
    monkeypatch.setenv("SOME_STALL_AFTER_S", "30")
    assert Settings().stall_after_s == 30
