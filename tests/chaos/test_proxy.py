"""The battery's TCP proxy against a real echo server on loopback: a pipe when healed; a cut
resets live connections and refuses (or blackholes) new ones; slow delays every chunk; several
upstreams are taken in turn and one that refuses is skipped."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from beckon_devstack.chaos.proxy import TcpProxy


class Echo:
    """An upstream that answers every chunk with itself and counts the connections it got."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        writer.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[Echo]:
    echo = Echo()
    echo.server = await asyncio.start_server(echo.handle, "127.0.0.1", 0)
    try:
        yield echo
    finally:
        echo.server.close()


async def round_trip(port: int, data: bytes = b"ping") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), 10)
    finally:
        writer.close()


async def test_pipe_cut_refuse_and_heal() -> None:
    async with echo_server() as echo:
        proxy = TcpProxy([("127.0.0.1", echo.port)]).start()
        try:
            assert await round_trip(proxy.port) == b"ping"
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"a")
            assert await reader.readexactly(1) == b"a"

            # the first connection's pipe is torn down asynchronously (EOF each way): wait
            # for it, so the cut below finds exactly the one live connection
            deadline = time.monotonic() + 30
            while proxy.live_connections() != 1:
                assert time.monotonic() < deadline, "the first connection never closed"
                await asyncio.sleep(0.01)
            await asyncio.to_thread(proxy.cut)
            # the live connection is reset: its reader ends (EOF or a reset), never hangs
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(1), 10) == b""
            writer.close()
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", proxy.port)

            await asyncio.to_thread(proxy.heal)
            assert await round_trip(proxy.port, b"again") == b"again"
            assert proxy.stats.reset == 1
        finally:
            proxy.stop()


async def test_blackhole_accepts_and_never_forwards() -> None:
    async with echo_server() as echo:
        proxy = TcpProxy([("127.0.0.1", echo.port)]).start()
        try:
            assert await round_trip(proxy.port) == b"ping"
            seen = echo.connections
            await asyncio.to_thread(proxy.cut, "blackhole")
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(b"lost")
            await writer.drain()
            deadline = time.monotonic() + 30
            while proxy.stats.blackholed == 0:
                assert time.monotonic() < deadline, "the proxy never saw the connection"
                await asyncio.sleep(0.01)
            # held, not forwarded: the upstream never got a connection for it
            assert echo.connections == seen
            await asyncio.to_thread(proxy.heal)  # held connections are reset
            with contextlib.suppress(ConnectionError):
                assert await asyncio.wait_for(reader.read(4), 10) == b""
            writer.close()
            assert await round_trip(proxy.port) == b"ping"
            assert echo.connections == seen + 1
        finally:
            proxy.stop()


async def test_slow_delays_each_direction() -> None:
    async with echo_server() as echo:
        proxy = TcpProxy([("127.0.0.1", echo.port)]).start()
        try:
            proxy.slow(150)
            started = time.monotonic()
            assert await round_trip(proxy.port) == b"ping"
            # a lower bound the proxy guarantees: 150 ms up and 150 ms back
            assert time.monotonic() - started >= 0.3
            proxy.heal()
            assert proxy.delay_s == 0
        finally:
            proxy.stop()


async def test_balances_and_skips_a_refusing_upstream() -> None:
    async with echo_server() as first, echo_server() as second:
        closed = TcpProxy([("127.0.0.1", first.port)])  # only to find a port nobody serves
        closed.start()
        dead_port = closed.port
        closed.stop()
        proxy = TcpProxy(
            [("127.0.0.1", first.port), ("127.0.0.1", dead_port), ("127.0.0.1", second.port)]
        ).start()
        try:
            for _ in range(4):
                assert await round_trip(proxy.port) == b"ping"
            assert first.connections >= 1
            assert second.connections >= 1
            assert first.connections + second.connections == 4
        finally:
            proxy.stop()
