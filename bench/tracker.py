"""Tracker throughput and latency against a real broker, next to two ceilings.

    uv run python bench/tracker.py --seconds 10

Starts Apache Kafka and the tracker (or uses running ones: --bootstrap, --tracker-url/--site-key),
drives POST /v1/collect from separate load-generator processes on loopback, and measures:
  1. peak, batches of 10 events (closed loop)      2. peak, single-event requests
  3. open loop at half of each peak: p50/p99 over broker-acknowledged (200) answers only
  4. ceiling A: a bare aiokafka producer (acks=all, same broker, record sizes, linger), and
     the tracker's librdkafka publisher on its own (confluent-kafka, no HTTP)
  5. ceiling B: a bare ASGI endpoint under uvicorn (uvloop + httptools, like the tracker)
The last line is `RESULT {json}`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `bench` importable, bench/ not shadowing `tracker`
    sys.path[:] = [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import queue
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from typing import Any

import orjson
import uvloop
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import TRACKING_EVENTS
from beckon_devstack.kafka import KAFKA_VERSION
from beckon_devstack.ports import free_port
from beckon_messaging import make_producer

from bench._common import (
    SEND_TIME,
    CpuMeter,
    LoadGenerator,
    LoadResult,
    LoadSpec,
    Service,
    http_request,
    machine_facts,
    percentile_ms,
    python_env,
    start_service,
    tail,
    utc_now_iso,
    wait_http_ok,
)
from bench._stack import start_broker

SITE_ID = "bench"
SITE_KEY = "bench-site-key-0001"
ORIGIN = "https://shop.bench.test"
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
EVENT_MIX: tuple[tuple[str, int], ...] = (
    ("page_viewed", 30),
    ("product_viewed", 25),
    ("heartbeat", 35),
    ("cart_updated", 10),
)
PRODUCTS = tuple(
    (f"sku-{n:05d}", name, category, price)
    for n, (name, category, price) in enumerate(
        [
            ("Trail Running Shoe", "shoes", 89.95),
            ("Merino Wool Sweater", "knitwear", 129.0),
            ("Leather Weekender Bag", "bags", 249.5),
            ("Organic Cotton T-Shirt", "shirts", 24.9),
            ("Waterproof Shell Jacket", "jackets", 199.0),
            ("Ceramic Pour-Over Set", "kitchen", 42.0),
        ]
        * 50
    )
)
# Guesses that size the pre-generated request pools (bodies are reused, and counted, past them).
PEAK_REQUESTS_PER_S_GUESS = {10: 2_500, 1: 5_000}
BARE_ASGI_POOL = 20_000
TARGETS = {
    "events_per_s_batch10": (">=", 20_000),
    "requests_per_s_single": (">=", 2_000),
    "p99_ms_half_load": ("<", 25),
}


# ---- request bodies (built in the load workers, before their clocks start) --------------


def _event(kind: str, rng: random.Random, at: datetime, url: str) -> dict[str, Any]:
    product_id, name, category, price = rng.choice(PRODUCTS)
    payload: dict[str, Any]
    context: dict[str, Any] | None = None
    if kind == "page_viewed":
        payload = {"page_type": rng.choice(("product", "category", "home", "search"))}
        context = {"page": {"url": url, "path": url.split(".test", 1)[1], "title": name}}
    elif kind == "product_viewed":
        payload = {
            "product_id": product_id,
            "name": name,
            "category": category,
            "price": price,
            "currency": "EUR",
        }
    elif kind == "cart_updated":
        items: list[dict[str, Any]] = [
            {"product_id": p[0], "name": p[1], "price": p[3], "quantity": rng.randint(1, 3)}
            for p in rng.sample(PRODUCTS, rng.randint(1, 3))
        ]
        total = round(sum(i["price"] * i["quantity"] for i in items), 2)
        payload = {"items": items, "value": total, "currency": "EUR"}
    else:
        seconds = rng.randint(5, 600)
        payload = {"seconds_on_page": seconds, "active_seconds": rng.randint(0, seconds)}
    event: dict[str, Any] = {
        "event_id": str(uuid7()),
        "type": kind,
        "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "payload": payload,
    }
    if context:
        event["context"] = context
    return event


def collect_body(rng: random.Random, visitor_id: str, events: int) -> bytes:
    """One snippet batch: a visitor's `events` recent events with the page context."""
    now = datetime.now(UTC)
    product = rng.choice(PRODUCTS)
    url = f"{ORIGIN}/p/{product[0]}?utm_source=newsletter"
    kinds = [kind for kind, _ in EVENT_MIX]
    weights = [weight for _, weight in EVENT_MIX]
    batch = [
        _event(kind, rng, now - timedelta(milliseconds=200 * (events - i)), url)
        for i, kind in enumerate(rng.choices(kinds, weights, k=events))
    ]
    return orjson.dumps(
        {
            "visitor_id": visitor_id,
            "session_id": f"s-{visitor_id}",
            "sent_at": SEND_TIME.decode(),  # stamped when sent: the tracker corrects skew
            "context": {
                "page": {"url": url, "title": product[1], "referrer": "https://www.google.com/"},
                "locale": "de-DE",
                "timezone": "Europe/Berlin",
                "screen_width": 1440,
                "screen_height": 900,
                "library": "beckon.js/0.1.0",
            },
            "events": batch,
        }
    )


