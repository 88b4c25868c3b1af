"""Chat: idle visitor WebSockets one process holds, and message latency across two instances.

    uv run python bench/chat.py                                   # 10,000 sockets, 200 msg/s
    uv run python bench/chat.py --sockets 1000 --seconds 5        # smoke

Starts Apache Kafka (or uses --bootstrap), a fresh database `chat_bench_<random>` on DATABASE_URL's
server (else an embedded Postgres, like the test fixtures), `python -m chat migrate`, a seed
(site `bench`, one team of --agents agents) and two `python -m chat` instances, A and B, on
free ports with the same CHAT_SECRET_KEY. Then it measures:
  1. sockets: --sockets idle visitor WebSockets to A from --client-procs processes (tokens
     minted with the service's Signer, `Origin` an allowed one, permessage-deflate offered as
     browsers do); each reads its `hello`. Connect rate and failures, sockets A holds (its
     /readyz), A's resident memory per socket (VmRSS before/after, and the slope while opening),
     A's CPU with them idle, and ping → pong on one more socket meanwhile (how long A stalls)
  2. visitor → agent: --visitors visitors on A, each in a conversation assigned to one of the
     agents whose console sockets are on B; visitor `message` frames at --rate per second
     (open loop) for --seconds after --warmup. Latency from the scheduled send to the
     `message` frame at the assigned agent's socket, matched on client_id; p50/p95/p99/max
     and messages lost (also: the visitor's own copy back on A)
  3. agent → visitor: the same from the consoles on B to the visitors' sockets on A
The idle sockets stay open through 2 and 3 (unless --close-idle). The last line is
`RESULT {json}`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `bench` importable, bench/ not shadowing `chat`
    sys.path[:] = [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing as mp
import os
import queue
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from beckon_contracts.topics import CHAT_EVENTS
from beckon_devstack.kafka import KAFKA_VERSION
from beckon_devstack.ports import free_port
from beckon_edge.tokens import Signer
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from bench._common import (
    MachineMeter,
    Service,
    log_problems,
    machine_facts,
    percentile_ms,
    python_env,
    start_service,
    tail,
    wait_http_ok,
)
from bench._stack import create_database, start_broker, start_postgres

SITE_ID = "bench"
SITE_KEY = "pk_bench_site"
ORIGIN = "http://bench.test"
TEAM = "sales"
SECRET = "bench-secret-key-0123456789abcdef"  # both instances: a token from one passes the other
AGENT_PASSWORD = "bench-agent-password"
COOKIE = "beckon_agent"
MAX_CHATS = 50  # the schema's upper bound
TOKEN_TTL_S = 24 * 3600
OPEN_TIMEOUT_S = 60.0
MAX_FRAME_BYTES = 1 << 20
TARGETS = {
    "sockets_per_process": (">=", 10_000),
    "p99_msg_ms": ("<", 50),
}
# What a browser sends besides the WebSocket headers (the server keeps the handshake's headers
# for the socket's life, so they count toward its memory).
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
BROWSER_HEADERS = {
    "Pragma": "no-cache",
    "Cache-Control": "no-cache",
    "Accept-Encoding": "gzip, deflate, br, zstd",
    "Accept-Language": "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7",
}


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (children inherit it); returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def readyz_sockets(port: int) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/readyz")
        answer = connection.getresponse()
        body = answer.read()
        return int(orjson.loads(body)["sockets"]) if answer.status == 200 else None
    except (OSError, ValueError, KeyError):
        return None
    finally:
        connection.close()


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x."""
    if len(points) < 3:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def agent_email(n: int) -> str:
    return f"agent{n:03d}@bench.test"


def seed_yaml(agents: int) -> str:
    site = {
        "site_id": SITE_ID,
        "site_key": SITE_KEY,
        "name": "Bench store",
        "allowed_origins": [ORIGIN],
        "settings": {"greeting": "Hi!", "default_team": TEAM, "typing_preview": False},
        "teams": [{"team": TEAM, "name": "Sales"}],
        "agents": [
            {
                "email": agent_email(n),
                "password": AGENT_PASSWORD,
                "name": f"Agent {n:03d}",
                "teams": [TEAM],
                "max_chats": MAX_CHATS,
            }
            for n in range(agents)
        ],
    }
    return json.dumps({"sites": [site]}, indent=1)  # JSON is YAML


async def ws_connect(url: str, origin: str, deflate: bool, **extra: Any) -> ClientConnection:
    headers = {**BROWSER_HEADERS, **extra.pop("additional_headers", {})}
    return await connect(
        url,
        origin=origin,  # type: ignore[arg-type]
        additional_headers=headers,
        user_agent_header=BROWSER_UA,
        compression="deflate" if deflate else None,  # browsers offer permessage-deflate
        ping_interval=None,  # the server pings (uvicorn, every 20 s); we answer
        open_timeout=OPEN_TIMEOUT_S,
        close_timeout=2,
        max_size=MAX_FRAME_BYTES,
        proxy=None,
        **extra,
    )


async def read_hello(ws: ClientConnection) -> tuple[dict[str, Any], int]:
    """The `hello` frame, and how many frames came before it (the feed may overtake it)."""
    before = 0
    async with asyncio.timeout(OPEN_TIMEOUT_S):
        while True:
            frame: dict[str, Any] = orjson.loads(await ws.recv())
            if frame.get("t") == "hello":
                return frame, before
            before += 1


# ---- the idle-socket holders (separate processes) --------------------------------------------


@dataclass(frozen=True)
class HoldSpec:
    url: str  # ws://host:port/v1/widget/ws
    prefix: str  # visitor ids are prefix + n
    first: int
    count: int
    concurrency: int
    deflate: bool


def _error_kind(exc: BaseException) -> str:
    name = type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{name} {status}" if status else name


