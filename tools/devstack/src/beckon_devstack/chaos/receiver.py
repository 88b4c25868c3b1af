"""A CRM's webhook endpoint: a real HTTP server on this machine that verifies each Standard
Webhooks signature (with the `standardwebhooks` package, not leads' own code) and writes what
it verified into the ledger.

`fail_ratio` answers that share of first attempts with a 500, so the battery sees leads'
retries carry the same `webhook-id` and body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time

import uvicorn
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from beckon_devstack.chaos.ledger import Ledger, WebhookReceipt
from beckon_devstack.ports import free_port


class WebhookReceiver:
    def __init__(
        self, ledger: Ledger, *, host: str = "127.0.0.1", fail_ratio: float = 0.0, seed: int = 0
    ) -> None:
        self.ledger = ledger
        self.host = host
        self.port = free_port(host)
        self.fail_ratio = fail_ratio
        self._random = random.Random(seed)
        self._failed_once: set[str] = set()
        self._verifier: Webhook | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks/crm"

    def use_secret(self, secret: str) -> None:
        """The endpoint's `whsec_` secret, known once leads registered it."""
        self._verifier = Webhook(secret)

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        if self._verifier is None:
            return Response(status_code=503)
        try:
            self._verifier.verify(body, headers)
        except WebhookVerificationError:
            self.ledger.webhook_invalid += 1
            return Response(status_code=401)
        webhook_id = headers.get("webhook-id", "")
        if (
            self.fail_ratio
            and webhook_id not in self._failed_once
            and self._random.random() < self.fail_ratio
        ):
            self._failed_once.add(webhook_id)
            return Response(status_code=500)
        event = json.loads(body)
        self.ledger.webhooks.append(
            WebhookReceipt(
                webhook_id=webhook_id,
                event_id=str(event.get("event_id", "")),
                event_type=str(event.get("type", "")),
                body=body,
                received_at=time.time(),
            )
        )
        return Response(status_code=204)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hooks/crm", self._receive, methods=["POST"])])
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