def collect_requests(
    host: str, port: int, path: str, site_key: str, worker: int, count: int, events: int
) -> list[bytes]:
    """`count` complete POST /v1/collect requests with fresh event ids, many visitors."""
    rng = random.Random(worker * 7919 + events)
    visitors = [uuid.UUID(int=rng.getrandbits(128), version=4).hex for _ in range(5_000)]
    target = f"{path}?k={site_key}"
    requests = []
    for n in range(count):
        headers = {
            "Content-Type": "application/json",
            "Origin": ORIGIN,
            "User-Agent": USER_AGENTS[n % len(USER_AGENTS)],
        }
        body = collect_body(rng, visitors[n % len(visitors)], events)
        requests.append(http_request("POST", target, host, port, body, headers))
    return requests


# ---- ceiling A: a bare aiokafka producer ------------------------------------------------


def tracker_records(count: int) -> list[list[tuple[bytes, bytes, list[tuple[str, bytes]]]]]:
    """What the tracker would produce for `count` 10-event batches: key, value, headers each.

    Built with the tracker's own (pure) domain functions, so values have the same size.
    """
    from beckon_contracts.envelope import record_key
    from beckon_contracts.tracking import tracking_event_adapter
    from tracker.domain.admission import Edge, admit
    from tracker.domain.collect import CollectBatch, batch_candidates
    from tracker.domain.enrichment import clock_offset

    rng = random.Random(42)
    batches = []
    for n in range(count):
        raw = collect_body(rng, uuid.UUID(int=rng.getrandbits(128)).hex, 10)
        body = orjson.loads(raw.replace(SEND_TIME, utc_now_iso()))
        edge = Edge(datetime.now(UTC), "127.0.0.1", USER_AGENTS[n % len(USER_AGENTS)])
        batch = CollectBatch.model_validate(body)
        admission = admit(
            batch_candidates(batch, site_id=SITE_ID, edge=edge),
            offset=clock_offset(batch.sent_at, edge.received_at),
            received_at=edge.received_at,
            max_event_bytes=32_768,
            check_sizes=False,
            loc_prefix="events",
        )
        traceparent = f"00-{rng.getrandbits(128):032x}-{rng.getrandbits(64):016x}-01".encode()
        batches.append(
            [
                (
                    record_key(event.site_id, event.visitor_id),
                    tracking_event_adapter.dump_json(event, exclude_none=True),
                    [("traceparent", traceparent), ("event_type", event.type.encode())],
                )
                for event in admission.accepted
            ]
        )
    return batches


@dataclass
class ProducerResult:
    events: int = 0
    batches: int = 0
    value_bytes: float = 0.0
    latencies_s: list[float] | None = None
    failure: str | None = None


