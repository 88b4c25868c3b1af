"""Test support for the body limits: a streamed request body that counts what was pulled.

Used by the tests of libs/edge and of every service that mounts `BodyLimit`, so each can show
that a refused body was not read past the limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator


class PulledBody:
    """`total` bytes streamed in `chunk`-sized pieces; `bytes` is how much the reader pulled."""

    def __init__(self, total: int, *, chunk: int, fill: bytes = b" ") -> None:
        self.total = total
        self.chunk = chunk
        self.fill = fill
        self.bytes = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.bytes < self.total:
            self.bytes += self.chunk
            yield self.fill * self.chunk
