"""A CRM for the webhook tests: a real HTTP server on 127.0.0.1 that checks every request's
signature with the independent `standardwebhooks` package, and a clock the sender and the
receiver share, so hours of retries pass in a test without waiting.

    clock = TestClock()
    receiver = Receiver(clock, secrets=[secret])   # not listening yet: connections refused
    await receiver.start(); receiver.answer(503, retry_after="3600"); ...; await receiver.stop()

The receiver's own clock is the test's (`standardwebhooks` checks `webhook-timestamp` against
it), as a real receiver's clock runs with the sender's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import standardwebhooks
import standardwebhooks.webhooks
from aiohttp import web
from beckon_devstack.ports import free_port

HOST = "127.0.0.1"


class TestClock:
    """The real time moved on by `advance` (so the embedded Postgres' `now()` is never ahead)."""

    __test__ = False

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


@contextlib.contextmanager
def receivers_use(clock: TestClock) -> Iterator[None]:
    """`standardwebhooks` reads the time through its module's `datetime`: give it the clock."""

    class Shifted(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Shifted:  # type: ignore[override]
            moment = clock().astimezone(tz) if tz is not None else clock()
            return cls.fromtimestamp(moment.timestamp(), tz=moment.tzinfo)

    original = standardwebhooks.webhooks.datetime
    standardwebhooks.webhooks.datetime = Shifted  # type: ignore[misc]
    try:
        yield
    finally:
        standardwebhooks.webhooks.datetime = original  # type: ignore[misc]


@dataclass
class Received:
    """One request the receiver got, and whether its signature verified."""

    webhook_id: str
    timestamp: str
    signature: str
    host: str
    body: bytes
    verified: bool
    answered: int
    error: str | None = None


@dataclass
class Receiver:
    """The CRM: answers with `status` (and `Retry-After`), records every request."""

    clock: TestClock
    secrets: list[str]
    port: int = field(default_factory=free_port)
    status: int = 200
    retry_after: str | None = None
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hooks/beckon"

    def answer(self, status: int, *, retry_after: str | None = None) -> None:
        self.status, self.retry_after = status, retry_after

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/beckon", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, HOST, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        verified, error = False, None
        for secret in self.secrets:
            try:
                with receivers_use(self.clock):
                    standardwebhooks.Webhook(secret).verify(body, headers)
            except standardwebhooks.webhooks.WebhookVerificationError as exc:
                error = str(exc)
            else:
                verified, error = True, None
                break
        self.requests.append(
            Received(
                webhook_id=request.headers.get("webhook-id", ""),
                timestamp=request.headers.get("webhook-timestamp", ""),
                signature=request.headers.get("webhook-signature", ""),
                host=request.headers.get("host", ""),
                body=body,
                verified=verified,
                answered=self.status if verified else 401,
                error=error,
            )
        )
        if not verified:
            return web.Response(status=401, text=f"bad signature: {error}")
        headers_out = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.Response(status=self.status, headers=headers_out, text="thanks")

    def by_id(self) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for received in self.requests:
            found.setdefault(received.webhook_id, []).append(received)
        return found
