"""The worker's HTTP edge: who may call it, and how much of a body it reads.

Every route but the probes and `/metrics` answers only to the internal bearer token that chat
holds (`TRIGGERS_API_TOKEN`). It is an allow-list on purpose: a route added later (or one of
Faust's own pages, should one come back) is closed until someone opens it here.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
READ_CHUNK = 65_536

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BodyTooLarge(ValueError):
    """The body is longer than the route accepts; nothing past the limit was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes")
        self.limit = limit


def require_token(token: str) -> Any:
    """aiohttp middleware: `Authorization: Bearer <token>` on every path but `OPEN_PATHS`."""
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):  # constant time: no guessing by timing
            return web.json_response(
                {
                    "error": "unauthorized",
                    "detail": "the triggers API needs its internal token "
                    "(Authorization: Bearer <TRIGGERS_API_TOKEN>)",
                },
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="triggers"'},
            )
        return await handler(request)

    return guard


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, or `BodyTooLarge` as soon as it is known to be longer than `limit`.

    A declared `Content-Length` over the limit is refused before any byte is read; a body
    without one (chunked) is read until one byte past the limit at most."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    while True:
        chunk = await request.content.read(min(READ_CHUNK, limit + 1 - len(body)))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)


def too_large(exc: BodyTooLarge) -> web.Response:
    """413, and the connection closes: the rest of the body is never read."""
    response = web.json_response(
        {"error": "too_large", "detail": f"{exc}; send a smaller rule set"}, status=413
    )
    response.force_close()
    return response
