"""A triggers worker that accepts and never answers must not stall the rest of chat.

Backtests wait for the worker in threads; in asyncio's default executor (as many threads as
the machine has cores plus four) a handful of hanging calls would hold every thread, and what
else runs there (host name lookups of new Postgres and Kafka connections) would wait behind
them. They run in threads of their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterator

import pytest
from chat.admin import triggers
from chat.config import Settings
from chat.errors import Unavailable

DEFAULT_EXECUTOR_THREADS = min(32, (os.cpu_count() or 1) + 4)


@contextlib.contextmanager
def silent_worker() -> Iterator[str]:
    """A TCP listener that takes connections into its backlog and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        host, port = listener.getsockname()
        yield f"http://{host}:{port}"


async def test_hanging_backtests_leave_the_default_executor_free(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(triggers, "BACKTEST_TIMEOUT_S", 60.0)
    with silent_worker() as url:
        settings = Settings(triggers_url=url, triggers_token="t" * 32)
        hanging = [
            asyncio.create_task(triggers.backtest(settings, {"site_id": "s"}))
            for _ in range(DEFAULT_EXECUTOR_THREADS + 2)
        ]
        await asyncio.sleep(0)  # every call has handed its wait to a thread
        # the default executor still runs other work now, not after the backtests' timeout
        free = await asyncio.wait_for(asyncio.to_thread(lambda: "free"), timeout=30)
    # the listener closed: its waiting connections are reset, and every backtest fails now
    results = await asyncio.gather(*hanging, return_exceptions=True)
    assert free == "free"
    assert all(isinstance(result, Unavailable) for result in results), results
