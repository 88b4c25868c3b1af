"""The chaos battery's long runs: faults one at a time under steady traffic, then (with --soak)
a long run at half the measured peak watching memory and consumer lag.

    uv run python bench/chaos.py                      # every fault, 20 s each, tracker path
    uv run python bench/chaos.py --faults broker-kill --hold 30
    uv run python bench/chaos.py --soak 30m           # peak, then 30 min at half of it
    uv run python bench/chaos.py --path system        # the whole system, its 15 faults
    uv run python bench/chaos.py --path system --mixed 10m --concurrency 64 --seed 7

Starts a `ChaosStack` (Apache Kafka, two trackers by default: --services) in a directory of its
own. For each fault: traffic starts; `--settle` s of baseline; the fault is injected and held
for `--hold` s; it is repaired (restart, heal); `--settle` s more; the traffic stops and its
ledger is checked against what the system holds. Per fault: events/s accepted before and
during the fault, time to recover (repair started → the first second back at half the
baseline), accepted items lost, duplicates, 5xx (other than 503), 503s, connection errors.

With --mixed the faults are not taken one at a time: one traffic run, and for that long the
faults start at random moments, up to --at-once in place together, each held 0.5 to 1.5 times
--hold (`MixedSchedule`; --seed repeats a run's draws); one row for the whole run.

The schedule of faults is separate from the traffic: a fault acts on the stack; a traffic is
anything with `start()`, `stop()`, `accepted_between(t0, t1)`, `counts()` and `check()`
(`Traffic` below). The tracker's is here; other paths plug in by adding a factory to
`TRAFFIC`. The last line is `RESULT {json}`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from beckon_devstack.chaos.schedule import Fault, MixedSchedule, overlaps, system_faults
from beckon_devstack.chaos.stack import SERVICES, ChaosStack
from beckon_devstack.chaos.tracker_traffic import TrackerTraffic, check_tracker

from bench._common import machine_facts

Say = Callable[[str], None]


# ---- traffic: what a fault is run against -----------------------------------------------


class Traffic(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def accepted_between(self, start: float, end: float) -> int:
        """Items the system accepted (2xx, acks) in [start, end) of time.monotonic()."""
        ...

    def counts(self) -> dict[str, int]:
        """Answers so far: "5xx" (not 503), "503", "errors" (no answer), "accepted"."""
        ...

    def check(self) -> dict[str, Any]:
        """The ledger against what the system holds: at least "lost" and "duplicates"."""
        ...

    def first_accepted_after(self, at: float, instance: int | None) -> float | None:
        """When the system (or that instance of the path's service) next accepted something."""
        ...

    def half_peak(self, start: float, end: float) -> tuple[str, float, float]:
        """This traffic run as the peak: what it measured, that figure, and the `rate` of a
        traffic at half of it."""
        ...

    def close(self) -> None:
        """Let go of the traffic without checking it."""
        ...


class TrackerPath:
    """Snippet and Segment batches to every tracker; checked on `tracking.events`."""

    name = "tracker"

    def __init__(self, stack: ChaosStack, concurrency: int, rate: float | None) -> None:
        self.stack = stack
        self.traffic = TrackerTraffic(
            stack.target(), stack.store_origin, concurrency=concurrency, rate=rate
        )

    def start(self) -> None:
        self.traffic.start()

    def stop(self) -> None:
        self.traffic.stop()

    def accepted_between(self, start: float, end: float) -> int:
        return self.traffic.ledger.accepted_between(start, end)

    def first_accepted_after(self, at: float, instance: int | None) -> float | None:
        return self.traffic.ledger.first_accepted_after(at, instance)

    def half_peak(self, start: float, end: float) -> tuple[str, float, float]:
        events_per_s = self.accepted_between(start, end) / (end - start)
        # a request carries 3 events on average: the rate is requests/s
        return "events/s", events_per_s, events_per_s / 2 / 3

    def close(self) -> None:
        return None

    def counts(self) -> dict[str, int]:
        ledger = self.traffic.ledger
        return {
            "accepted": ledger.accepted,
            "5xx": ledger.server_errors,
            "503": ledger.statuses[503],
            "503_without_retry_after": ledger.no_retry_after,
            "errors": ledger.no_answer,
        }

    def check(self) -> dict[str, Any]:
        found = check_tracker(self.traffic.ledger, self.stack.target().kafka_bootstrap)
        return {
            "accepted": found.accepted,
            "lost": len(found.lost),
            "duplicates": len(found.duplicated),
            "refused_but_stored": found.refused_but_stored,
            "first_lost": found.lost[:5],
            "first_duplicated": dict(list(found.duplicated.items())[:5]),
        }


class SystemPath:
    """The whole system's traffic (`chaos.traffic.Traffic`: visitors, invitations, widgets and
    agents chatting, lead marks, closes with transcripts, webhooks, replies by e-mail) on an
    event loop of its own in a thread, checked with every `chaos.checks` check.

    `concurrency` scales the visitors' arrival rate (visitors/s = concurrency / 16, so the
    default 16 is one a second); `rate` (the soak's) is visitors/s itself."""

    name = "system"
    sla_wait_s = 60.0  # the last leads' timers (the traffic's SLA is 20 s) before the checks

    def __init__(self, stack: ChaosStack, concurrency: int, rate: float | None) -> None:
        from beckon_devstack.chaos.traffic import Traffic as SystemTraffic
        from beckon_devstack.chaos.traffic import TrafficConfig

        self.stack = stack
        self.target = stack.target()
        visitors = rate if rate is not None else concurrency / 16
        self.traffic = SystemTraffic(
            self.target,
            TrafficConfig(visitors_per_s=visitors, persons=20, drain_s=180.0, retry_for_s=240.0),
        )
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="system-traffic")
        self.thread.start()
        # the ledger's timeline is wall-clock seconds; the bench speaks time.monotonic()
        self.wall_minus_mono = time.time() - time.monotonic()

    def _run(self, work: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def start(self) -> None:
        self._run(self.traffic.start())

    def stop(self) -> None:
        self._run(self.traffic.stop())

    def _timeline(self) -> dict[tuple[int, str, str], int]:
        while True:  # the traffic's thread may add a key meanwhile
            with contextlib.suppress(RuntimeError):
                return dict(self.traffic.ledger.timeline)

    def _ok_between(self, start: float, end: float, prefix: str = "") -> int:
        since, until = start + self.wall_minus_mono, end + self.wall_minus_mono
        return sum(
            n
            for (second, path, outcome), n in self._timeline().items()
            if outcome == "ok" and since <= second < until and path.startswith(prefix)
        )

    def accepted_between(self, start: float, end: float) -> int:
        return self._ok_between(start, end)

    def detail_between(self, start: float, end: float) -> dict[str, float]:
        """What the table shows of a window: tracking events/s, chats started, messages."""
        seconds = max(end - start, 1e-9)
        return {
            "events_per_s": round(self._ok_between(start, end, "tracker.") / seconds, 1),
            "chats": self._ok_between(start, end, "widget.start"),
            "messages": self._ok_between(start, end, "chat.message."),
        }

    def half_peak(self, start: float, end: float) -> tuple[str, float, float]:
        # every visitor opens a chat: chats started per second is visitors served per second
        chats_per_s = self._ok_between(start, end, "widget.start") / (end - start)
        return "visitors/s", chats_per_s, chats_per_s / 2

    def close(self) -> None:
        try:
            self._run(self.traffic.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=30)

    def first_accepted_after(self, at: float, instance: int | None) -> float | None:
        since = at + self.wall_minus_mono
        seconds = [
            second
            for (second, _path, outcome) in self._timeline()
            if outcome == "ok" and second >= int(since)
        ]
        # the timeline is in whole seconds: "within the second the repair began" is 0
        return max(min(seconds), since) - self.wall_minus_mono if seconds else None

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        while True:
            with contextlib.suppress(RuntimeError):
                totals = self.traffic.ledger.error_totals()
                break
        return {
            "accepted": sum(dict(self.traffic.ledger.acked).values()),
            "5xx": totals.get("5xx", 0),
            "503": totals.get("503", 0),
            "errors": totals.get("connection", 0) + totals.get("timeout", 0),
        }

    def check(self) -> dict[str, Any]:
        from beckon_devstack.chaos.checks import run_checks, table, wait_for_sla_timers

        async def checked() -> Any:
            await wait_for_sla_timers(self.target, timeout_s=self.sla_wait_s)
            return await run_checks(
                self.target, self.traffic.ledger, settle_s=120.0, killed=self.stack.killed
            )

        try:
            results = self._run(checked())
            summary = self.traffic.ledger.summary()
        finally:
            self.close()
        return {
            "accepted": sum(r.accepted for r in results),
            "lost": sum(r.lost for r in results),
            "duplicates": sum(r.duplicated for r in results),
            # e-mails the sink took as a notifier instance was SIGKILLed, its result unwritten,
            # sent again after the lease with the same Message-ID (the limit of SMTP)
            "resent_after_kill": sum(r.extra.get("resent_after_kill", 0) for r in results),
            "checks": {
                r.name: {
                    "accepted": r.accepted,
                    "lost": r.lost,
                    "duplicated": r.duplicated,
                    # which: the ids to look for in the kept logs (--keep-logs)
                    "examples": r.examples,
                }
                for r in results
            },
            "ledger": summary,
            # which call met which answer: a 5xx names its path here
            "errors_by_path": {
                f"{path} {kind}": n
                for (path, kind), n in sorted(self.traffic.ledger.errors.items())
            },
            "table": table(results),
        }


TRAFFIC: dict[str, Callable[[ChaosStack, int, float | None], Traffic]] = {
    "tracker": TrackerPath,
    "system": SystemPath,
}


# ---- faults: what is done to the stack ----------------------------------------------------


def _faults(service: str) -> dict[str, Fault]:
    def link(stack: ChaosStack) -> Any:
        return stack.kafka_link(service, 0)

    return {
        f"{service}-kill": Fault(
            f"{service}-kill",
            f"SIGKILL {service}-1, restart it",
            lambda s: s.kill(service, 1),
            lambda s: s.restart(service, 1),
            instance=1,
        ),
        "broker-kill": Fault(
            "broker-kill",
            "SIGKILL the Kafka broker, restart it on its log directory",
            lambda s: s.kill_broker(),
            lambda s: s.start_broker(),
        ),
        "kafka-cut": Fault(
            "kafka-cut",
            f"cut {service}-0 ↔ Kafka (new connections refused), heal",
            lambda s: link(s).cut("refuse"),
            lambda s: link(s).heal(),
            instance=0,
        ),
        "kafka-blackhole": Fault(
            "kafka-blackhole",
            f"cut {service}-0 ↔ Kafka (new connections never answered), heal",
            lambda s: link(s).cut("blackhole"),
            lambda s: link(s).heal(),
            instance=0,
        ),
        "kafka-slow": Fault(
            "kafka-slow",
            f"{service}-0 ↔ Kafka slowed by 300 ms per chunk, heal",
            lambda s: link(s).slow(300),
            lambda s: link(s).heal(),
            instance=0,
        ),
    }


TRACKER_FAULTS = "tracker-kill,broker-kill,kafka-cut,kafka-blackhole,kafka-slow"
SYSTEM_FAULTS = (
    "tracker-kill,triggers-kill,chat-kill,leads-kill,notifier-kill,broker-kill,postgres-restart,"
    "smtp-down,chat-kafka-cut,chat-kafka-slow,leads-pg-cut,leads-pg-slow,notifier-rewind,"
    "leads-rewind,clock-jump"
)


def recovered_at(traffic: Traffic, since: float, until: float, baseline: float) -> float | None:
    """The start of the first whole second after `since` with at least half the baseline."""
    at = since
    while at + 1 <= until:
        if traffic.accepted_between(at, at + 1) >= baseline / 2:
            return at
        at += 0.25
    return None


def outcome(after: dict[str, int], check: dict[str, Any]) -> dict[str, Any]:
    """What a row says of a traffic run's answers and of its ledger's check."""
    return {
        "lost": check["lost"],
        "duplicates": check["duplicates"],
        "resent_after_kill": check.get("resent_after_kill", 0),
        "5xx": after["5xx"],
        "503": after["503"],
        "503_without_retry_after": after.get("503_without_retry_after", 0),
        "connection_errors": after["errors"],
        "accepted": after["accepted"],
        "errors_by_path": check.get("errors_by_path"),
        "check": check,
    }


def run_fault(
    stack: ChaosStack, traffic: Traffic, fault: Fault, hold_s: float, settle_s: float, say: Say
) -> dict[str, Any]:
    say(f"--- {fault.name}: {fault.what}")
    traffic.start()
    try:
        started = time.monotonic()
        time.sleep(settle_s)
        injected = time.monotonic()
        before = traffic.counts()
        fault.inject(stack)
        time.sleep(hold_s if fault.hold_s is None else fault.hold_s)
        repair_started = time.monotonic()
        during = traffic.counts()
        fault.repair(stack)
        repaired = time.monotonic()
        say(f"    repaired in {repaired - repair_started:.1f} s; settling {settle_s:.0f} s")
        time.sleep(settle_s)
    finally:
        traffic.stop()
    ended = time.monotonic()
    after = traffic.counts()
    baseline = traffic.accepted_between(started, injected) / max(injected - started, 1e-9)
    held = traffic.accepted_between(injected, repair_started) / max(repair_started - injected, 1e-9)
    back = recovered_at(traffic, repair_started, ended, baseline)
    # the hit instance's (or, for the broker, anyone's) first 2xx once the repair began
    first = traffic.first_accepted_after(repair_started, fault.instance)
    say("    checking the ledger against what the system holds")
    check = traffic.check()
    if "table" in check:
        say(check["table"])
    row = {
        "fault": fault.name,
        "what": fault.what,
        "path": traffic.name,
        "baseline_per_s": round(baseline, 1),
        "held_per_s": round(held, 1),
        "repair_s": round(repaired - repair_started, 2),
        "recover_s": round(back - repair_started, 2) if back is not None else None,
        "first_2xx_s": round(first - repair_started, 2) if first is not None else None,
        "503_during_fault": during["503"] - before["503"],
        **outcome(after, check),
    }
    detail = getattr(traffic, "detail_between", None)
    if detail is not None:
        row["held_detail"] = detail(injected, repair_started)
        row["baseline_detail"] = detail(started, injected)
        say(f"    baseline {row['baseline_detail']}, held {row['held_detail']}")
    # each row as it is made: a long run cut short keeps the faults it finished
    say("ROW " + json.dumps({k: v for k, v in row.items() if k != "check"}, default=str))
    say(
        f"    baseline {row['baseline_per_s']}/s, during {row['held_per_s']}/s; after the repair "
        f"began: first 2xx {row['first_2xx_s']} s, half the baseline {row['recover_s']} s; "
        f"lost {row['lost']}, duplicates {row['duplicates']} (e-mails resent after a kill "
        f"{row['resent_after_kill']}), 5xx {row['5xx']}, 503 {row['503']}"
    )
    return row


def run_mixed(
    stack: ChaosStack,
    traffic: Traffic,
    schedule: MixedSchedule,
    seconds: float,
    settle_s: float,
    say: Say,
) -> dict[str, Any]:
    """One traffic run with the faults of `schedule` mixed at random moments for `seconds`."""
    say(
        f"--- mixed: {len(schedule.faults)} faults at random moments for {seconds:.0f} s "
        f"(seed {schedule.seed}, at most {schedule.at_once} at once)"
    )
    traffic.start()
    try:
        started = time.monotonic()
        time.sleep(settle_s)
        injected = time.monotonic()
        ran = asyncio.run(schedule.run(stack, seconds=seconds))
        repaired = time.monotonic()
        say(f"    every fault repaired; settling {settle_s:.0f} s")
        time.sleep(settle_s)
    finally:
        traffic.stop()
    after = traffic.counts()
    baseline = traffic.accepted_between(started, injected) / max(injected - started, 1e-9)
    held = traffic.accepted_between(injected, repaired) / max(repaired - injected, 1e-9)
    say("    checking the ledger against what the system holds")
    check = traffic.check()
    if "table" in check:
        say(check["table"])
    counted: dict[str, int] = {}
    for record in ran:
        counted[record.fault] = counted.get(record.fault, 0) + 1
    row = {
        "fault": "mixed",
        "what": f"{len(ran)} faults at random moments over {repaired - injected:.0f} s, "
        f"{overlaps(ran)} begun while another was in place",
        "path": traffic.name,
        "seed": schedule.seed,
        "seconds": round(repaired - injected, 1),
        "injected": counted,
        "overlapped": overlaps(ran),
        "timeline": [
            {
                "fault": r.fault,
                "at_s": r.injected_at,
                "repaired_s": r.repaired_at,
                "with": r.overlapped,
            }
            for r in ran
        ],
        "baseline_per_s": round(baseline, 1),
        "held_per_s": round(held, 1),
        "repair_s": None,
        "recover_s": None,
        "first_2xx_s": None,
        **outcome(after, check),
    }
    detail = getattr(traffic, "detail_between", None)
    if detail is not None:
        row["held_detail"] = detail(injected, repaired)
        row["baseline_detail"] = detail(started, injected)
    say("ROW " + json.dumps({k: v for k, v in row.items() if k != "check"}, default=str))
    say(
        f"    {row['what']}; baseline {row['baseline_per_s']}/s, during {row['held_per_s']}/s; "
        f"lost {row['lost']}, duplicates {row['duplicates']} (e-mails resent after a kill "
        f"{row['resent_after_kill']}), 5xx {row['5xx']}, 503 {row['503']}"
    )
    return row


# ---- soak -------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def rss_all(stack: ChaosStack) -> dict[str, int | None]:
    return {name: rss_kib(pid) for name, pid in sorted(stack.pids().items())}


async def consumer_lag(bootstrap: str) -> dict[str, int]:
    """Per consumer group: records on its topics it has not committed yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    lag: dict[str, int] = {}
    try:
        for group, _protocol in await admin.list_consumer_groups():
            committed = await admin.list_consumer_group_offsets(group)
            parts = [tp for tp, meta in committed.items() if meta.offset >= 0]
            if not parts:
                continue
            ends = await consumer.end_offsets(parts)
            lag[group] = sum(max(0, ends[tp] - committed[tp].offset) for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()
    return lag


def parse_duration(text: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"a duration like 90s, 30m or 1h, not {text!r}")
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


def soak(stack: ChaosStack, args: argparse.Namespace, say: Say) -> dict[str, Any]:
    make = TRAFFIC[args.path]
    say(f"--- soak: peak first ({args.peak_seconds:.0f} s at --concurrency {args.concurrency})")
    probe = make(stack, args.concurrency, None)
    probe.start()
    started = time.monotonic()
    time.sleep(args.peak_seconds)
    peaked = time.monotonic()
    # the peak's second half: the first fills the pipeline
    unit, peak, rate = probe.half_peak(started + args.peak_seconds / 2, peaked)
    probe.stop()
    probe.close()  # not checked: the soak's own traffic is
    say(f"    peak {peak:.1f} {unit}; soaking at half (rate {rate:.2f}) for {args.soak:.0f} s")
    traffic = make(stack, args.concurrency, rate)
    samples: dict[str, Any] = {}
    bootstrap = stack.target().kafka_bootstrap
    traffic.start()
    soak_started = time.monotonic()
    try:
        for label, at in (("start", 10.0), ("middle", args.soak / 2), ("end", args.soak - 5)):
            wait = soak_started + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            samples[label] = {
                "at_s": round(time.monotonic() - soak_started, 1),
                "rss_kib": rss_all(stack),
                "consumer_lag": asyncio.run(consumer_lag(bootstrap)),
                "accepted": traffic.counts()["accepted"],
            }
            sample = samples[label]
            say(f"    {label}: RSS {sample['rss_kib']} KiB, lag {sample['consumer_lag']}")
    finally:
        traffic.stop()
    ended = time.monotonic()
    check = traffic.check()
    levels: dict[str, bool] = {}
    for name, start_kib in samples["start"]["rss_kib"].items():
        middle = samples["middle"]["rss_kib"].get(name)
        end = samples["end"]["rss_kib"].get(name)
        if start_kib is None or middle is None or end is None:
            continue
        # levelled off: the second half grew by at most 5 % (or 8 MiB) of the middle
        levels[name] = end - middle <= max(middle * 0.05, 8 * 1024)
    detail = getattr(traffic, "detail_between", None)
    return {
        "peak": round(peak, 2),
        "peak_unit": unit,
        "rate": round(rate, 2),
        "seconds": round(ended - soak_started, 1),
        "accepted_per_s": round(
            traffic.accepted_between(soak_started, ended) / (ended - soak_started), 1
        ),
        "detail": detail(soak_started, ended) if detail is not None else None,
        "samples": samples,
        "rss_levels_off": levels,
        "counts": traffic.counts(),
        "lost": check["lost"],
        "duplicates": check["duplicates"],
        "check": check,
    }


# ---- the run ----------------------------------------------------------------------------


def parse_env(given: list[str]) -> dict[str, dict[str, str]]:
    """`--env triggers:TRIGGERS_VISITOR_IDLE_S=300` → {"triggers": {"TRIGGERS_…": "300"}}."""
    found: dict[str, dict[str, str]] = {}
    for item in given:
        service, _, setting = item.partition(":")
        name, equals, value = setting.partition("=")
        if service not in SERVICES or not name or not equals:
            raise SystemExit(f"--env {item!r}: want SERVICE:NAME=VALUE, SERVICE one of {SERVICES}")
        found.setdefault(service, {})[name] = value
    return found


def with_given(
    env: dict[str, dict[str, str]], given: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    return {name: {**env.get(name, {}), **given.get(name, {})} for name in {*env, *given}}


def parse_services(text: str) -> dict[str, int]:
    if text == "all":
        return dict.fromkeys(SERVICES, 2)
    found: dict[str, int] = {}
    for part in text.split(","):
        name, _, count = part.partition("=")
        found[name.strip()] = int(count or 2)
    return found


def print_system_table(rows: list[dict[str, Any]]) -> None:
    print(
        "| fault | baseline ev/s | held ev/s | chats held | messages held | repair s | "
        "first ack s | half rate s | lost | dup | 5xx | 503 | no answer |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        b, h = r.get("baseline_detail", {}), r.get("held_detail", {})
        print(
            f"| {r['fault']} | {b.get('events_per_s')} | {h.get('events_per_s')} | "
            f"{h.get('chats')} | {h.get('messages')} | {r['repair_s']} | {r['first_2xx_s']} | "
            f"{r['recover_s']} | {r['lost']} | {r['duplicates']} | {r['5xx']} | {r['503']} | "
            f"{r['connection_errors']} |"
        )


def print_table(rows: list[dict[str, Any]]) -> None:
    if rows and "held_detail" in rows[0]:
        print_system_table(rows)
        return
    print(
        "| fault | path | baseline/s | held/s | repair s | first 2xx s | half rate s | lost | "
        "dup | 5xx | 503 | no answer |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['fault']} | {r['path']} | {r['baseline_per_s']} | {r['held_per_s']} | "
            f"{r['repair_s']} | {r['first_2xx_s']} | {r['recover_s']} | {r['lost']} | "
            f"{r['duplicates']} | {r['5xx']} | {r['503']} | {r['connection_errors']} |"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    add = parser.add_argument
    add("--path", default="tracker", choices=sorted(TRAFFIC), help="which traffic")
    add("--services", default="tracker=2", help="instances, e.g. tracker=2,chat=2 or all")
    add("--faults", default=TRACKER_FAULTS, help=f"the system path's: {SYSTEM_FAULTS}")
    add("--smtp-down", type=float, default=60.0, help="seconds the SMTP sink is down (system)")
    add("--jump", type=float, default=60.0, help="the leads clock jump in seconds (system)")
    add("--hold", type=float, default=20.0, help="seconds each fault is held")
    add("--settle", type=float, default=10.0, help="seconds before and after each fault")
    add("--concurrency", type=int, default=16, help="visitors sending at once")
    add("--ack-timeout", default="3", help="TRACKER_ACK_TIMEOUT_S (503 this soon)")
    add("--soak", type=parse_duration, default=None, help="soak for this long (30m) instead")
    add(
        "--mixed",
        type=parse_duration,
        default=None,
        help="the --faults mixed at random moments in one traffic run this long (10m)",
    )
    add("--seed", type=int, default=1, help="the mixed run's draws (order, gaps, holds)")
    add("--at-once", type=int, default=2, help="the mixed run's most faults in place at once")
    add("--peak-seconds", type=float, default=20.0, help="the soak's peak measurement")
    add(
        "--env",
        action="append",
        default=[],
        metavar="SERVICE:NAME=VALUE",
        help="a setting for every instance of a service, e.g. "
        "triggers:TRIGGERS_VISITOR_IDLE_S=300 (repeatable)",
    )
    add("--keep-logs", action="store_true")
    add("--json-only", action="store_true", help="print only the RESULT line")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet = args.json_only

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    facts = machine_facts()
    began = time.monotonic()
    directory = Path(tempfile.mkdtemp(prefix="beckon-bench-chaos-"))
    services = parse_services(args.services)
    path_service = args.path  # the service the traffic enters through
    tracker_env = {"TRACKER_ACK_TIMEOUT_S": args.ack_timeout}
    given = parse_env(args.env)
    if args.path == "system":
        services = dict.fromkeys(SERVICES, 2) if args.services == "tracker=2" else services
        stack = ChaosStack(
            directory,
            services=services,
            kafka_proxied=[("chat", 0)],
            postgres_proxied=[("leads", 0)],
            fake_clock=["leads"],
            # one load generator is one client address: chat's widget limit is for browsers
            extra_env=with_given(
                {
                    "tracker": tracker_env,
                    "chat": {
                        "CHAT_WIDGET_REQUESTS_PER_S": "10000",
                        "CHAT_WIDGET_REQUEST_BURST": "100000",
                    },
                },
                given,
            ),
            say=say,
        )
    else:
        stack = ChaosStack(
            directory,
            services=services,
            kafka_proxied=[(path_service, 0)],
            extra_env=with_given({"tracker": tracker_env}, given),
            say=say,
        )
    rows: list[dict[str, Any]] = []
    soaked: dict[str, Any] | None = None
    try:
        stack.start()
        if args.soak:
            soaked = soak(stack, args, say)
        else:
            if args.path == "system":
                known = system_faults(args.smtp_down, args.jump)
                names = args.faults if args.faults != TRACKER_FAULTS else SYSTEM_FAULTS
            else:
                known = _faults(path_service)
                names = args.faults
            chosen = [known[name.strip()] for name in names.split(",")]
            if args.mixed:
                schedule = MixedSchedule(
                    chosen, seed=args.seed, at_once=args.at_once, hold_s=args.hold, say=say
                )
                traffic = TRAFFIC[args.path](stack, args.concurrency, None)
                rows.append(run_mixed(stack, traffic, schedule, args.mixed, args.settle, say))
            for fault in [] if args.mixed else chosen:
                traffic = TRAFFIC[args.path](stack, args.concurrency, None)
                rows.append(run_fault(stack, traffic, fault, args.hold, args.settle, say))
    finally:
        stack.stop()
        if args.keep_logs:
            say(f"logs kept in {directory / 'logs'}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    problems = [
        f"{r['fault']}: lost {r['lost']}, duplicates {r['duplicates']}, 5xx {r['5xx']}"
        for r in rows
        if r["lost"] or r["duplicates"] or r["5xx"] or r["503_without_retry_after"]
    ]
    if soaked is not None and (soaked["lost"] or soaked["duplicates"]):
        problems.append(f"soak: lost {soaked['lost']}, duplicates {soaked['duplicates']}")
    if soaked is not None and soaked["counts"].get("5xx"):
        problems.append(f"soak: {soaked['counts']['5xx']} answers 5xx other than 503")
    growing = [name for name, ok in (soaked or {}).get("rss_levels_off", {}).items() if not ok]
    if growing:
        # the JVM broker's heap fills toward its -Xmx before a full collection: listed too,
        # the reader judges it against that bound (docs/reliability.md)
        problems.append(f"soak: RSS still growing in the second half: {', '.join(growing)}")
    facts["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    facts["seconds_total"] = round(time.monotonic() - began, 1)
    result = {
        "bench": "chaos",
        "path": args.path,
        "faults": rows,
        "soak": soaked,
        "lost": sum(r["lost"] for r in rows) + (soaked["lost"] if soaked else 0),
        "duplicates": sum(r["duplicates"] for r in rows) + (soaked["duplicates"] if soaked else 0),
        "problems": problems,
        "valid": not problems,
        "config": {
            "services": services,
            "hold_s": args.hold,
            "settle_s": args.settle,
            "concurrency": args.concurrency,
            "tracker_ack_timeout_s": float(args.ack_timeout),
            "env": given,
            "broker": "apache kafka (embedded, same machine)",
        },
        "machine": facts,
    }
    if rows and not quiet:
        print_table(rows)
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
