"""Shared pieces of Beckon's benchmark scripts.

A lean HTTP/1.1 keep-alive load generator that runs in worker processes (closed loop at a
fixed concurrency, or open loop at a fixed rate), process and CPU helpers, percentiles and
the machine facts every RESULT line carries. Standard library plus uvloop only, so a bench
measures the server and not its client.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import multiprocessing as mp
import os
import platform
import queue
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import uvloop
from beckon_devstack.processes import stop_process

REPO_ROOT = Path(__file__).resolve().parents[1]
BARRIER_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 30.0
# Put this in a pre-built request where the send time belongs (e.g. a body's `sent_at`): the
# client swaps in the current UTC time, ISO 8601 with milliseconds (both are 24 bytes).
SEND_TIME = b"@@@@@@SEND-TIME@@@@@@@@@"
RequestFactory = Callable[..., list[bytes]]


def utc_now_iso() -> bytes:
    now = time.time()
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{seconds}.{int(now * 1000) % 1000:03d}Z".encode()


# ---- the HTTP/1.1 client ----------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One keep-alive connection, one request in flight; answers need a Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None
        self._status = 0
        self._message_end = -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def request(self, raw: bytes) -> asyncio.Future[int]:
        """Send a complete request; the future resolves to the response's status code."""
        assert self.transport is not None
        assert self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._message_end < 0:
            head_end = self._buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self._buffer[:head_end]).lower()
            self._status = int(head[9:12])
            start = head.find(b"\r\ncontent-length:")
            if start < 0:
                self._fail(ConnectionError("response without Content-Length"))
                return
            end = head.find(b"\r\n", start + 2)
            length = int(head[start + 17 : end if end > 0 else len(head)])
            self._message_end = head_end + 4 + length
        if len(self._buffer) >= self._message_end:
            del self._buffer[: self._message_end]
            self._message_end = -1
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(self._status)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionError("connection closed by the server"))

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        if self.transport is not None:
            self.transport.close()


async def open_connection(host: str, port: int) -> HttpConnection:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(HttpConnection, host, port)
    return protocol


