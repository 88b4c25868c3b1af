"""The whole system under faults during full traffic: two instances of every service (tracker,
triggers, chat, leads, notifier) on a broker, a Postgres and an SMTP sink of their own,
visitors browsing, being invited, chatting with agents, marked as leads, closed with
transcripts, webhooks to a CRM, replies by e-mail.

The faults (`schedule.system_faults`): SIGKILL and restart of one instance of each service; the
broker SIGKILLed and restarted on its log directory; Postgres restarted; the SMTP sink down for
`SMTP_DOWN_S`; the link between chat-0 and Kafka cut and slowed; the link between leads-0 and
Postgres cut and slowed; 10 % of the notifier's and of the leads' records delivered again (an
offset rewind); the leads SLA scheduler's wall clock jumped forward and back.

Two runs on one stack, each its own traffic: the faults one after another (each repaired, then
the traffic must get something acknowledged again before the next one), and the faults mixed
at random moments (`MixedSchedule`: each once, up to two in place together; CHAOS_SEED repeats
a schedule). After each, the traffic stops, the system settles and every check of the ledger
must find nothing lost and nothing done twice, with something carried on every path (a check
over nothing proves nothing).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable

import pytest
from beckon_devstack.chaos.checks import run_checks, table, wait_for_sla_timers
from beckon_devstack.chaos.faults import Rewind
from beckon_devstack.chaos.schedule import MixedSchedule, overlaps, system_faults
from beckon_devstack.chaos.stack import SERVICES, ChaosStack
from beckon_devstack.chaos.traffic import Traffic, TrafficConfig

from .conftest import DEADLINE_S, StackFactory, assert_every_path_held

# each traffic run through every fault: ~4-5 min on the 2-core machine
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

# one load generator is one client address: chat's widget limit is meant for browsers (the
# stack lifts the tracker's)
UNTHROTTLED_CHAT = {"CHAT_WIDGET_REQUESTS_PER_S": "10000", "CHAT_WIDGET_REQUEST_BURST": "100000"}
SMTP_DOWN_S = 15.0  # the bench holds it a minute
LINK_FAULT_S = 5.0  # how long a cut or slow link is held
CLOCK_JUMP_S = 30.0  # beyond the traffic's 20 s SLA: every running timer comes due at once
PROGRESS = 5  # acknowledged calls the traffic must make after a repair before the next fault


@pytest.fixture(scope="module")
def stack(chaos_stack: StackFactory) -> ChaosStack:
    return chaos_stack(
        services=dict.fromkeys(SERVICES, 2),
        kafka_proxied=[("chat", 0)],
        postgres_proxied=[("leads", 0)],
        fake_clock=["leads"],
        extra_env={"chat": UNTHROTTLED_CHAT, "tracker": {"TRACKER_ACK_TIMEOUT_S": "3"}},
    )


def acked(traffic: Traffic) -> int:
    return sum(dict(traffic.ledger.acked).values())


async def progressed(traffic: Traffic, what: str, n: int = PROGRESS) -> None:
    """Wait until the traffic has `n` more calls acknowledged (the system serves again)."""
    start = acked(traffic)
    deadline = time.monotonic() + DEADLINE_S
    while acked(traffic) < start + n:
        if time.monotonic() > deadline:
            raise AssertionError(f"no traffic acknowledged within {DEADLINE_S:.0f} s after {what}")
        await asyncio.sleep(0.2)


async def hold(seconds: float) -> None:
    """Keep a fault in place (the fault's duration, not a wait for a condition)."""
    await asyncio.sleep(seconds)


CONFIG = TrafficConfig(
    visitors_per_s=0.5,
    persons=10,
    messages_per_chat=3,
    sla_first_contact_s=20,
    reply_share=0.5,
    drain_s=180.0,
)
FAULTS = system_faults(smtp_down_s=SMTP_DOWN_S, jump_s=CLOCK_JUMP_S, link_s=LINK_FAULT_S)


async def run_through(
    stack: ChaosStack, faults: Callable[[Traffic], Awaitable[list[str]]]
) -> list[str]:
    """One traffic run with `faults(traffic)` inside it, then the ledger checked against what
    the system holds. Returns what `faults` reported."""
    target = stack.target()
    traffic = Traffic(target, CONFIG)
    await traffic.start()
    try:
        print(f"{time.strftime('%H:%M:%S')} traffic started", flush=True)
        await progressed(traffic, "the start", 20)
        carried = {
            "chat-0 ↔ Kafka": stack.kafka_link("chat", 0).stats.bytes_up,
            "leads-0 ↔ Postgres": stack.postgres_link("leads", 0).stats.bytes_up,
        }
        assert all(carried.values()), f"a proxied link carries nothing: {carried}"
        timings = await faults(traffic)
        await traffic.stop()
        print(f"{time.strftime('%H:%M:%S')} traffic stopped", flush=True)
        await wait_for_sla_timers(target, timeout_s=180.0)
        results = await run_checks(target, traffic.ledger, settle_s=180.0, killed=stack.killed)
    finally:
        await traffic.close()
    report = (
        table(results)
        + f"\nfaults: {timings}\nledger: {traffic.ledger.summary()}"
        + f"\nerrors: {traffic.ledger.error_totals()}"
    )
    print(report)
    assert_every_path_held(results, traffic.ledger, report)
    return timings


def rewound(returned: Iterable[object]) -> int:
    """Records a rewind moved back, from what a fault's controls returned."""
    return sum(
        move.redelivered
        for result in returned
        if isinstance(result, list)
        for move in result
        if isinstance(move, Rewind)
    )


async def test_whole_system_survives_every_fault(stack: ChaosStack) -> None:
    moved: dict[str, int] = {}

    async def one_after_another(traffic: Traffic) -> list[str]:
        timings: list[str] = []
        for fault in FAULTS.values():
            began = time.monotonic()
            returned = [await asyncio.to_thread(fault.inject, stack)]
            await hold(fault.hold_s or 0.0)  # a killed process is restarted at once
            returned.append(await asyncio.to_thread(fault.repair, stack))
            moved[fault.name] = rewound(returned)
            await progressed(traffic, fault.name)
            timings.append(f"{fault.name}: {time.monotonic() - began:.1f} s")
            print(
                f"{time.strftime('%H:%M:%S')} {timings[-1]} {traffic.ledger.summary()}", flush=True
            )
        return timings

    await run_through(stack, one_after_another)
    assert moved["notifier-rewind"] > 0, f"nothing rewound: {moved}"
    assert moved["leads-rewind"] > 0, f"nothing rewound: {moved}"


async def test_whole_system_survives_faults_mixed_at_random_moments(stack: ChaosStack) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "18"))
    schedule = MixedSchedule(
        list(FAULTS.values()),
        seed=seed,
        gap_s=(1.0, 4.0),
        at_once=2,
        hold_s=LINK_FAULT_S,
        say=lambda line: print(f"{time.strftime('%H:%M:%S')} {line}", flush=True),
    )

    async def mixed(traffic: Traffic) -> list[str]:
        print(f"mixed faults, CHAOS_SEED={seed}", flush=True)
        ran = await schedule.run(stack, rounds=1)
        await progressed(traffic, "the last repair")
        return [f"{r.fault} {r.injected_at}-{r.repaired_at} s with {r.overlapped}" for r in ran]

    timings = await run_through(stack, mixed)
    ran = schedule.ran
    assert sorted(r.fault for r in ran) == sorted(FAULTS), timings
    assert all(r.repaired_at is not None for r in ran), timings
    # mixed, not one after another: faults began while others were in place
    assert overlaps(ran) > 0, timings
    assert sum(rewound(r.returned or []) for r in ran) > 0, timings