async def _hold(worker: int, spec: HoldSpec, commands: Any, reports: Any) -> None:
    signer = Signer(SECRET)
    now = time.time()
    urls = [
        spec.url
        + "?token="
        + signer.visitor_token(
            site_id=SITE_ID,
            visitor_id=f"{spec.prefix}{n}",
            conversation_id=None,
            ttl_s=TOKEN_TTL_S,
            now=now,
        )
        for n in range(spec.first, spec.first + spec.count)
    ]
    loop = asyncio.get_running_loop()
    reports.put(("ready", worker, None))
    await loop.run_in_executor(None, commands.get)  # "go"
    held: list[ClientConnection] = []
    errors: Counter[str] = Counter()
    first_errors: list[str] = []
    connect_s: list[float] = []
    no_hello = 0
    gate = asyncio.Semaphore(spec.concurrency)

    async def open_one(url: str) -> None:
        nonlocal no_hello
        async with gate:
            started = time.perf_counter()
            try:
                ws = await ws_connect(url, ORIGIN, spec.deflate, max_queue=4)
            except Exception as exc:
                errors[_error_kind(exc)] += 1
                if len(first_errors) < 5:
                    first_errors.append(f"{type(exc).__name__}: {exc}"[:300])
                return
            try:
                await read_hello(ws)
            except Exception:
                no_hello += 1
            connect_s.append(time.perf_counter() - started)
            held.append(ws)

    async def progress() -> None:
        while True:
            reports.put(("progress", worker, (len(held), sum(errors.values()))))
            await asyncio.sleep(0.5)

    ticker = asyncio.create_task(progress())
    started = time.perf_counter()
    await asyncio.gather(*(open_one(url) for url in urls))
    elapsed = time.perf_counter() - started
    ticker.cancel()
    del urls
    reports.put(
        (
            "opened",
            worker,
            {
                "opened": len(held),
                "failed": sum(errors.values()),
                "errors": dict(errors),
                "first_errors": first_errors,
                "no_hello": no_hello,
                "seconds": elapsed,
                "connect_p50_ms": percentile_ms(connect_s, 50),
                "connect_p99_ms": percentile_ms(connect_s, 99),
            },
        )
    )
    await loop.run_in_executor(None, commands.get)  # "close"
    still_open = sum(1 for ws in held if ws.state is State.OPEN)
    codes = Counter(str(ws.close_code) for ws in held if ws.state is not State.OPEN)
    reports.put(
        (
            "closing",
            worker,
            {"open": still_open, "dropped": len(held) - still_open, "close_codes": dict(codes)},
        )
    )
    for ws in held:
        ws.transport.abort()
    await asyncio.sleep(0.2)


def _holder_main(worker: int, spec: HoldSpec, commands: Any, reports: Any) -> None:
    raise_nofile()
    try:
        uvloop.run(_hold(worker, spec, commands, reports))
    except Exception as exc:
        reports.put(("failed", worker, f"{type(exc).__name__}: {exc}"))


class Holders:
    """Client processes that open idle visitor sockets, hold them, and drop them on request."""

    def __init__(self, specs: list[HoldSpec]) -> None:
        ctx = mp.get_context("spawn")
        self.reports: Any = ctx.Queue()
        self.commands: list[Any] = [ctx.Queue() for _ in specs]
        self.processes = [
            ctx.Process(
                target=_holder_main,
                args=(n, spec, self.commands[n], self.reports),
                name=f"chat-bench-holder-{n}",
                daemon=True,
            )
            for n, spec in enumerate(specs)
        ]
        for process in self.processes:
            process.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]

    def get(self, timeout: float) -> tuple[str, int, Any] | None:
        try:
            kind, worker, body = self.reports.get(timeout=timeout)
        except queue.Empty:
            self.check_alive()
            return None
        if kind == "failed":
            raise RuntimeError(f"socket holder {worker} failed: {body}")
        return kind, worker, body

    def check_alive(self) -> None:
        for process in self.processes:
            if process.exitcode not in (None, 0):
                raise RuntimeError(f"{process.name} exited with {process.exitcode}")

    def wait_for(self, kind: str, timeout: float) -> dict[int, Any]:
        found: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(found) < len(self.processes):
            if time.monotonic() > deadline:
                raise TimeoutError(f"socket holders did not report {kind!r} in {timeout:g}s")
            report = self.get(0.5)
            if report is not None and report[0] == kind:
                found[report[1]] = report[2]
        return found

    def tell(self, command: str) -> None:
        for commands in self.commands:
            commands.put(command)

    def stop(self) -> None:
        for commands in self.commands:
            with contextlib.suppress(Exception):
                commands.put("close")
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()


