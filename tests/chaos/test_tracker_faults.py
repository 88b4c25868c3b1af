"""The tracker path under faults, one at a time: two trackers (`python -m tracker`, as `make dev`
runs it) on a broker of their own, visitors posting snippet and Segment batches with fresh event
ids to both, and a ledger of every id answered 2xx. Faults: a tracker SIGKILLed and restarted;
the broker SIGKILLed and restarted on its log directory; the link between one tracker and the
broker cut (refused, then blackholed) and slowed, through the battery's proxy.

Checked after each: every accepted event is on `tracking.events` exactly once (read straight
from the broker), no 5xx but 503, and every 503 carries Retry-After. The cut also proves the
proxy is really in the path: the cut instance answers 503 while the other keeps accepting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_devstack.chaos.stack import ChaosStack
from beckon_devstack.chaos.tracker_traffic import (
    TrackerCheck,
    TrackerLedger,
    TrackerTraffic,
    check_tracker,
)

from .conftest import StackFactory, wait_until

pytestmark = pytest.mark.integration

# the tracker answers 503 this long after its broker went away (its default is 10 s)
ACK_TIMEOUT_S = "3"
WARM_UP_EVENTS = 150  # accepted before the fault, so the fault hits a running stream
AFTER_EVENTS = 150  # accepted after recovery


@pytest.fixture(scope="module")
def stack(chaos_stack: StackFactory) -> ChaosStack:
    return chaos_stack(
        services={"tracker": 2},
        kafka_proxied=[("tracker", 0)],
        extra_env={"tracker": {"TRACKER_ACK_TIMEOUT_S": ACK_TIMEOUT_S}},
    )


def run_with_fault(stack: ChaosStack, fault: Callable[[TrackerTraffic], None]) -> TrackerCheck:
    """Traffic on, `fault` (which returns once the system should have recovered), traffic on
    until more is accepted, then the ledger checked against the topic."""
    traffic = TrackerTraffic(stack.target(), stack.store_origin, concurrency=6)
    traffic.start()
    try:
        wait_until(lambda: traffic.ledger.accepted >= WARM_UP_EVENTS, "traffic accepted")
        fault(traffic)
        after = traffic.ledger.accepted
        wait_until(
            lambda: traffic.ledger.accepted >= after + AFTER_EVENTS, "traffic accepted again"
        )
    finally:
        traffic.stop()
    ledger = traffic.ledger
    check = check_tracker(ledger, stack.target().kafka_bootstrap)
    assert check.lost == [], f"{len(check.lost)} accepted events not on the topic"
    assert check.duplicated == {}, f"accepted events on the topic twice: {check.duplicated}"
    assert ledger.server_errors == 0, f"5xx other than 503: {ledger.statuses}"
    assert ledger.no_retry_after == 0, "a 503 without Retry-After"
    return check


def test_tracker_sigkill_and_restart(stack: ChaosStack) -> None:
    def fault(traffic: TrackerTraffic) -> None:
        stack.kill("tracker", 1)
        before = traffic.ledger.accepted
        # the other instance keeps accepting while this one is down
        wait_until(lambda: traffic.ledger.accepted > before + 30, "the survivor accepts")
        stack.restart("tracker", 1)

    run_with_fault(stack, fault)


def test_broker_sigkill_and_restart_on_its_log_dir(stack: ChaosStack) -> None:
    seen: dict[str, int] = {}

    def fault(traffic: TrackerTraffic) -> None:
        refused = traffic.ledger.statuses[503]
        stack.kill_broker()
        wait_until(lambda: traffic.ledger.statuses[503] > refused, "a 503 while it is down")
        seen["503"] = traffic.ledger.statuses[503] - refused
        stack.start_broker()

    check = run_with_fault(stack, fault)
    assert seen["503"] > 0
    assert check.accepted > WARM_UP_EVENTS + AFTER_EVENTS - 1


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_link_to_kafka_cut_and_healed(stack: ChaosStack, mode: str) -> None:
    link = stack.kafka_link("tracker", 0)
    carried = link.stats.bytes_up
    seen: dict[str, int] = {}

    def fault(traffic: TrackerTraffic) -> None:
        assert link.stats.bytes_up > carried, "tracker-0's records do not go through the proxy"
        refused = traffic.ledger.statuses[503]
        link.cut(mode)  # type: ignore[arg-type]
        wait_until(lambda: traffic.ledger.statuses[503] > refused, "tracker-0 answers 503")
        # the other tracker's link is whole: it goes on accepting
        before = traffic.ledger.accepted
        wait_until(lambda: traffic.ledger.accepted > before + 30, "tracker-1 accepts")
        seen["503"] = traffic.ledger.statuses[503] - refused
        link.heal()

    run_with_fault(stack, fault)
    assert seen["503"] > 0


def test_slow_link_to_kafka(stack: ChaosStack) -> None:
    link = stack.kafka_link("tracker", 0)

    def fault(traffic: TrackerTraffic) -> None:
        link.slow(300)
        before = traffic.ledger.accepted
        wait_until(lambda: traffic.ledger.accepted > before + 100, "accepted over a slow link")
        link.heal()

    run_with_fault(stack, fault)


async def test_the_check_sees_a_loss_and_a_duplicate(stack: ChaosStack) -> None:
    """The check can fail: an id accepted but never written is lost, one written twice is a
    duplicate, one refused yet written is only counted."""
    twice, never, refused = str(uuid7()), str(uuid7()), str(uuid7())
    producer = AIOKafkaProducer(bootstrap_servers=stack.target().kafka_bootstrap)
    await producer.start()
    try:
        for event_id in (twice, twice, refused):
            await producer.send_and_wait("tracking.events", orjson.dumps({"event_id": event_id}))
    finally:
        await producer.stop()
    ledger = TrackerLedger(accepted_events={twice, never}, refused_events={refused})
    check = await asyncio.to_thread(check_tracker, ledger, stack.target().kafka_bootstrap)
    assert check.lost == [never]
    assert check.duplicated == {twice: 2}
    assert check.refused_but_stored == 1
    assert not check.ok
