"""A receiver closes an idle kept-alive connection just as the sender's next request goes out
on it (its idle timeout, often 5 s, runs out at that moment): the request meets a closed
connection and no answer. The chaos battery lost a webhook to it for five minutes: attempt 1
answered 500, attempt 2 went out 5 s later on that connection and met ReadError, attempt 3 was
scheduled 5 min on. The sender now sends such a request once more on a fresh connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from leads.domain.webhooks import WebhookSecret
from leads.webhooks.sender import Sender

pytestmark = pytest.mark.integration
SECRET = WebhookSecret(bytes(range(32)))


@dataclass
class ClosingReceiver:
    """A real HTTP/1.1 server on a socket: answers 204 and keeps the connection alive, but a
    connection's second request is met by the connection closing, unanswered."""

    server: asyncio.Server | None = None
    requests: list[tuple[int, str]] = field(default_factory=list)  # (connection, webhook-id)
    connections: int = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                fields = dict(
                    line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
                )
                headers = {name.lower(): value for name, value in fields.items()}
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((connection, headers.get("webhook-id", "")))
                served += 1
                if served == 2:  # the idle timeout ran out as this one arrived
                    return
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[ClosingReceiver]:
    found = ClosingReceiver()
    await found.start()
    try:
        yield found
    finally:
        await found.stop()


async def test_a_request_on_a_connection_closing_under_it_goes_again_on_a_fresh_one(
    leads_pool, receiver: ClosingReceiver
) -> None:
    sender = Sender(leads_pool, instance="t", timeout_s=10, allow_http=True, allow_private=True)
    try:
        first = await sender.send(
            url=receiver.url, msg_id="msg_1", body=b"{}", secrets=[SECRET], sent_at=_now()
        )
        second = await sender.send(
            url=receiver.url, msg_id="msg_2", body=b"{}", secrets=[SECRET], sent_at=_now()
        )
    finally:
        await sender.stop()
    assert (first.status, first.error) == (204, None)
    assert (second.status, second.error) == (204, None), second
    # msg_2 met the closing connection, then went again on a new one, under its own id
    assert receiver.requests == [(1, "msg_1"), (1, "msg_2"), (2, "msg_2")]


def _now() -> datetime:
    return datetime.now(UTC)