class Prober:
    """One more visitor socket to A, from a thread: a `ping` every `interval_s`, the time to its
    `pong`. While sockets open or sit idle, that is how long A's event loop keeps anyone
    waiting (a full garbage collection over every socket's objects shows up here)."""

    def __init__(self, port: int, deflate: bool, interval_s: float = 0.1) -> None:
        self.url = f"ws://127.0.0.1:{port}/v1/widget/ws?token=" + Signer(SECRET).visitor_token(
            site_id=SITE_ID,
            visitor_id=f"probe-{uuid.uuid4().hex[:8]}",
            conversation_id=None,
            ttl_s=TOKEN_TTL_S,
            now=time.time(),
        )
        self.deflate, self.interval_s = deflate, interval_s
        self.samples: list[tuple[float, float]] = []  # (sent at, round trip), perf_counter
        self.failure: str | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="probe", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(OPEN_TIMEOUT_S):
            raise TimeoutError("the probe socket did not open")
        if self.failure:
            raise RuntimeError(f"the probe socket failed: {self.failure}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=OPEN_TIMEOUT_S)

    def window(self, start: float, end: float) -> dict[str, Any]:
        rtts = [rtt for at, rtt in list(self.samples) if start <= at < end]
        return {
            "pings": len(rtts),
            "p50_ms": percentile_ms(rtts, 50),
            "p99_ms": percentile_ms(rtts, 99),
            "max_ms": round(max(rtts) * 1000, 1) if rtts else None,
            "over_100ms": sum(1 for rtt in rtts if rtt > 0.1),
        }

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            self._ready.set()

    async def _run(self) -> None:
        ws = await ws_connect(self.url, ORIGIN, self.deflate)
        await read_hello(ws)
        self._ready.set()
        ping = orjson.dumps({"t": "ping"}).decode()
        while not self._stop.is_set():
            sent = time.perf_counter()
            await ws.send(ping)
            async with asyncio.timeout(OPEN_TIMEOUT_S):
                while orjson.loads(await ws.recv()).get("t") != "pong":
                    pass
            self.samples.append((sent, time.perf_counter() - sent))
            await asyncio.sleep(max(0.0, sent + self.interval_s - time.perf_counter()))
        await ws.close()


# ---- the latency phase (in this process) ------------------------------------------------------


@dataclass
class Flow:
    """Messages of one direction: when each was due, where it must arrive, when it did."""

    name: str
    recipient: dict[str, tuple[str, int]] = field(default_factory=dict)
    due: dict[str, tuple[float, float, bool]] = field(default_factory=dict)  # perf, wall, measured
    arrived: dict[str, tuple[float, float, str | None]] = field(default_factory=dict)
    duplicates: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    send_lag_max_s: float = 0.0
    window_s: float = 0.0

    def arrive(self, client_id: str, at: tuple[str, int], message: dict[str, Any]) -> bool:
        if self.recipient.get(client_id) != at:
            return False
        if client_id in self.arrived:
            self.duplicates += 1
            return True
        self.arrived[client_id] = (time.perf_counter(), time.time(), message.get("created_at"))
        return True

    def measured(self) -> list[str]:
        return [cid for cid, (_, _, counted) in self.due.items() if counted]

    def summary(self) -> dict[str, Any]:
        ids = self.measured()
        latencies, ingress, delivery = [], [], []
        for cid in ids:
            if (got := self.arrived.get(cid)) is None:
                continue
            due_perf, due_wall, _ = self.due[cid]
            latencies.append(got[0] - due_perf)
            if got[2]:
                stored = datetime.fromisoformat(got[2]).timestamp()
                ingress.append(stored - due_wall)
                delivery.append(got[1] - stored)
        lost = len(ids) - len(latencies)
        return {
            "messages": len(ids),
            "delivered": len(latencies),
            "lost": lost,
            "duplicates": self.duplicates,
            "errors": dict(self.errors),
            "messages_per_s": round(len(ids) / self.window_s, 1) if self.window_s else None,
            "p50_ms": percentile_ms(latencies, 50),
            "p95_ms": percentile_ms(latencies, 95),
            "p99_ms": percentile_ms(latencies, 99),
            "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
            "send_to_stored_p50_ms": percentile_ms(ingress, 50),
            "send_to_stored_p99_ms": percentile_ms(ingress, 99),
            "stored_to_arrival_p50_ms": percentile_ms(delivery, 50),
            "stored_to_arrival_p99_ms": percentile_ms(delivery, 99),
            "client_send_lag_max_ms": round(self.send_lag_max_s * 1000, 2),
        }


@dataclass
class AgentSide:
    index: int
    agent_id: str
    headers: dict[str, str]
    ws: ClientConnection
    frames: Counter[str] = field(default_factory=Counter)


@dataclass
class VisitorSide:
    index: int
    conversation_id: str
    ws: ClientConnection
    agent: int = -1
    frames: Counter[str] = field(default_factory=Counter)


class Tap:
    """--trace: reads `chat.events` like an instance's feed does, to split the latency at the
    broker: stored (the message's created_at) → produced by the relay (the record's CreateTime)
    → fetched here (about when the instances' feeds get it) → at the socket."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="chat-bench-tap",
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=5,  # the instances' CHAT_FETCH_MAX_WAIT_MS default
            auto_offset_reset="latest",
        )
        self.seen: dict[str, tuple[float, float]] = {}  # client_id → (produced, fetched) wall
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(CHAT_EVENTS.name, n) for n in range(CHAT_EVENTS.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self.consumer.position(partition)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=500, max_records=1000)
            fetched = time.time()
            for records in batches.values():
                for record in records:
                    event = orjson.loads(record.value or b"{}")
                    if event.get("type") != "message.sent":
                        continue
                    client_id = (event.get("payload") or {}).get("client_id")
                    if client_id and client_id not in self.seen:
                        self.seen[client_id] = (record.timestamp / 1000, fetched)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


def trace_summary(flow: Flow, tap: Tap) -> dict[str, Any]:
    stored_produced, produced_fetched, produced_arrived = [], [], []
    for client_id in flow.measured():
        got, seen = flow.arrived.get(client_id), tap.seen.get(client_id)
        if got is None or seen is None or not got[2]:
            continue
        stored = datetime.fromisoformat(got[2]).timestamp()
        stored_produced.append(seen[0] - stored)
        produced_fetched.append(seen[1] - seen[0])
        produced_arrived.append(got[1] - seen[0])
    out: dict[str, Any] = {"traced": len(stored_produced)}
    for name, samples in (
        ("stored_to_produced", stored_produced),
        ("produced_to_tap", produced_fetched),
        ("produced_to_socket", produced_arrived),
    ):
        out[f"{name}_p50_ms"] = percentile_ms(samples, 50)
        out[f"{name}_p99_ms"] = percentile_ms(samples, 99)
    return out


# ---- the run ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quiet: bool = args.json_only
        self.stack = contextlib.ExitStack()
        self.log_dir = Path(tempfile.mkdtemp(prefix="beckon-bench-chat-"))
        self.run_id = uuid.uuid4().hex[:8]
        self.services: list[Service] = []
        self.broker_pids: list[int] = []
        self.database_url = ""
        self.postgres_pids: list[int] = []
        self.bootstrap = ""
        self.holders: Holders | None = None
        self.forward = Flow("visitor → agent")
        self.echo = Flow("visitor → own socket")
        self.reverse = Flow("agent → visitor")
        self.hello_not_first = 0  # sockets whose first frame was not `hello`

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def _own(self, service: Service) -> Service:
        self.services.append(service)
        self.stack.callback(service.stop)
        return service

    # -- what it needs --

    def start_broker(self) -> str:
        bootstrap, self.broker_pids = start_broker(
            self.stack, self.log_dir, self.args.bootstrap, self.say
        )
        return bootstrap

    def start_database(self) -> str:
        server_url, self.postgres_pids = start_postgres(self.stack, self.log_dir, self.say)
        name = f"chat_bench_{self.run_id}"
        # dropped after the instances stop (the stack closes last in, first out)
        self.database_url = asyncio.run(create_database(self.stack, server_url, name))
        self.say(f"created database {name}")
        return self.database_url

    def chat_env(self, bootstrap: str, port: int = 0, instance: str = "bench") -> dict[str, str]:
        big = "1000000000"
        return python_env(
            CHAT_DATABASE_URL=self.database_url,
            CHAT_KAFKA_BOOTSTRAP=bootstrap,
            CHAT_HOST="127.0.0.1",
            CHAT_PORT=str(port or 8003),
            CHAT_INSTANCE_ID=f"{instance}-{self.run_id}",
            CHAT_SECRET_KEY=SECRET,
            CHAT_LOG_LEVEL="WARNING",
            CHAT_CREATE_TOPICS="false",
            # One loopback client plays thousands of visitors: lift the per-IP and per-socket
            # limits, or the run measures 429s and `rate_limited` frames.
            CHAT_WIDGET_REQUESTS_PER_S="1e9",
            CHAT_WIDGET_REQUEST_BURST=big,
            CHAT_SOCKET_MESSAGES_PER_S="1e9",
            CHAT_SOCKET_MESSAGE_BURST=big,
            CHAT_AGENT_OFFLINE_AFTER_S="86400",
        )

    def prepare_database(self, bootstrap: str) -> None:
        env = self.chat_env(bootstrap)
        for argv in (["migrate"], ["seed", str(self.write_seed())]):
            done = subprocess.run(
                [sys.executable, "-m", "chat", *argv],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"python -m chat {argv[0]} failed:\n{done.stdout}{done.stderr}")
            self.say(f"   {done.stdout.strip().splitlines()[-1]}")

    def write_seed(self) -> Path:
        path = self.log_dir / "seed.yaml"
        path.write_text(seed_yaml(self.args.agents))
        return path

    def start_chat(self, bootstrap: str, name: str) -> Service:
        port = free_port()
        env = self.chat_env(bootstrap, port, name)
        service = self._own(
            start_service(f"chat-{name}", [sys.executable, "-m", "chat"], env, self.log_dir)
        )
        service.port = port
        wait_http_ok(service, f"http://127.0.0.1:{port}/readyz", timeout_s=120)
        self.say(f"started chat instance {name.upper()} at http://127.0.0.1:{port}")
        return service

    # -- phase 1: idle sockets --

    async def _warm(self, port: int, count: int) -> None:
        """A few sockets opened and closed, so one-off start-up costs stay out of the delta."""
        signer = Signer(SECRET)
        sockets = []
        for n in range(count):
            token = signer.visitor_token(
                site_id=SITE_ID,
                visitor_id=f"warm-{self.run_id}-{n}",
                conversation_id=None,
                ttl_s=TOKEN_TTL_S,
                now=time.time(),
            )
            ws = await ws_connect(
                f"ws://127.0.0.1:{port}/v1/widget/ws?token={token}",
                ORIGIN,
                not self.args.no_deflate,
            )
            await read_hello(ws)
            sockets.append(ws)
        for ws in sockets:
            await ws.close()

    def sockets_phase(self, a: Service) -> dict[str, Any]:
        args = self.args
        total, procs = args.sockets, args.client_procs
        self.say(f"-- sockets: {total:,} idle visitor sockets to A from {procs} client processes")
        uvloop.run(self._warm(a.port, 50))
        shares = [total // procs + (1 if n < total % procs else 0) for n in range(procs)]
        specs, first = [], 0
        for share in shares:
            specs.append(
                HoldSpec(
                    url=f"ws://127.0.0.1:{a.port}/v1/widget/ws",
                    prefix=f"idle-{self.run_id}-",
                    first=first,
                    count=share,
                    concurrency=args.connect_concurrency,
                    deflate=not args.no_deflate,
                )
            )
            first += share
        self.holders = holders = Holders(specs)
        self.stack.callback(holders.stop)
        holders.wait_for("ready", 120)
        prober = Prober(a.port, not args.no_deflate)
        prober.start()
        self.stack.callback(prober.stop)
        time.sleep(1.0)
        base_sockets = readyz_sockets(a.port) or 0  # the probe's
        rss_before = rss_kib(a.process.pid)
        meter = MachineMeter(
            {
                "server": [a.process.pid],
                "clients": holders.pids,
                "postgres": self.postgres_pids,
                "broker": self.broker_pids,
            }
        )
        meter.start()
        started = time.perf_counter()
        holders.tell("go")
        progress = {n: (0, 0) for n in range(procs)}
        opened: dict[int, Any] = {}
        samples: list[tuple[float, float]] = []
        next_sample, next_print = started, started + 2.0
        finished = started
        while len(opened) < procs:
            report = holders.get(0.2)
            if report is not None:
                kind, worker, body = report
                if kind == "progress":
                    progress[worker] = body
                elif kind == "opened":
                    opened[worker] = body
                    progress[worker] = (body["opened"], body["failed"])
                    finished = time.perf_counter()
            now = time.perf_counter()
            if now >= next_sample:
                held_now = readyz_sockets(a.port)
                if held_now is not None:
                    samples.append((held_now - base_sockets, rss_kib(a.process.pid)))
                next_sample = now + 1.0
            if now >= next_print:
                done = sum(p[0] for p in progress.values())
                failed = sum(p[1] for p in progress.values())
                self.say(
                    f"   opened {done:,}/{total:,} sockets ({done / (now - started):,.0f}/s), "
                    f"failed {failed:,}; A holds {samples[-1][0] if samples else 0:,.0f}, "
                    f"RSS {rss_kib(a.process.pid) / 1024:,.0f} MiB"
                )
                next_print = now + 2.0
            if now - started > args.open_timeout:
                raise TimeoutError(f"the sockets did not open within {args.open_timeout:g}s")
        seconds = finished - started
        cpu = meter.stop()
        time.sleep(args.settle)
        held = (readyz_sockets(a.port) or 0) - base_sockets
        rss_after = rss_kib(a.process.pid)
        idle = MachineMeter(
            {
                "server": [a.process.pid],
                "clients": holders.pids,
                "postgres": self.postgres_pids,
                "broker": self.broker_pids,
            }
        )
        idle.start()
        idle_started = time.perf_counter()
        time.sleep(args.idle_seconds)
        idle_cpu = idle.stop()
        stalls = {
            "opening": prober.window(started, finished),
            "idle": prober.window(idle_started, time.perf_counter()),
        }
        prober.stop()
        client_opened = sum(o["opened"] for o in opened.values())
        failed = sum(o["failed"] for o in opened.values())
        errors: Counter[str] = Counter()
        for o in opened.values():
            errors.update(o["errors"])
        marginal = slope([(x, y) for x, y in samples if x > 0.1 * total])
        cpu_s = cpu.get("server", 0) / 100 * seconds
        summary = {
            "requested": total,
            "opened_by_clients": client_opened,
            "held_by_server": held,
            "failed": failed,
            "errors": dict(errors),
            "first_errors": [e for o in opened.values() for e in o["first_errors"]][:5],
            "no_hello": sum(o["no_hello"] for o in opened.values()),
            "seconds": round(seconds, 2),
            "connects_per_s": round(client_opened / seconds, 1) if seconds else None,
            "connect_p50_ms": max(o["connect_p50_ms"] or 0 for o in opened.values()),
            "connect_p99_ms": max(o["connect_p99_ms"] or 0 for o in opened.values()),
            "rss_before_mib": round(rss_before / 1024, 1),
            "rss_after_mib": round(rss_after / 1024, 1),
            "kib_per_socket": round((rss_after - rss_before) / held, 1) if held > 0 else None,
            "kib_per_socket_marginal": round(marginal, 1) if marginal is not None else None,
            "server_cpu_us_per_connect": round(cpu_s * 1e6 / client_opened)
            if client_opened
            else None,
            "cpu_pct_of_core": cpu,
            "idle_cpu_pct_of_core": idle_cpu,  # all sockets open, nothing sent
            "ping_rtt": stalls,  # a ping every 100 ms on one more socket to A
            "deflate": not args.no_deflate,
            "client_processes": procs,
        }
        self.say(
            f"   {held:,} held by A ({failed:,} failed) in {seconds:.1f}s: "
            f"{summary['connects_per_s']:,} connects/s; RSS {summary['rss_before_mib']} → "
            f"{summary['rss_after_mib']} MiB = {summary['kib_per_socket']} KiB/socket "
            f"(slope {summary['kib_per_socket_marginal']}); cpu % {cpu}"
        )
        self.say(
            f"   then {args.idle_seconds:g}s idle (server pings, feed polling): cpu % {idle_cpu}"
        )
        for name, probe in stalls.items():
            self.say(
                f"   ping → pong on one more socket while {name}: p50 {probe['p50_ms']} "
                f"p99 {probe['p99_ms']} max {probe['max_ms']} ms ({probe['pings']} pings)"
            )
        if errors:
            self.say(f"   errors: {dict(errors)}; first: {summary['first_errors'][:2]}")
        return summary

    def release_idle(self) -> dict[str, Any]:
        """Ask the holders whether their sockets are still open, then drop them."""
        assert self.holders is not None
        self.holders.tell("close")
        reports = self.holders.wait_for("closing", 60)
        codes: Counter[str] = Counter()
        for r in reports.values():
            codes.update(r["close_codes"])
        self.holders.stop()
        return {
            "still_open": sum(r["open"] for r in reports.values()),
            "dropped_by_server": sum(r["dropped"] for r in reports.values()),
            "close_codes": dict(codes),
        }

    # -- phases 2 and 3: latency --

    async def latency_phase(self, a: Service, b: Service) -> dict[str, Any]:
        args = self.args
        a_http, b_http = f"http://127.0.0.1:{a.port}", f"http://127.0.0.1:{b.port}"
        deflate = not args.no_deflate
        signer = Signer(SECRET)
        readers: list[asyncio.Task[None]] = []
        agents: list[AgentSide] = []
        visitors: list[VisitorSide] = []

        async def read_agent(agent: AgentSide) -> None:
            with contextlib.suppress(Exception):
                async for raw in agent.ws:
                    frame = orjson.loads(raw)
                    kind = frame.get("t")
                    agent.frames[kind] += 1
                    if kind == "message":
                        message = frame["message"]
                        at = ("agent", agent.index)
                        client_id = message.get("client_id")
                        if (
                            message.get("author") == "visitor"
                            and client_id
                            and not self.forward.arrive(client_id, at, message)
                        ):
                            agent.frames["message_for_others"] += 1

        async def read_visitor(visitor: VisitorSide) -> None:
            with contextlib.suppress(Exception):
                async for raw in visitor.ws:
                    frame = orjson.loads(raw)
                    kind = frame.get("t")
                    visitor.frames[kind] += 1
                    if kind == "message":
                        message = frame["message"]
                        client_id, at = message.get("client_id"), ("visitor", visitor.index)
                        if client_id and message.get("author") == "agent":
                            self.reverse.arrive(client_id, at, message)
                        elif client_id and message.get("author") == "visitor":
                            self.echo.arrive(client_id, at, message)
                    elif kind == "error":
                        self.forward.errors[str(frame.get("error"))] += 1

        self.say(
            f"-- latency: {args.agents} agents online with consoles on B, "
            f"{args.visitors} visitors chatting on A"
        )
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            for n in range(args.agents):
                answer = await client.post(
                    f"{b_http}/v1/console/login",
                    json={"email": agent_email(n), "password": AGENT_PASSWORD},
                )
                answer.raise_for_status()
                cookie = answer.cookies[COOKIE]
                client.cookies.clear()
                headers = {"Cookie": f"{COOKIE}={cookie}", "Origin": b_http}
                answer = await client.post(
                    f"{b_http}/v1/console/status", json={"status": "online"}, headers=headers
                )
                answer.raise_for_status()
                ws = await ws_connect(
                    f"ws://127.0.0.1:{b.port}/v1/console/ws",
                    b_http,
                    deflate,
                    additional_headers={"Cookie": f"{COOKIE}={cookie}"},
                )
                hello, before = await read_hello(ws)
                self.hello_not_first += bool(before)
                agent = AgentSide(n, hello["agent"]["id"], headers, ws)
                agents.append(agent)
                readers.append(asyncio.create_task(read_agent(agent)))
            for n in range(args.visitors):
                token = signer.visitor_token(
                    site_id=SITE_ID,
                    visitor_id=f"chat-{self.run_id}-{n}",
                    conversation_id=None,
                    ttl_s=TOKEN_TTL_S,
                    now=time.time(),
                )
                answer = await client.post(
                    f"{a_http}/v1/widget/conversations",
                    json={"team": TEAM},
                    headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN},
                )
                answer.raise_for_status()
                conversation = answer.json()["conversation"]
                if conversation["status"] != "open":
                    raise RuntimeError(f"conversation {n} is {conversation['status']}, not open")
                ws = await ws_connect(
                    f"ws://127.0.0.1:{a.port}/v1/widget/ws?token={token}", ORIGIN, deflate
                )
                hello, before = await read_hello(ws)
                self.hello_not_first += bool(before)
                if (hello.get("conversation") or {}).get("id") != conversation["id"]:
                    raise RuntimeError(f"visitor {n}'s hello does not show the conversation")
                visitor = VisitorSide(n, conversation["id"], ws)
                visitors.append(visitor)
                readers.append(asyncio.create_task(read_visitor(visitor)))
            owner: dict[str, int] = {}
            for agent in agents:
                answer = await client.get(
                    f"{b_http}/v1/console/conversations",
                    params={"scope": "mine"},
                    headers=agent.headers,
                )
                answer.raise_for_status()
                for conversation in answer.json()["conversations"]:
                    owner[conversation["id"]] = agent.index
            for visitor in visitors:
                if visitor.conversation_id not in owner:
                    raise RuntimeError(f"no agent lists conversation {visitor.conversation_id}")
                visitor.agent = owner[visitor.conversation_id]
        load = Counter(v.agent for v in visitors)
        self.say(
            f"   {len(visitors)} conversations open, {min(load.values())}-{max(load.values())} "
            f"per agent; A holds {readyz_sockets(a.port):,} sockets, B {readyz_sockets(b.port):,}"
        )
        await asyncio.sleep(1.0)  # the set-up's conversation frames settle
        for agent in agents:
            agent.frames.clear()

        def visitor_says(n: int, client_id: str) -> tuple[ClientConnection, dict[str, Any]]:
            visitor = visitors[n % len(visitors)]
            self.forward.recipient[client_id] = ("agent", visitor.agent)
            self.echo.recipient[client_id] = ("visitor", visitor.index)
            frame = {"t": "message", "client_id": client_id, "text": f"bench question {n}"}
            return visitor.ws, frame

        def agent_says(n: int, client_id: str) -> tuple[ClientConnection, dict[str, Any]]:
            visitor = visitors[n % len(visitors)]
            self.reverse.recipient[client_id] = ("visitor", visitor.index)
            frame = {
                "t": "message",
                "conversation_id": visitor.conversation_id,
                "client_id": client_id,
                "text": f"bench answer {n}",
            }
            return agents[visitor.agent].ws, frame

        pids = {"a": [a.process.pid], "b": [b.process.pid], "postgres": self.postgres_pids}
        pids["broker"] = self.broker_pids
        pids["idle_clients"] = self.holders.pids if self.holders and not args.close_idle else []
        phases: dict[str, Any] = {}
        self.say(
            f"   visitor → agent: {args.rate:g} messages/s for {args.seconds:g}s "
            f"(+{args.warmup:g}s warm-up)"
        )
        tap = Tap(self.bootstrap) if args.trace else None
        if tap is not None:
            await tap.start()
        profilers = self.start_py_spy({"chat-a": a, "chat-b": b}, args.warmup + args.seconds)
        cpu = await self.drive([self.forward, self.echo], visitor_says, "v", pids)
        for profiler in profilers:
            profiler.wait(timeout=120)
        phases["forward"] = self.forward.summary()
        phases["forward"]["cpu_pct_of_core"] = cpu
        phases["echo"] = self.echo.summary()
        sent = len(self.forward.due) or 1  # warm-up included, like the frames counted
        fanout = sum(ag.frames["message"] for ag in agents)
        phases["forward"]["agent_message_frames_per_message"] = round(fanout / sent, 2)
        if tap is not None:
            phases["forward"]["trace"] = trace_summary(self.forward, tap)
            self.say(f"   trace: {phases['forward']['trace']}")
        self.report_flow("visitor → agent", phases["forward"])
        self.report_flow("visitor → own socket (echo)", phases["echo"])
        if not args.skip_reverse:
            self.say(f"   agent → visitor: {args.rate:g} messages/s for {args.reverse_seconds:g}s")
            profilers = self.start_py_spy(
                {"chat-a-reverse": a, "chat-b-reverse": b}, args.warmup + args.reverse_seconds
            )
            cpu = await self.drive([self.reverse], agent_says, "r", pids, args.reverse_seconds)
            for profiler in profilers:
                profiler.wait(timeout=120)
            phases["reverse"] = self.reverse.summary()
            phases["reverse"]["cpu_pct_of_core"] = cpu
            if tap is not None:
                phases["reverse"]["trace"] = trace_summary(self.reverse, tap)
                self.say(f"   trace: {phases['reverse']['trace']}")
            self.report_flow("agent → visitor", phases["reverse"])
        if tap is not None:
            await tap.stop()
        phases["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        phases["hello_not_first"] = self.hello_not_first
        phases["sockets_a"] = readyz_sockets(a.port)
        phases["sockets_b"] = readyz_sockets(b.port)
        phases["rss_mib"] = {
            "a": round(rss_kib(a.process.pid) / 1024, 1),
            "b": round(rss_kib(b.process.pid) / 1024, 1),
        }
        phases["config"] = {
            "agents": len(agents),
            "visitors": len(visitors),
            "conversations_per_agent": [min(load.values()), max(load.values())],
        }
        for ws in [*(ag.ws for ag in agents), *(v.ws for v in visitors)]:
            ws.transport.abort()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        return phases

    async def drive(
        self,
        flows: list[Flow],
        make: Any,
        tag: str,
        pids: dict[str, list[int]],
        seconds: float | None = None,
    ) -> dict[str, float]:
        """Open loop: one frame every 1/rate s; each flow's window opens after the warm-up."""
        args = self.args
        seconds = args.seconds if seconds is None else seconds
        interval = 1.0 / args.rate
        # CPU counts over warm-up and window alike (same rate): reading /proc inside the
        # window would stall this loop for tens of milliseconds.
        meter = MachineMeter({name: p for name, p in pids.items() if p})
        meter.start()
        cpu_started = time.process_time()
        started = time.perf_counter() + 0.01
        opens, closes = started + args.warmup, started + args.warmup + seconds
        n = 0
        while (due := started + n * interval) < closes:
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
                continue
            client_id = f"{tag}{self.run_id}-{n}"
            ws, frame = make(n, client_id)
            wall = time.time() - (now - due)
            for flow in flows:
                flow.due[client_id] = (due, wall, due >= opens)
            try:
                await ws.send(orjson.dumps(frame).decode())
            except Exception as exc:
                flows[0].errors[type(exc).__name__] += 1
            if due >= opens:
                lag = time.perf_counter() - due
                for flow in flows:
                    flow.send_lag_max_s = max(flow.send_lag_max_s, lag)
            n += 1
        elapsed = time.perf_counter() - started
        driver = round(100 * (time.process_time() - cpu_started) / elapsed, 1)
        cpu = meter.stop({"driver": driver})
        for flow in flows:
            flow.window_s = seconds
        deadline = time.perf_counter() + args.grace
        wanted = [(flow, flow.measured()) for flow in flows]
        while time.perf_counter() < deadline:
            if all(all(cid in flow.arrived for cid in ids) for flow, ids in wanted):
                break
            await asyncio.sleep(0.05)
        return cpu

    def report_flow(self, label: str, s: dict[str, Any]) -> None:
        self.say(
            f"   {label}: {s['delivered']:,}/{s['messages']:,} delivered, lost {s['lost']}, "
            f"p50 {s['p50_ms']} p95 {s['p95_ms']} p99 {s['p99_ms']} max {s['max_ms']} ms "
            f"(send→stored p50 {s['send_to_stored_p50_ms']}, stored→arrival p50 "
            f"{s['stored_to_arrival_p50_ms']} ms)"
            + (f"; cpu % {s['cpu_pct_of_core']}" if "cpu_pct_of_core" in s else "")
        )

    def start_py_spy(self, services: dict[str, Service], seconds: float) -> list[Any]:
        if not self.args.py_spy:
            return []
        out = Path(self.args.py_spy)
        out.mkdir(parents=True, exist_ok=True)
        started = []
        for name, service in services.items():
            argv = [
                shutil.which("py-spy") or "py-spy", "record", "--pid", str(service.process.pid),
                "--rate", "200", "--duration", str(max(1, round(seconds))), "--format", "raw",
                "--output", str(out / f"{name}.txt"),
            ]  # fmt: skip
            started.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        self.say(f"   profiling {', '.join(services)} with py-spy into {out}")
        return started

    def after_close(self, a: Service) -> dict[str, Any]:
        """Whether A lets go of every socket once the clients are gone."""
        deadline = time.monotonic() + 20
        left = readyz_sockets(a.port)
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = readyz_sockets(a.port)
        return {"sockets_left": left, "rss_mib": round(rss_kib(a.process.pid) / 1024, 1)}

    # -- everything --

    def run(self) -> dict[str, Any]:
        args = self.args
        facts = machine_facts()
        facts["rlimit_nofile"] = raise_nofile()
        facts["mem_total_gib"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        )
        phases: dict[str, Any] = {}
        with self.stack:
            try:
                self.bootstrap = bootstrap = self.start_broker()
                self.start_database()
                self.prepare_database(bootstrap)
                a = self.start_chat(bootstrap, "a")
                b = self.start_chat(bootstrap, "b")
                phases["sockets"] = self.sockets_phase(a)
                if args.close_idle:
                    phases["idle_during_latency"] = self.release_idle()
                    self.say("   closed the idle sockets before the latency phase (--close-idle)")
                phases["latency"] = uvloop.run(self.latency_phase(a, b))
                if not args.close_idle:
                    phases["idle_during_latency"] = self.release_idle()
                    idle = phases["idle_during_latency"]
                    self.say(
                        f"   idle sockets after the latency phase: {idle['still_open']:,} open, "
                        f"{idle['dropped_by_server']:,} dropped {idle['close_codes'] or ''}"
                    )
                phases["after_close"] = self.after_close(a)
                phases["server_logs"] = {s.name: log_problems(s.log_path) for s in self.services}
            except BaseException:
                for service in self.services:
                    self.say(f"{service.name} log ({service.log_path}):\n{tail(service.log_path)}")
                self.say(f"logs kept in {self.log_dir}")
                raise
        if not args.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.figures(phases, facts)

    def figures(self, p: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
        args = self.args
        s, lat = p["sockets"], p["latency"]
        fwd, rev = lat["forward"], lat.get("reverse", {})
        log_errors = sum(v["count"] for v in p["server_logs"].values())
        idle = p["idle_during_latency"]
        figures: dict[str, Any] = {
            "bench": "chat",
            "sockets_per_process": s["held_by_server"],
            "kib_per_socket": s["kib_per_socket"],
            "p50_msg_ms": fwd["p50_ms"],
            "p99_msg_ms": fwd["p99_ms"],
            "p95_msg_ms": fwd["p95_ms"],
            "max_msg_ms": fwd["max_ms"],
            "messages": fwd["messages"],
            "messages_lost": fwd["lost"],
            "msg_rate_per_s": args.rate,
            "p50_reply_ms": rev.get("p50_ms"),
            "p99_reply_ms": rev.get("p99_ms"),
            "replies_lost": rev.get("lost"),
            "p50_echo_ms": lat["echo"]["p50_ms"],
            "p99_echo_ms": lat["echo"]["p99_ms"],
            "kib_per_socket_marginal": s["kib_per_socket_marginal"],
            "sockets_requested": s["requested"],
            "sockets_failed": s["failed"],
            "connects_per_s": s["connects_per_s"],
            "server_cpu_us_per_connect": s["server_cpu_us_per_connect"],
            "idle_server_cpu_pct": s["idle_cpu_pct_of_core"].get("server"),
            "max_stall_ms_opening": s["ping_rtt"]["opening"]["max_ms"],
            "max_stall_ms_idle": s["ping_rtt"]["idle"]["max_ms"],
            "idle_sockets_open_during_latency": not args.close_idle,
            "idle_sockets_dropped": idle["dropped_by_server"],
            "sockets_left_after_close": p["after_close"]["sockets_left"],
            "server_log_errors": log_errors,
            "valid": fwd["lost"] == 0
            and (rev.get("lost") or 0) == 0
            and fwd["duplicates"] == 0
            and not fwd["errors"]
            and log_errors == 0,
        }
        figures["targets_met"] = {
            key: figures[key] is not None
            and (figures[key] >= bound if op == ">=" else figures[key] < bound)
            for key, (op, bound) in TARGETS.items()
        }
        figures["phases"] = p
        figures["config"] = {
            "sockets": args.sockets,
            "client_procs": args.client_procs,
            "connect_concurrency": args.connect_concurrency,
            "deflate": not args.no_deflate,
            "agents": args.agents,
            "visitors": args.visitors,
            "rate": args.rate,
            "seconds": args.seconds,
            "reverse_seconds": None if args.skip_reverse else args.reverse_seconds,
            "warmup_s": args.warmup,
            "broker": args.bootstrap or f"apache kafka {KAFKA_VERSION} (embedded, same machine)",
            "postgres": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
        }
        figures["machine"] = facts
        if args.keep_logs:
            figures["logs"] = str(self.log_dir)
        return figures


def print_summary(f: dict[str, Any]) -> None:
    s, lat = f["phases"]["sockets"], f["phases"]["latency"]
    print()
    print(
        f"idle visitor sockets held by one process: {f['sockets_per_process']:,} of "
        f"{f['sockets_requested']:,} ({f['sockets_failed']:,} failed), "
        f"{f['connects_per_s']:,} connects/s, {f['server_cpu_us_per_connect']} µs server CPU each"
    )
    print(
        f"memory: {s['rss_before_mib']} → {s['rss_after_mib']} MiB RSS = "
        f"{f['kib_per_socket']} KiB per socket (slope while opening: "
        f"{f['kib_per_socket_marginal']}; permessage-deflate {'on' if s['deflate'] else 'off'})"
    )
    rows = [("forward", "visitor (A) → agent (B)"), ("echo", "visitor (A) → own socket (A)")]
    rows.append(("reverse", "agent (B) → visitor (A)"))
    print(f"{'direction':<32}{'msgs':>7}{'lost':>6}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}  ms")
    for key, label in rows:
        if (r := lat.get(key)) is None:
            continue
        print(
            f"{label:<32}{r['messages']:>7,}{r['lost']:>6}{r['p50_ms'] or '-':>8}"
            f"{r['p95_ms'] or '-':>8}{r['p99_ms'] or '-':>8}{r['max_ms'] or '-':>8}"
        )
    print(
        f"at {f['msg_rate_per_s']:g} messages/s; idle sockets "
        + ("open" if f["idle_sockets_open_during_latency"] else "closed")
        + f" meanwhile ({f['idle_sockets_dropped']} dropped)"
    )
    for key, (op, bound) in TARGETS.items():
        verdict = "met" if f["targets_met"][key] else "MISSED"
        print(f"target {key} {op} {bound:,}: {f[key]} -> {verdict}")
    for name, problems in f["phases"]["server_logs"].items():
        for line in problems["first"]:
            print(f"   {name}: {line}")
    if not f["valid"]:
        print("INVALID RUN: messages lost or duplicated, error frames, or errors in a server log")
    print("Other work on this machine moves these figures: compare runs, not single numbers.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--sockets", type=int, default=10_000, help="idle visitor sockets to open to instance A")
    add("--client-procs", type=int, default=2, help="processes that open and hold them")
    add("--connect-concurrency", type=int, default=64, help="handshakes in flight per process")
    add("--no-deflate", action="store_true", help="do not offer permessage-deflate")
    add("--close-idle", action="store_true", help="close the idle sockets before measuring latency")
    add("--agents", type=int, default=10, help="agents online, consoles on instance B")
    add("--visitors", type=int, default=50, help="chatting visitors on instance A")
    add("--rate", type=float, default=200.0, help="messages per second (all visitors together)")
    add("--seconds", type=float, default=20.0, help="measured seconds, visitor → agent")
    add("--reverse-seconds", type=float, default=10.0, help="measured seconds, agent → visitor")
    add("--skip-reverse", action="store_true", help="no agent → visitor phase")
    add("--warmup", type=float, default=3.0, help="unmeasured seconds before each direction")
    add("--grace", type=float, default=10.0, help="seconds to wait for the last messages")
    add("--settle", type=float, default=2.0, help="seconds between the last connect and the RSS")
    add("--idle-seconds", type=float, default=10.0, help="CPU measured with the sockets idle")
    add("--open-timeout", type=float, default=600.0, help="give up opening sockets after this")
    add("--bootstrap", help="use this running broker (HOST:PORT) instead of starting Apache Kafka")
    add("--trace", action="store_true", help="also read chat.events to split the latency")
    add("--py-spy", metavar="DIR", help="profile both instances in both directions into DIR")
    add("--keep-logs", action="store_true", help="keep the servers' logs")
    add("--json-only", action="store_true", help="print only the RESULT line")
    args = parser.parse_args(argv)
    if args.sockets < 1 or args.client_procs < 1 or args.agents < 1 or args.visitors < 1:
        parser.error("--sockets, --client-procs, --agents and --visitors must be at least 1")
    if args.visitors > args.agents * MAX_CHATS:
        parser.error(f"--visitors needs at least --visitors / {MAX_CHATS} agents")
    return args


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: every server is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    figures = Bench(args).run()
    if not args.json_only:
        print_summary(figures)
    print("RESULT " + json.dumps(figures, separators=(",", ":")), flush=True)
    return 0 if figures["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
