"""Request bodies with a hard size limit, enforced before and while they are read.

Two layers, both used by every public HTTP service:

- `BodyLimit`, an ASGI middleware: a body that declares a `Content-Length` over the service's
  largest limit is answered 413 before the app sees it (nothing is read); a body without one
  is counted as it streams in, and the request is answered 413 the moment it passes the limit.
- `read_limited`, for a route with a tighter limit of its own: it reads chunk by chunk and
  stops at that limit, so an unauthenticated route never holds more than it allows.

Pure ASGI (no framework import), so any Starlette/FastAPI app can mount it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    """The body is (or declares to be) larger than `limit` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes; send a smaller one")
        self.limit = limit


class BadContentLength(ValueError):
    """The Content-Length header is not a plain number."""


def declared_length(value: str | None) -> int | None:
    """The body size a request declares, or None; BadContentLength for anything but digits."""
    if value is None:
        return None
    value = value.strip()
    if not value.isascii() or not value.isdigit():
        raise BadContentLength(f"Content-Length {value[:40]!r} is not a number")
    return int(value)


async def read_limited(chunks: AsyncIterable[bytes], limit: int, declared: str | None) -> bytes:
    """The whole body, refused (BodyTooLarge) before reading when its declared length is over
    `limit` and as soon as more than `limit` bytes have arrived otherwise."""
    length = declared_length(declared)
    if length is not None and length > limit:
        raise BodyTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return b"".join(parts)


def _problem(
    status: int, code: str, text: str, message_field: str, extra: Mapping[str, Any]
) -> list[Message]:
    body = json.dumps({"error": code, message_field: text, **extra}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # the rest of the body is never read: the connection cannot carry another request
        (b"connection", b"close"),
    ]
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


class BodyLimit:
    """ASGI middleware: no request body larger than `limit` bytes is ever buffered.

    `message_field` names the sentence in the 413 body and `extra` adds fields, so it matches
    the service's own problem shape (`{"error": "too_large", "<message_field>": "..."}`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        message_field: str = "message",
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.limit = limit
        self.message_field = message_field
        self.extra = dict(extra or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        try:
            length = declared_length(declared)
        except BadContentLength as exc:
            await self._answer(send, 400, "bad_request", str(exc))
            return
        if length is not None and length > self.limit:
            await self._answer(send, 413, "too_large", str(BodyTooLarge(self.limit)))
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    if not started:
                        refused = True
                        await self._answer(send, 413, "too_large", str(BodyTooLarge(self.limit)))
                    raise BodyTooLarge(self.limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been sent; whatever the app says after it is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # the app failed because its body was cut off: the client already has its 413

    async def _answer(self, send: Send, status: int, code: str, text: str) -> None:
        for message in _problem(status, code, text, self.message_field, self.extra):
            await send(message)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