async def _bare_producer(
    clocks: Event,
    client: str,
    bootstrap: str,
    linger_ms: int,
    concurrency: int,
    seconds: float,
    warmup_s: float,
) -> ProducerResult:
    batches = tracker_records(2_000)
    sizes = [len(value) for batch in batches for _, value, _ in batch]
    if client == "confluent":
        return await _bare_confluent(
            clocks, batches, sum(sizes) / len(sizes), bootstrap, linger_ms, concurrency,
            seconds, warmup_s,
        )  # fmt: skip
    producer = make_producer(
        bootstrap, client_id="bench-bare", linger_ms=linger_ms, request_timeout_ms=10_000
    )
    await producer.start()
    result = ProducerResult(value_bytes=sum(sizes) / len(sizes), latencies_s=[])
    clocks.set()
    started = time.perf_counter()
    opens, closes = started + warmup_s, started + warmup_s + seconds
    counter = iter(range(10**12))

    async def drive() -> None:
        assert result.latencies_s is not None
        while (sent_at := time.perf_counter()) < closes:
            batch = batches[next(counter) % len(batches)]
            futures = [
                await producer.send(TRACKING_EVENTS.name, value, key=key, headers=headers)
                for key, value, headers in batch
            ]
            await asyncio.gather(*futures)
            done = time.perf_counter()
            if opens <= done < closes:
                result.events += len(batch)
                result.batches += 1
                result.latencies_s.append(done - sent_at)

    try:
        await asyncio.gather(*(drive() for _ in range(concurrency)))
    finally:
        await producer.stop()
    return result


async def _bare_confluent(
    clocks: Event,
    batches: list[list[tuple[bytes, bytes, list[tuple[str, bytes]]]]],
    value_bytes: float,
    bootstrap: str,
    linger_ms: int,
    concurrency: int,
    seconds: float,
    warmup_s: float,
) -> ProducerResult:
    """The tracker's own librdkafka publisher, without HTTP: one future per batch."""
    from tracker.adapters.kafka import OutboundRecord
    from tracker.adapters.librdkafka import ConfluentPublisher
    from tracker.config import Settings

    records = [
        [OutboundRecord(TRACKING_EVENTS.name, key, value, headers) for key, value, headers in b]
        for b in batches
    ]
    settings = Settings(kafka_bootstrap=bootstrap, kafka_linger_ms=linger_ms, create_topics=False)
    publisher = ConfluentPublisher(settings)
    await publisher.start()
    while not await publisher.is_ready():
        await asyncio.sleep(0.1)
    result = ProducerResult(value_bytes=value_bytes, latencies_s=[])
    clocks.set()
    started = time.perf_counter()
    opens, closes = started + warmup_s, started + warmup_s + seconds
    counter = iter(range(10**12))

    async def drive() -> None:
        assert result.latencies_s is not None
        while (sent_at := time.perf_counter()) < closes:
            batch = records[next(counter) % len(records)]
            await publisher.publish(batch)
            done = time.perf_counter()
            if opens <= done < closes:
                result.events += len(batch)
                result.batches += 1
                result.latencies_s.append(done - sent_at)

    try:
        await asyncio.gather(*(drive() for _ in range(concurrency)))
    finally:
        await publisher.stop()
    return result


def _bare_producer_main(results: mp.Queue[ProducerResult], *args: Any) -> None:
    try:
        results.put(uvloop.run(_bare_producer(*args)))
    except Exception as exc:
        results.put(ProducerResult(failure=f"{type(exc).__name__}: {exc}"))


def run_bare_producer(
    client: str,
    bootstrap: str,
    linger_ms: int,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    on_start: Callable[[int], CpuMeter],
) -> tuple[ProducerResult, dict[str, float]]:
    """In its own process, like the tracker; returns the result and CPU use."""
    ctx = mp.get_context("spawn")
    results: mp.Queue[ProducerResult] = ctx.Queue()
    clocks = ctx.Event()
    process = ctx.Process(
        target=_bare_producer_main,
        args=(results, clocks, client, bootstrap, linger_ms, concurrency, seconds, warmup_s),
        name=f"bare-producer-{client}",
    )
    process.start()
    assert process.pid is not None
    clocks.wait(timeout=120)  # records built and producer connected: measure from here
    meter = on_start(process.pid)
    try:
        result = results.get(timeout=120 + seconds + warmup_s)
    except queue.Empty:
        result = ProducerResult(failure="the bare producer did not report back")
    cpu = meter.stop()
    process.join(timeout=10)
    if process.is_alive():
        process.terminate()
    if result.failure:
        raise RuntimeError(f"bare producer failed: {result.failure}")
    return result, cpu


