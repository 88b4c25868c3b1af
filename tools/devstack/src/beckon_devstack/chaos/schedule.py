"""What is done to a `ChaosStack`, and when: the whole system's faults as data (`Fault`,
`system_faults`) and a schedule that mixes them at random moments (`MixedSchedule`).

A fault names what it claims (a service, the broker, a link, a clock): two faults that claim
the same thing are never in place at once (a rewind stops every instance of its service and
needs the broker; a second cut of a cut link means nothing), any others may overlap. The
mixed schedule waits a random gap, starts a random fault among those whose claims are free
(at most `at_once` in place), holds it a random share of its hold, repairs it, and goes on;
each fault is drawn once before any is drawn again (a bag), so a run of `rounds` injects every
fault that many times whatever the seed. The seed fixes the draws (order, gaps, holds); which
faults overlap also depends on how long the controls take.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from beckon_devstack.chaos.proxy import TcpProxy
from beckon_devstack.chaos.stack import SERVICES, ChaosStack

Control = Callable[[ChaosStack], object]


def _nothing(_stack: ChaosStack) -> None:
    return None


@dataclass(frozen=True)
class Fault:
    """`inject` and `repair` block (they run in a thread); what they return is recorded."""

    name: str
    what: str
    inject: Control
    repair: Control = _nothing
    claims: frozenset[str] = frozenset()
    # how long it stays in place before the repair; None: the run's own hold
    hold_s: float | None = None
    instance: int | None = None  # the instance of the entry service it hits (None: all)


def system_faults(
    smtp_down_s: float = 60.0, jump_s: float = 60.0, link_s: float | None = None
) -> dict[str, Fault]:
    """The whole system's faults: one instance of each service SIGKILLed and restarted, the
    broker SIGKILLed and restarted on its log directory, Postgres restarted, the SMTP sink
    down `smtp_down_s`, chat-0's link to Kafka and leads-0's to Postgres cut and slowed (held
    `link_s`; None: the run's hold), 10 % of the notifier's and of the leads' records delivered
    again, the leads instances' wall clock `jump_s` ahead and back. The stack needs
    `kafka_proxied=[("chat", 0)]`, `postgres_proxied=[("leads", 0)]`, `fake_clock=["leads"]`."""

    def kafka(stack: ChaosStack) -> TcpProxy:
        return stack.kafka_link("chat", 0)

    def pg(stack: ChaosStack) -> TcpProxy:
        return stack.postgres_link("leads", 0)

    found = {
        f"{service}-kill": Fault(
            f"{service}-kill",
            f"SIGKILL {service}-1, restart it",
            partial(ChaosStack.kill, service=service, index=1),
            partial(ChaosStack.restart, service=service, index=1),
            frozenset({service}),
        )
        for service in SERVICES
    }
    for fault in (
        Fault(
            "broker-kill",
            "SIGKILL the Kafka broker, restart it on its log directory",
            ChaosStack.kill_broker,
            ChaosStack.start_broker,
            frozenset({"broker"}),
        ),
        Fault(
            "postgres-restart",
            "Postgres stopped (fast: sessions cut) and started on its data directory",
            ChaosStack.restart_postgres,
            claims=frozenset({"postgres"}),
            hold_s=0.0,
        ),
        Fault(
            "smtp-down",
            f"SMTP sink SIGKILLed, started again {smtp_down_s:.0f} s later",
            ChaosStack.stop_smtp,
            ChaosStack.start_smtp,
            frozenset({"smtp"}),
            hold_s=smtp_down_s,
        ),
        *(
            fault
            for name, label, link in (
                ("chat-kafka", "chat-0 ↔ Kafka", kafka),
                ("leads-pg", "leads-0 ↔ Postgres", pg),
            )
            for fault in _link_faults(name, label, link, link_s)
        ),
        *(
            Fault(
                f"{service}-rewind",
                f"10 % of the {service} group's records delivered again (offsets rewound)",
                partial(ChaosStack.rewind, service=service, groups=[service], fraction=0.1),
                # every instance of the service stopped and the broker asked
                claims=frozenset({service, "broker"}),
                hold_s=0.0,
            )
            for service in ("notifier", "leads")
        ),
        Fault(
            "clock-jump",
            f"the leads instances' wall clock jumped {jump_s:+.0f} s, then back",
            lambda s: s.jump_clock("leads", jump_s),
            lambda s: s.jump_clock("leads", 0),
            frozenset({"leads-clock"}),
            link_s,
        ),
    ):
        found[fault.name] = fault
    return found


def _link_faults(
    name: str, label: str, link: Callable[[ChaosStack], TcpProxy], hold_s: float | None
) -> tuple[Fault, Fault]:
    """A link cut (connections refused) and slowed (300 ms a chunk), each healed after."""
    claims = frozenset({name})
    return (
        Fault(
            f"{name}-cut",
            f"cut {label} (refused), heal",
            lambda s: link(s).cut("refuse"),
            lambda s: link(s).heal(),
            claims,
            hold_s,
        ),
        Fault(
            f"{name}-slow",
            f"{label} slowed by 300 ms per chunk, heal",
            lambda s: link(s).slow(300),
            lambda s: link(s).heal(),
            claims,
            hold_s,
        ),
    )


@dataclass
class Injected:
    """One fault as the schedule ran it (seconds since the schedule began)."""

    fault: str
    injected_at: float
    repaired_at: float | None = None
    overlapped: list[str] = field(default_factory=list)  # faults in place when it began
    returned: Any = None  # what inject and repair returned (e.g. a rewind's partition moves)


@dataclass
class MixedSchedule:
    faults: Sequence[Fault]
    seed: int = 1
    gap_s: tuple[float, float] = (1.0, 6.0)  # between one start and the next
    at_once: int = 2
    hold_s: float = 10.0  # for a fault without its own; each hold is 0.5 to 1.5 times it
    say: Callable[[str], None] = print
    ran: list[Injected] = field(default_factory=list)

    async def run(
        self, stack: ChaosStack, *, seconds: float | None = None, rounds: int | None = None
    ) -> list[Injected]:
        """Inject until `seconds` have passed or every fault ran `rounds` times (whichever is
        given first), then wait for the repairs in progress. A control that raises stops the
        run with that error once every fault in place is repaired."""
        if seconds is None and rounds is None:
            raise ValueError("give seconds, rounds or both: a mixed run must end")
        rng = random.Random(self.seed)
        began = time.monotonic()
        bag: list[Fault] = []
        drawn: dict[str, int] = {}
        running: dict[asyncio.Task[None], Injected] = {}
        claimed: set[str] = set()

        def finished() -> bool:
            if seconds is not None and time.monotonic() - began >= seconds:
                return True
            return rounds is not None and all(drawn.get(f.name, 0) >= rounds for f in self.faults)

        async def one(fault: Fault, record: Injected, hold: float) -> None:
            try:
                returned = [await asyncio.to_thread(fault.inject, stack)]
                await asyncio.sleep(hold)  # the fault stays in place
                returned.append(await asyncio.to_thread(fault.repair, stack))
                record.returned = returned
                record.repaired_at = round(time.monotonic() - began, 1)
                self.say(f"    {record.repaired_at:7.1f} s  repaired {fault.name}")
            finally:
                claimed.difference_update(fault.claims)

        try:
            while not finished():
                await asyncio.sleep(rng.uniform(*self.gap_s))
                for task in [t for t in running if t.done()]:
                    running.pop(task)
                    task.result()  # a control that failed ends the run
                if len(running) >= self.at_once:
                    continue
                if not bag:
                    bag = list(self.faults)
                    rng.shuffle(bag)
                free = [f for f in bag if not f.claims & claimed]
                if not free:
                    continue
                fault = free[0]
                bag.remove(fault)
                drawn[fault.name] = drawn.get(fault.name, 0) + 1
                claimed.update(fault.claims)
                record = Injected(
                    fault.name,
                    round(time.monotonic() - began, 1),
                    overlapped=[r.fault for r in running.values()],
                )
                self.ran.append(record)
                also = f" (with {', '.join(record.overlapped)})" if record.overlapped else ""
                self.say(f"    {record.injected_at:7.1f} s  inject {fault.name}{also}")
                hold = (self.hold_s if fault.hold_s is None else fault.hold_s) * rng.uniform(
                    0.5, 1.5
                )
                running[asyncio.create_task(one(fault, record, hold))] = record
        finally:
            # every fault in place is repaired before anything is checked or raised
            outcomes = await asyncio.gather(*running, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return self.ran


def overlaps(ran: Sequence[Injected]) -> int:
    """How many faults began while another was in place."""
    return sum(1 for record in ran if record.overlapped)