def http_request(
    method: str, target: str, host: str, port: int, body: bytes, headers: dict[str, str]
) -> bytes:
    """A complete HTTP/1.1 request, ready to write."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# ---- load phases ------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    """One phase for one worker; `rate` None means closed loop over `connections`."""

    host: str
    port: int
    factory: RequestFactory
    factory_args: tuple[Any, ...]
    connections: int
    seconds: float
    warmup_s: float
    rate: float | None = None


@dataclass
class LoadResult:
    """What one or more workers saw inside the measured window (after the warm-up)."""

    window_s: float
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)  # 200 answers only
    sent: int = 0
    bodies: int = 0
    body_bytes: int = 0
    reused_bodies: int = 0
    failure: str | None = None

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def non_ok(self) -> dict[int, int]:
        return {status: n for status, n in sorted(self.statuses.items()) if status != 200}

    def merge(self, other: LoadResult) -> None:
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)
        self.latencies_s.extend(other.latencies_s)
        self.sent += other.sent
        self.bodies += other.bodies
        self.body_bytes += other.body_bytes
        self.reused_bodies += other.reused_bodies
        self.failure = self.failure or other.failure


class _Window:
    def __init__(self, spec: LoadSpec, requests: Sequence[bytes]) -> None:
        self.requests = requests
        self.stamped = bool(requests) and SEND_TIME in requests[0]
        self.started = time.perf_counter()
        self.opens = self.started + spec.warmup_s
        self.closes = self.opens + spec.seconds
        self.result = LoadResult(window_s=spec.seconds, bodies=len(requests))
        self.result.body_bytes = sum(len(r) for r in requests)
        self.sent = 0

    def next_request(self) -> bytes:
        index = self.sent
        self.sent += 1
        if index >= len(self.requests):
            self.result.reused_bodies += 1
        raw = self.requests[index % len(self.requests)]
        return raw.replace(SEND_TIME, utc_now_iso(), 1) if self.stamped else raw

    def record(self, started: float, finished: float, status: int) -> None:
        if self.opens <= finished < self.closes:
            self.result.statuses[status] += 1
            if status == 200:
                self.result.latencies_s.append(finished - started)

    def error(self, finished: float, exc: BaseException) -> None:
        if self.opens <= finished < self.closes:
            self.result.errors[type(exc).__name__] += 1


async def _reconnect(spec: LoadSpec, broken: HttpConnection, until: float) -> HttpConnection | None:
    if broken.transport is not None:
        broken.transport.close()
    while time.perf_counter() < until:
        try:
            return await open_connection(spec.host, spec.port)
        except OSError:
            await asyncio.sleep(0.1)
    return None


async def _closed_loop(spec: LoadSpec, connections: list[HttpConnection], w: _Window) -> None:
    async def drive(connection: HttpConnection) -> None:
        while (started := time.perf_counter()) < w.closes:
            try:
                status = await asyncio.wait_for(
                    connection.request(w.next_request()), REQUEST_TIMEOUT_S
                )
            except (OSError, TimeoutError, ValueError) as exc:
                w.error(time.perf_counter(), exc)
                replacement = await _reconnect(spec, connection, w.closes)
                if replacement is None:
                    return
                connection = replacement
                continue
            w.record(started, time.perf_counter(), status)

    await asyncio.gather(*(drive(c) for c in connections))


async def _open_loop(spec: LoadSpec, connections: list[HttpConnection], w: _Window) -> None:
    """Requests start on a fixed schedule; latency counts from the scheduled instant."""
    assert spec.rate
    interval = 1.0 / spec.rate
    idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)

    async def one(scheduled: float, raw: bytes) -> None:
        connection = await idle.get()
        try:
            status = await asyncio.wait_for(connection.request(raw), REQUEST_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            w.error(time.perf_counter(), exc)
            replacement = await _reconnect(spec, connection, w.closes)
            if replacement is None:
                return  # the server is gone: this connection leaves the pool
            connection = replacement
        else:
            w.record(scheduled, time.perf_counter(), status)
        idle.put_nowait(connection)

    tasks: set[asyncio.Task[None]] = set()
    index = 0
    while (due := w.started + index * interval) < w.closes:
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
            continue
        task = asyncio.create_task(one(due, w.next_request()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        index += 1
    if tasks:
        await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S)


async def _run_phase(spec: LoadSpec, barrier: Barrier) -> LoadResult:
    requests = spec.factory(*spec.factory_args)
    connections = [await open_connection(spec.host, spec.port) for _ in range(spec.connections)]
    barrier.wait(BARRIER_TIMEOUT_S)  # every worker is ready: the clocks start together
    window = _Window(spec, requests)
    if spec.rate is None:
        await _closed_loop(spec, connections, window)
    else:
        await _open_loop(spec, connections, window)
    for connection in connections:
        if connection.transport is not None:
            connection.transport.close()
    window.result.sent = window.sent
    return window.result


def _worker_main(
    commands: mp.Queue[LoadSpec | None], results: mp.Queue[LoadResult], barrier: Barrier
) -> None:
    while (spec := commands.get()) is not None:
        try:
            result = uvloop.run(_run_phase(spec, barrier))
        except Exception as exc:
            barrier.abort()
            result = LoadResult(window_s=spec.seconds, failure=f"{type(exc).__name__}: {exc}")
        results.put(result)


class LoadGenerator:
    """Worker processes that stay up across phases; each phase starts on a shared barrier."""

    def __init__(self, workers: int) -> None:
        ctx = mp.get_context("spawn")
        self.workers = workers
        self._barrier = ctx.Barrier(workers + 1)
        self._results: mp.Queue[LoadResult] = ctx.Queue()
        self._commands: list[mp.Queue[LoadSpec | None]] = [ctx.Queue() for _ in range(workers)]
        self._processes = [
            ctx.Process(
                target=_worker_main,
                args=(commands, self._results, self._barrier),
                name=f"loadgen-{n}",
                daemon=True,
            )
            for n, commands in enumerate(self._commands)
        ]
        for process in self._processes:
            process.start()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def run(
        self, specs: Sequence[LoadSpec], during: Callable[[], None] | None = None
    ) -> LoadResult:
        """Run one spec per worker; `during` is called when the clocks start."""
        assert len(specs) == self.workers
        self._barrier.reset()
        for commands, spec in zip(self._commands, specs, strict=True):
            commands.put(spec)
        with contextlib.suppress(Exception):  # a broken barrier shows up as a failure below
            self._barrier.wait(BARRIER_TIMEOUT_S)
        if during is not None:
            during()
        merged = LoadResult(window_s=specs[0].seconds)
        timeout = BARRIER_TIMEOUT_S + specs[0].seconds + specs[0].warmup_s + REQUEST_TIMEOUT_S
        for _ in specs:
            try:
                merged.merge(self._results.get(timeout=timeout))
            except queue.Empty:
                merged.failure = "a load worker did not report back"
        if merged.failure:
            raise RuntimeError(f"load generator failed: {merged.failure}")
        return merged

    def close(self) -> None:
        for commands in self._commands:
            commands.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


# ---- statistics -------------------------------------------------------------------------


def percentile_ms(samples_s: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile in milliseconds; None without samples."""
    if not samples_s:
        return None
    ordered = sorted(samples_s)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[rank] * 1000, 2)