# ---- the run ----------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    result: LoadResult
    events_per_request: int
    cpu: dict[str, float]
    target_rate: float | None = None

    @property
    def requests_per_s(self) -> float:
        return self.result.ok / self.result.window_s

    @property
    def events_per_s(self) -> float:
        return self.requests_per_s * self.events_per_request

    def summary(self) -> dict[str, Any]:
        r = self.result
        server_cpu = self.cpu.get("server")
        return {
            "requests_per_s": round(self.requests_per_s, 1),
            "events_per_s": round(self.events_per_s, 1),
            "target_requests_per_s": round(self.target_rate, 1) if self.target_rate else None,
            "p50_ms": percentile_ms(r.latencies_s, 50),
            "p99_ms": percentile_ms(r.latencies_s, 99),
            "ok": r.ok,
            "non_200": r.non_ok,
            "connection_errors": dict(r.errors),
            "reused_bodies": r.reused_bodies,
            "mean_request_bytes": round(r.body_bytes / r.bodies) if r.bodies else None,
            "cpu_pct_of_core": self.cpu,
            # Steadier than throughput when other work shares the cores.
            "server_cpu_us_per_request": round(server_cpu * 1e4 / self.requests_per_s)
            if server_cpu and self.requests_per_s
            else None,
        }


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quiet: bool = args.json_only
        self.stack = contextlib.ExitStack()
        self.log_dir = Path(tempfile.mkdtemp(prefix="beckon-bench-tracker-"))
        self.broker_pids: list[int] = []
        self.tracker_pids: list[int] = []
        self.services: list[Service] = []
        self.loadgen: LoadGenerator | None = None

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    # -- the servers --

    def start_broker(self) -> str:
        bootstrap, self.broker_pids = start_broker(
            self.stack, self.log_dir, self.args.bootstrap, self.say
        )
        return bootstrap

    def start_tracker(self, bootstrap: str) -> tuple[str, int, str]:
        """host, port, site key of the tracker under test."""
        if self.args.tracker_url:
            url: str = self.args.tracker_url.rstrip("/")
            host, _, given_port = url.removeprefix("http://").partition(":")
            wait_http_ok(None, f"{url}/readyz")
            self.say(f"using the tracker at {url}")
            return host, int(given_port or 80), self.args.site_key
        port = free_port()
        site = {
            "site_id": SITE_ID,
            "site_key": SITE_KEY,
            "write_key": "bench-write-key-0001",
            "allowed_origins": [ORIGIN],
        }
        env = python_env(
            TRACKER_KAFKA_BOOTSTRAP=bootstrap,
            TRACKER_HOST="127.0.0.1",
            TRACKER_PORT=str(port),
            TRACKER_SITES=json.dumps([site]),
            # One loopback client sends for thousands of visitors: lift the per-client
            # and per-visitor limits, or the run measures 429s.
            TRACKER_REQUESTS_PER_S_PER_CLIENT="1e9",
            TRACKER_REQUEST_BURST_PER_CLIENT="1000000000",
            TRACKER_EVENTS_PER_S_PER_VISITOR="1e9",
            TRACKER_EVENT_BURST_PER_VISITOR="1000000000",
            TRACKER_LOG_JSON="true",
            TRACKER_KAFKA_LINGER_MS=str(self.args.linger_ms),
            TRACKER_WORKERS=str(self.args.tracker_workers),
            **({"TRACKER_KAFKA_CLIENT": self.args.kafka_client} if self.args.kafka_client else {}),
        )
        argv = [sys.executable, "-m", "tracker"]
        service = self._own(start_service("tracker", argv, env, self.log_dir))
        wait_http_ok(service, f"http://127.0.0.1:{port}/readyz")
        self.tracker_pids = [service.process.pid]
        self.say(f"started the tracker at http://127.0.0.1:{port} (log: {service.log_path})")
        return "127.0.0.1", port, SITE_KEY

    def start_bare_asgi(self) -> Service:
        port = free_port()
        argv = [
            sys.executable, "-m", "uvicorn", "bench._common:bare_asgi_app",
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
            "--workers", str(self.args.tracker_workers),
        ]  # fmt: skip
        service = self._own(start_service("bare-asgi", argv, python_env(), self.log_dir))
        wait_http_ok(service, f"http://127.0.0.1:{port}/")
        service.port = port
        return service

    def start_py_spy(self, name: str, seconds: float) -> subprocess.Popen[bytes]:
        """Sample the tracker (and its workers) for `seconds` into collapsed stacks."""
        out = Path(self.args.py_spy)
        out.mkdir(parents=True, exist_ok=True)
        argv = [
            shutil.which("py-spy") or "py-spy", "record", "--pid", str(self.tracker_pids[0]),
            "--subprocesses", "--rate", "200", "--duration", str(max(1, round(seconds))),
            "--format", "raw", "--output", str(out / f"{name}.txt"),
        ]  # fmt: skip
        self.say(f"   profiling the tracker with py-spy into {out / name}.txt")
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _own(self, service: Service) -> Service:
        self.services.append(service)
        self.stack.callback(service.stop)
        return service

    # -- the phases --

    def load(
        self,
        name: str,
        target: tuple[str, int, str],
        events: int,
        *,
        rate: float | None = None,
        pool: int | None = None,
        server_pids: list[int] | None = None,
        profile_as: str | None = None,
    ) -> Phase:
        assert self.loadgen is not None
        args, workers = self.args, self.args.workers
        host, port, site_key = target
        span = args.seconds + args.warmup
        if pool is None:
            expected = rate or PEAK_REQUESTS_PER_S_GUESS[events]
            pool = int(expected * span * 1.1 / workers) + 100
        specs = [
            LoadSpec(
                host=host,
                port=port,
                factory=collect_requests,
                factory_args=(host, port, "/v1/collect", site_key, worker, pool, events),
                connections=args.open_connections if rate else args.connections,
                seconds=args.seconds,
                warmup_s=args.warmup,
                rate=rate / workers if rate else None,
            )
            for worker in range(workers)
        ]
        meter = CpuMeter(
            {
                "server": self.tracker_pids if server_pids is None else server_pids,
                "broker": self.broker_pids,
                "loadgen": self.loadgen.pids,
            }
        )
        profiler: list[subprocess.Popen[bytes]] = []

        def clocks_started() -> None:
            meter.start()
            if profile_as and args.py_spy and self.tracker_pids:
                profiler.append(self.start_py_spy(profile_as, span))

        self.say(f"-- {name}: preparing {pool * workers:,} requests, then {span:g}s of load")
        result = self.loadgen.run(specs, during=clocks_started)
        phase = Phase(name, result, events, meter.stop(), rate)
        for process in profiler:
            process.wait(timeout=120)
        s = phase.summary()
        self.say(
            f"   {s['requests_per_s']:>9,.0f} req/s {s['events_per_s']:>9,.0f} events/s  "
            f"p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  non-200 {s['non_200'] or 0}  "
            f"errors {s['connection_errors'] or 0}  cpu % {s['cpu_pct_of_core']}"
            + (f"  reused bodies {s['reused_bodies']:,}" if s["reused_bodies"] else "")
        )
        return phase

    def bare_producer(self, bootstrap: str, client: str = "aiokafka") -> dict[str, Any]:
        args = self.args
        concurrency = args.connections * args.workers
        what = "bare aiokafka producer" if client == "aiokafka" else "the librdkafka publisher"
        self.say(f"-- ceiling A: {what}, batches of 10, {concurrency} in flight")

        def clocks_started(pid: int) -> CpuMeter:
            groups = {"producer": [pid], "broker": self.broker_pids, "tracker": self.tracker_pids}
            meter = CpuMeter(groups)
            meter.start()
            return meter

        result, cpu = run_bare_producer(
            client,
            bootstrap,
            args.linger_ms,
            concurrency,
            args.seconds,
            args.warmup,
            clocks_started,
        )
        summary = {
            "events_per_s": round(result.events / args.seconds, 1),
            "p50_ms": percentile_ms(result.latencies_s or [], 50),
            "p99_ms": percentile_ms(result.latencies_s or [], 99),
            "mean_value_bytes": round(result.value_bytes),
            "cpu_pct_of_core": cpu,
        }
        self.say(
            f"   {summary['events_per_s']:>9,.0f} events/s  p50 {summary['p50_ms']} ms  "
            f"p99 {summary['p99_ms']} ms  cpu % {cpu}"
        )
        return summary

    def run(self) -> dict[str, Any]:
        args = self.args
        summaries: dict[str, dict[str, Any]] = {}
        with self.stack:
            facts = machine_facts()
            bootstrap = self.start_broker()
            target = self.start_tracker(bootstrap)
            self.loadgen = LoadGenerator(args.workers)
            self.stack.callback(self.loadgen.close)
            try:
                peak10 = self.load("peak, batches of 10", target, 10, profile_as="peak-batch10")
                peak1 = self.load("peak, single events", target, 1, profile_as="peak-single")
                half1, half10 = peak1.requests_per_s / 2, peak10.requests_per_s / 2
                phases = {
                    "batch10": peak10,
                    "single": peak1,
                    "half_single": self.load(
                        f"open loop, single events at {half1:,.0f} req/s (half the peak)",
                        target, 1, rate=half1,
                    ),
                    "half_batch10": self.load(
                        f"open loop, batches of 10 at {half10:,.0f} req/s (half the peak)",
                        target, 10, rate=half10,
                    ),
                }  # fmt: skip
                summaries = {name: phase.summary() for name, phase in phases.items()}
                if not args.skip_ceilings:
                    summaries["bare_producer"] = self.bare_producer(bootstrap)
                    summaries["bare_confluent"] = self.bare_producer(bootstrap, "confluent")
                    bare = self.start_bare_asgi()
                    summaries["bare_asgi"] = self.load(
                        "ceiling B: bare ASGI endpoint, single-event bodies",
                        ("127.0.0.1", bare.port, target[2]), 1,
                        pool=BARE_ASGI_POOL // args.workers, server_pids=[bare.process.pid],
                    ).summary()  # fmt: skip
            except BaseException:
                for service in self.services:
                    self.say(f"{service.name} log ({service.log_path}):\n{tail(service.log_path)}")
                raise
        if not args.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.figures(summaries, phases, facts)

    def figures(
        self, s: dict[str, dict[str, Any]], phases: dict[str, Phase], facts: dict[str, Any]
    ) -> dict[str, Any]:
        args = self.args
        producer = s.get("bare_producer", {}).get("events_per_s")
        confluent = s.get("bare_confluent", {}).get("events_per_s")
        bare_asgi = s.get("bare_asgi", {}).get("requests_per_s")
        non_200 = sum(sum(p.result.non_ok.values()) for p in phases.values())
        errors = sum(sum(p.result.errors.values()) for p in phases.values())
        figures: dict[str, Any] = {
            "bench": "tracker",
            "events_per_s_batch10": round(s["batch10"]["events_per_s"]),
            "requests_per_s_batch10": round(s["batch10"]["requests_per_s"]),
            "requests_per_s_single": round(s["single"]["requests_per_s"]),
            "events_per_s_single": round(s["single"]["events_per_s"]),
            "p50_ms_half_load": s["half_single"]["p50_ms"],
            "p99_ms_half_load": s["half_single"]["p99_ms"],
            "half_load_requests_per_s": round(s["half_single"]["target_requests_per_s"]),
            "p50_ms_half_load_batch10": s["half_batch10"]["p50_ms"],
            "p99_ms_half_load_batch10": s["half_batch10"]["p99_ms"],
            "half_load_requests_per_s_batch10": round(s["half_batch10"]["target_requests_per_s"]),
            "bare_producer_events_per_s": round(producer) if producer else None,
            "bare_confluent_events_per_s": round(confluent) if confluent else None,
            "bare_asgi_requests_per_s": round(bare_asgi) if bare_asgi else None,
            "ratio_to_bare_producer": round(s["batch10"]["events_per_s"] / producer, 3)
            if producer
            else None,
            "ratio_to_bare_confluent": round(s["batch10"]["events_per_s"] / confluent, 3)
            if confluent
            else None,
            "ratio_to_bare_asgi": round(s["single"]["requests_per_s"] / bare_asgi, 3)
            if bare_asgi
            else None,
            "non_200": non_200,
            "connection_errors": errors,
            "valid": non_200 == 0 and errors == 0,
        }
        figures["targets_met"] = {
            key: figures[key] is not None
            and (figures[key] >= bound if op == ">=" else figures[key] < bound)
            for key, (op, bound) in TARGETS.items()
        }
        figures["phases"] = s
        figures["config"] = {
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "loadgen_workers": args.workers,
            "connections_per_worker": args.connections,
            "open_loop_connections_per_worker": args.open_connections,
            "tracker_workers": None if args.tracker_url else args.tracker_workers,
            "linger_ms": args.linger_ms,
            "kafka_client": args.kafka_client or "tracker default",
            "broker": args.bootstrap or f"apache kafka {KAFKA_VERSION} (embedded, same machine)",
            "tracker": args.tracker_url or "python -m tracker",
        }
        figures["machine"] = facts
        if args.keep_logs:
            figures["logs"] = str(self.log_dir)
        return figures


