"""A service's Postgres pool: made once Postgres answers (with backoff, up to a deadline), and
readiness asking whether it still answers. No database here: asyncpg's pool maker and the
pool are stand-ins."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import asyncpg
import pytest
from beckon_messaging.postgres import (
    connect_pool,
    database_answers,
    keep_session,
    retry_delays,
)


class _Maker:
    """asyncpg.create_pool that fails `failures` times (Postgres still starting), then makes
    a pool; it records every call."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.pool = object()

    async def __call__(self, dsn: str, **kwargs: Any) -> Any:
        self.calls.append((dsn, kwargs))
        if self.failures:
            raise self.failures.pop(0)
        return self.pool


class _Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_retries_wait_twice_as_long_each_time_up_to_a_ceiling():
    assert list(itertools.islice(retry_delays(), 7)) == [0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert list(itertools.islice(retry_delays(1.0, 3.0), 4)) == [1.0, 2.0, 3.0, 3.0]


async def test_the_pool_is_made_with_the_services_sizes_and_options_and_a_free_reset():
    maker = _Maker([])
    init = object()
    pool = await connect_pool(
        "postgresql://db/leads",
        min_size=2,
        max_size=9,
        create_pool=maker,
        server_settings={"application_name": "leads"},
        init=init,
    )
    assert pool is maker.pool
    assert maker.calls == [
        (
            "postgresql://db/leads",
            {
                "min_size": 2,
                "max_size": 9,
                "server_settings": {"application_name": "leads"},
                "init": init,
                "reset": keep_session,
            },
        )
    ]
    assert await keep_session(object()) is None  # type: ignore[arg-type]


async def test_reset_none_keeps_asyncpgs_own():
    maker = _Maker([])
    await connect_pool(
        "postgresql://db/chat", min_size=1, max_size=2, reset=None, create_pool=maker
    )
    assert "reset" not in maker.calls[0][1]


async def test_a_database_still_starting_is_waited_for_with_backoff(
    caplog: pytest.LogCaptureFixture,
):
    refused = ConnectionRefusedError("connection refused")
    starting = asyncpg.CannotConnectNowError("the database system is starting up")
    maker, sleeps = _Maker([refused, starting, refused]), _Sleeps()
    with caplog.at_level(logging.INFO, logger="beckon.postgres"):
        pool = await connect_pool(
            "postgresql://db/chat", min_size=1, max_size=2, create_pool=maker, sleep=sleeps
        )
    assert pool is maker.pool
    assert len(maker.calls) == 4
    assert sleeps.waits == [0.2, 0.4, 0.8]
    waiting = [r for r in caplog.records if r.getMessage() == "waiting for Postgres"]
    assert [r.__dict__["error"] for r in waiting] == [
        "connection refused",
        "the database system is starting up",
        "connection refused",
    ]


async def test_past_the_deadline_it_fails_saying_what_it_waited_for():
    maker, sleeps = _Maker([ConnectionRefusedError("connection refused")] * 3), _Sleeps()
    with pytest.raises(RuntimeError, match="Postgres is not reachable") as caught:
        await connect_pool(
            "postgresql://db/chat",
            min_size=1,
            max_size=2,
            timeout_s=0,
            create_pool=maker,
            sleep=sleeps,
        )
    assert "connection refused" in str(caught.value)
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
    assert (len(maker.calls), sleeps.waits) == (1, [])


async def test_an_error_that_waiting_does_not_mend_is_raised_at_once():
    maker = _Maker([ValueError("invalid DSN: scheme is expected to be postgresql")])
    with pytest.raises(ValueError, match="invalid DSN"):
        await connect_pool("postgresql://db/chat", min_size=1, max_size=2, create_pool=maker)
    assert len(maker.calls) == 1


class _Pool:
    def __init__(self, answer: Any = True, error: Exception | None = None) -> None:
        self.answer, self.error = answer, error
        self.queries: list[str] = []

    async def fetchval(self, query: str) -> Any:
        self.queries.append(query)
        if self.error is not None:
            raise self.error
        if self.answer is None:
            await asyncio.Event().wait()  # Postgres that never answers
        return self.answer


async def test_readiness_asks_postgres_a_question():
    pool = _Pool()
    assert await database_answers(pool)  # type: ignore[arg-type]
    assert pool.queries == ["SELECT true"]


async def test_readiness_says_no_when_postgres_fails_or_does_not_answer_in_time():
    failing = _Pool(error=asyncpg.ConnectionDoesNotExistError("connection was closed"))
    assert not await database_answers(failing)  # type: ignore[arg-type]
    assert not await database_answers(_Pool(error=OSError("no route")))  # type: ignore[arg-type]
    assert not await database_answers(_Pool(answer=None), wait_s=0)  # type: ignore[arg-type]