def machine_facts() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# ---- processes --------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """pid and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of these processes and their descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for root in pids:
        for pid in _tree(root):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
    return total / ticks


class CpuMeter:
    """CPU use of named process groups over an interval, in % of one core."""

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self.groups = {name: pids for name, pids in groups.items() if pids}
        self._start: dict[str, float] = {}
        self._started_at = 0.0

    def start(self) -> None:
        self._started_at = time.perf_counter()
        self._start = {name: cpu_seconds(pids) for name, pids in self.groups.items()}

    def stop(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self._started_at
        return {
            name: round(100 * (cpu_seconds(pids) - self._start[name]) / elapsed, 1)
            for name, pids in self.groups.items()
        }


def machine_busy_s() -> float:
    """CPU seconds every process on the machine used so far (all cores, from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class MachineMeter(CpuMeter):
    """CpuMeter plus what the whole machine used (`machine`) and everything outside the groups
    (`others`): other work on a shared machine shows up there."""

    def start(self) -> None:
        self._machine = machine_busy_s()
        super().start()

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, float]:
        elapsed = time.perf_counter() - self._started_at
        out = {**super().stop(), **(extra or {})}
        machine = round(100 * (machine_busy_s() - self._machine) / elapsed, 1)
        out["others"] = round(max(0.0, machine - sum(out.values())), 1)
        out["machine"] = machine
        return out


def parent_pid(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


_PROBLEM = re.compile(r"\b(ERROR|CRITICAL|Traceback)\b")


def log_problems(path: Path) -> dict[str, Any]:
    """Lines of a server log that say ERROR, CRITICAL or Traceback: how many, the first five."""
    lines: list[str] = []
    with contextlib.suppress(OSError):
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if _PROBLEM.search(ln)]
    return {"count": len(lines), "first": [line[:300] for line in lines[:5]]}


@dataclass
class Service:
    """A server process this bench started; stopped (only it) on exit."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    def stop(self) -> None:
        stop_process(self.process, timeout_s=15)


def start_service(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO_ROOT
) -> Service:
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return Service(name, process, log_path)


def wait_http_ok(service: Service | None, url: str, timeout_s: float = 60.0) -> None:
    """Poll `url` until it answers 200; fail early if the process died."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if service is not None and service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with {service.process.returncode}; "
                f"see {service.log_path}:\n{tail(service.log_path)}"
            )
        connection = http.client.HTTPConnection(host, int(port or 80), timeout=2)
        try:
            connection.request("GET", "/" + path)
            status = connection.getresponse().status
            if status == 200:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = repr(exc)
        finally:
            connection.close()
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout_s}s (last: {last})")


def tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def python_env(**extra: str) -> dict[str, str]:
    """The current environment plus `extra`, with the repo root importable (for `bench.*`)."""
    env = {**os.environ, **extra}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


# ---- a bare ASGI endpoint: the HTTP ceiling ---------------------------------------------

_BARE_BODY = b'{"accepted":1}'
_BARE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_BARE_BODY)).encode()),
]


async def bare_asgi_app(
    scope: dict[str, Any],
    receive: Callable[[], Any],
    send: Callable[[dict[str, Any]], Any],
) -> None:
    """Reads the whole body and answers 200: what any Python ASGI endpoint costs at least."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _BARE_HEADERS})
    await send({"type": "http.response.body", "body": _BARE_BODY})