def print_table(f: dict[str, Any]) -> None:
    rows = [
        ("batch10", "peak, batches of 10 (closed loop)"),
        ("single", "peak, single events (closed loop)"),
        ("half_single", "half peak, single events (open loop)"),
        ("half_batch10", "half peak, batches of 10 (open loop)"),
        ("bare_producer", "ceiling A: bare aiokafka producer"),
        ("bare_confluent", "ceiling A: librdkafka publisher, no HTTP"),
        ("bare_asgi", "ceiling B: bare ASGI endpoint"),
    ]
    print()
    print(f"{'phase':<40}{'req/s':>9}{'events/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'cpu us/req':>11}")
    for key, label in rows:
        if (s := f["phases"].get(key)) is None:
            continue
        req = f"{s['requests_per_s']:,.0f}" if "requests_per_s" in s else "-"
        cost = s.get("server_cpu_us_per_request") or "-"
        print(
            f"{label:<40}{req:>9}{s['events_per_s']:>10,.0f}"
            f"{s['p50_ms'] or '-':>8}{s['p99_ms'] or '-':>8}{cost:>11}"
        )
    print()
    if f["ratio_to_bare_producer"] is not None:
        print(f"tracker / bare producer, events/s in batches of 10: {f['ratio_to_bare_producer']}")
        print(
            f"tracker / librdkafka publisher alone, same:          {f['ratio_to_bare_confluent']}"
        )
        print(f"tracker / bare ASGI, single-event requests/s:       {f['ratio_to_bare_asgi']}")
    for key, (op, bound) in TARGETS.items():
        verdict = "met" if f["targets_met"][key] else "MISSED"
        print(f"target {key} {op} {bound:,}: {f[key]} -> {verdict}")
    print(f"non-200 answers: {f['non_200']}, connection errors: {f['connection_errors']}")
    if not f["valid"]:
        print("INVALID RUN: some requests were not answered 200 (see phases.*.non_200)")
    print("Other work on this machine moves these figures: compare runs, not single numbers.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--seconds", type=float, default=10.0, help="measured seconds per phase")
    add("--warmup", type=float, default=1.0, help="unmeasured seconds before each phase")
    add("--bootstrap", help="use this running broker (HOST:PORT) instead of starting Apache Kafka")
    add("--tracker-url", help="use this running tracker (http://HOST:PORT)")
    add("--site-key", default=SITE_KEY, help="a site key it knows (with --tracker-url)")
    add("--workers", type=int, default=1, help="load generator processes")
    add("--connections", type=int, default=32, help="closed-loop connections per load worker")
    add("--open-connections", type=int, default=64, help="open-loop connections per worker")
    add("--tracker-workers", type=int, default=1, help="TRACKER_WORKERS (and bare ASGI workers)")
    add("--linger-ms", type=int, default=2, help="producer linger_ms, tracker and bare producer")
    add(
        "--kafka-client",
        choices=("confluent", "aiokafka"),
        help="TRACKER_KAFKA_CLIENT for the tracker it starts (default: the tracker's default)",
    )
    add("--skip-ceilings", action="store_true", help="measure the tracker only")
    add("--py-spy", metavar="DIR", help="profile the tracker's peak phases with py-spy into DIR")
    add("--keep-logs", action="store_true", help="keep the servers' logs")
    add("--json-only", action="store_true", help="print only the RESULT line")
    args = parser.parse_args(argv)
    if args.tracker_url and not args.bootstrap and not args.skip_ceilings:
        parser.error("--tracker-url needs --bootstrap (its broker, for the bare-producer ceiling)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    figures = Bench(args).run()
    if not args.json_only:
        print_table(figures)
    print("RESULT " + json.dumps(figures, separators=(",", ":")), flush=True)
    return 0 if figures["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
