"""A userspace TCP proxy the chaos battery controls: the network between a service and Kafka or
Postgres, with faults on demand (there is no `tc` here, and no root to run it).

    proxy = TcpProxy([("127.0.0.1", 9092)]).start()    # listens on proxy.port
    proxy.cut()            # live connections reset, new ones refused
    proxy.cut("blackhole") # live connections reset, new ones accepted and never answered
    proxy.slow(200)        # every chunk, both ways, arrives 200 ms later (order kept)
    proxy.heal()           # back to a plain pipe
    proxy.stop()

It runs its own event loop in its own thread: the controller's loop may stall (a test waiting
on a broker, a bench's load generator) without stalling the traffic that goes through here.
An upstream is `(host, port)` or a unix socket path (the embedded Postgres listens on one).
With several upstreams it spreads new connections over them in turn and skips one that
refuses: a load balancer in front of a service's instances.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Upstream = tuple[str, int] | str
CutMode = Literal["refuse", "blackhole"]
CHUNK = 65_536
T = TypeVar("T")


@dataclass
class ProxyStats:
    """What went through, for the reports and for tests that prove traffic used the proxy."""

    accepted: int = 0
    refused_upstream: int = 0
    blackholed: int = 0
    reset: int = 0
    bytes_up: int = 0
    bytes_down: int = 0


class _Pipe:
    """One client connection and its upstream connection."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.tasks: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class TcpProxy:
    def __init__(
        self,
        upstreams: Sequence[Upstream],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        name: str = "proxy",
    ) -> None:
        if not upstreams:
            raise ValueError("a proxy needs at least one upstream")
        self.upstreams = list(upstreams)
        self.host = host
        self.port = port
        self.name = name
        self.stats = ProxyStats()
        self.mode: Literal["open", "refuse", "blackhole"] = "open"
        self.delay_s = 0.0
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._pipes: set[_Pipe] = set()
        self._held: set[asyncio.StreamWriter] = set()

    # ---- control (any thread) --------------------------------------------------------------

    def start(self) -> TcpProxy:
        if self.port == 0:
            # bound once here and never given up, so the port stays ours across cut/heal
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                self.port = probe.getsockname()[1]
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"chaos-{self.name}", daemon=True)
        self._thread.start()
        ready.wait()
        self._call(self._listen())
        return self

    def cut(self, mode: CutMode = "refuse") -> None:
        """Reset every live connection; new ones are refused (the port closed) or, with
        "blackhole", accepted and then never answered, as when packets are dropped."""
        self._call(self._cut(mode))

    def heal(self) -> None:
        """A plain pipe again: listening, no added delay; blackholed connections are reset."""
        self._call(self._heal())

    def slow(self, delay_ms: float) -> None:
        """Add `delay_ms` to every chunk in both directions (0 removes it)."""
        self.delay_s = max(0.0, delay_ms / 1000)

    def stop(self) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def live_connections(self) -> int:
        return len(self._pipes)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "start() the proxy first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # ---- the proxy's own loop --------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is not None:
            return
        deadline = time.monotonic() + 10
        while True:
            try:
                self._server = await asyncio.start_server(
                    self._accept, self.host, self.port, reuse_address=True
                )
                return
            except OSError:  # the port in TIME_WAIT use by a connection just reset: briefly
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _cut(self, mode: CutMode) -> None:
        self.mode = mode
        if mode == "refuse" and self._server is not None:
            self._server.close()
            self._server = None
        for pipe in list(self._pipes):
            pipe.abort()
            self.stats.reset += 1
        self._pipes.clear()

    async def _heal(self) -> None:
        self.mode = "open"
        self.delay_s = 0.0
        for writer in list(self._held):
            writer.transport.abort()
        self._held.clear()
        await self._listen()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for pipe in list(self._pipes):
            pipe.abort()
        for writer in list(self._held):
            writer.transport.abort()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        last: OSError | None = None
        for _ in range(len(self.upstreams)):
            upstream = self.upstreams[self._next % len(self.upstreams)]
            self._next += 1
            try:
                if isinstance(upstream, str):
                    return await asyncio.open_unix_connection(upstream, limit=CHUNK)
                return await asyncio.open_connection(*upstream, limit=CHUNK)
            except OSError as exc:
                last = exc
        assert last is not None
        raise last

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":  # accepted between the cut and the listener's close
            writer.transport.abort()
            return
        if self.mode == "blackhole":
            self.stats.blackholed += 1
            self._held.add(writer)
            return
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            self.stats.refused_upstream += 1
            writer.transport.abort()
            return
        if self.mode != "open":  # cut while connecting upstream
            up_writer.transport.abort()
            writer.transport.abort()
            return
        self.stats.accepted += 1
        pipe = _Pipe(writer, up_writer)
        self._pipes.add(pipe)
        pipe.tasks = [
            asyncio.create_task(self._pump(reader, up_writer, up=True)),
            asyncio.create_task(self._pump(up_reader, writer, up=False)),
        ]
        try:
            await asyncio.gather(*pipe.tasks, return_exceptions=True)
        finally:
            self._pipes.discard(pipe)
            for end in (writer, up_writer):
                end.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        """Copy one direction. Chunks go through a queue with their due time, so a delay adds
        latency without cutting the throughput to one chunk per delay."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.create_task(send())
        try:
            while True:
                chunk = await reader.read(CHUNK)
                if up:
                    self.stats.bytes_up += len(chunk)
                else:
                    self.stats.bytes_down += len(chunk)
                queue.put_nowait((time.monotonic() + self.delay_s, chunk))
                if not chunk or sender.done():
                    break
            await sender
        except (ConnectionError, OSError):
            writer.transport.abort()
        finally:
            sender.cancel()
