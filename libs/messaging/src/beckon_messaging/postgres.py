"""The Postgres pool of a service that keeps its state there (chat, leads): made once Postgres
answers, and asked whether it still does (readiness).

A service starts next to its database (compose, the dev stack, a Deployment), so at start-up
Postgres may not accept connections yet: `connect_pool` waits for it, with backoff, up to a
deadline, and then fails with a message that says what it waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg

log = logging.getLogger("beckon.postgres")

CONNECT_TIMEOUT_S = 60.0  # how long start-up waits for Postgres to accept connections
FIRST_RETRY_S = 0.2
MAX_RETRY_S = 2.0
ANSWER_TIMEOUT_S = 2.0  # how long readiness waits for Postgres to answer

CreatePool = Callable[..., Awaitable[asyncpg.Pool]]
Sleep = Callable[[float], Awaitable[None]]


def retry_delays(first_s: float = FIRST_RETRY_S, most_s: float = MAX_RETRY_S) -> Iterator[float]:
    """The waits between attempts: doubling from `first_s`, never above `most_s`."""
    delay = first_s
    while True:
        yield delay
        delay = min(delay * 2, most_s)


async def keep_session(conn: asyncpg.Connection) -> None:
    """A pool's `reset` that does nothing: for a service that leaves no session state behind
    (its advisory locks are transaction-scoped, it sets nothing per session), asyncpg's
    default reset only costs a round trip per use."""


async def connect_pool(
    dsn: str,
    *,
    min_size: int,
    max_size: int,
    timeout_s: float = CONNECT_TIMEOUT_S,
    reset: Callable[[asyncpg.Connection], Awaitable[None]] | None = keep_session,
    create_pool: CreatePool = asyncpg.create_pool,
    sleep: Sleep = asyncio.sleep,
    **options: Any,
) -> asyncpg.Pool:
    """The pool, once Postgres answers (it may still be starting next to us).

    `options` go to `asyncpg.create_pool` as they are (`server_settings`, `init`,
    `command_timeout`...); `reset=None` keeps asyncpg's own reset. Raises RuntimeError when
    Postgres has not answered within `timeout_s`.
    """
    if reset is not None:
        options["reset"] = reset
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delays = retry_delays()
    while True:
        try:
            pool: asyncpg.Pool = await create_pool(
                dsn, min_size=min_size, max_size=max_size, **options
            )
            return pool
        except (OSError, asyncpg.PostgresError) as exc:
            if loop.time() >= deadline:
                raise RuntimeError(
                    f"Postgres is not reachable at the configured URL: {exc}"
                ) from exc
            log.info("waiting for Postgres", extra={"error": str(exc)})
            await sleep(next(delays))


async def database_answers(pool: asyncpg.Pool, wait_s: float = ANSWER_TIMEOUT_S) -> bool:
    """Whether Postgres answers a query within `wait_s` (for readiness: never raises)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(wait_s):
            return bool(await pool.fetchval("SELECT true"))
    return False
