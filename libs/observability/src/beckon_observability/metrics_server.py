"""Prometheus metrics on a port of their own, so the public app never serves them.

A deliberately small HTTP/1.1 responder on the service's event loop: `GET /metrics` answers
the exposition, anything else 404, one request per connection. The port is meant for the
internal network only (compose does not publish it; Kubernetes scrapes the pod). With
several worker processes on one port (`SO_REUSEPORT`) a scrape reaches one of them, as any
request to the app would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)
MAX_REQUEST_HEAD = 8192
READ_TIMEOUT_S = 5.0


class MetricsServer:
    """Serves `render()` at `GET /metrics` on host:port (port 0 picks a free one)."""

    def __init__(self, host: str, port: int, render: Callable[[], bytes]) -> None:
        self.host = host
        self.port = port
        self.render = render
        self._server: asyncio.Server | None = None

    async def start(self) -> MetricsServer:
        self._server = await asyncio.start_server(
            self._serve,
            self.host,
            self.port,
            reuse_port=hasattr(socket, "SO_REUSEPORT"),
            limit=MAX_REQUEST_HEAD,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics served", extra={"host": self.host, "port": self.port})
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            method, _, rest = head.partition(b" ")
            path = rest.partition(b" ")[0].partition(b"?")[0]
            if method in (b"GET", b"HEAD") and path == b"/metrics":
                body = self.render()
                status, media_type = b"200 OK", CONTENT_TYPE_LATEST.encode()
            else:
                body = b"not found: metrics are at GET /metrics\n"
                status, media_type = b"404 Not Found", b"text/plain; charset=utf-8"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + media_type
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + (b"" if method == b"HEAD" else body)
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that sends no complete request head gets nothing
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
