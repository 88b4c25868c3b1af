"""A request that meets an absent database is answered 503 `database_unavailable` with
Retry-After (the notifier's inbound mail answered 500 during the chaos battery's Postgres
restart: the Unix socket was gone, a FileNotFoundError); any other failure stays a 500."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid

import asyncpg
import httpx
import pytest
from beckon_edge.database import DATABASE_AWAY, answer_database_outages, database_away
from fastapi import FastAPI


def _app() -> FastAPI:
    app = FastAPI()
    answer_database_outages(app, "notifier")

    @app.get("/socket-gone")
    async def socket_gone() -> None:
        raise FileNotFoundError(2, "No such file or directory")

    @app.get("/shutting-down")
    async def shutting_down() -> None:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")

    @app.get("/died-under-the-query")
    async def died() -> None:
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")

    @app.get("/cut-between-states")
    async def cut_between_states() -> None:
        raise asyncpg.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        )

    @app.get("/bad-query")
    async def bad_query() -> None:
        raise asyncpg.UndefinedColumnError('column "nope" does not exist')

    @app.get("/bug")
    async def bug() -> None:
        raise ValueError("a bug, not an outage")

    return app


async def _get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        return await client.get(path)


@pytest.mark.parametrize(
    "path", ["/socket-gone", "/shutting-down", "/died-under-the-query", "/cut-between-states"]
)
async def test_an_absent_database_is_a_503_to_retry(path: str) -> None:
    answer = await _get(path)
    assert answer.status_code == 503
    assert answer.json()["error"] == "database_unavailable"
    assert answer.json()["detail"].startswith("notifier cannot reach its database")
    assert answer.headers["Retry-After"] == "5"


@pytest.mark.parametrize("path", ["/bad-query", "/bug"])
async def test_a_bad_query_or_a_bug_stays_a_500(path: str) -> None:
    assert (await _get(path)).status_code == 500


def test_an_outage_is_seen_through_what_it_caused() -> None:
    wrapped = RuntimeError("the unit of work failed")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert database_away(wrapped)
    assert not database_away(RuntimeError("nothing underneath"))


async def test_connections_cut_in_the_middle_of_transactions_are_each_the_database_away(
    database_url: str,
) -> None:
    """Real backends terminated while transactions with pipelined statements run on them
    (as a Postgres restart does): each failure the callers see is classed as the database
    away, none as a bug, and the pool serves the next caller. asyncpg answers some of these
    with InternalClientError (MagicStack/asyncpg#1069): chat's widget answered it 500 and
    its live feed dropped the frame during the chaos battery's Postgres restart."""
    pool = await asyncpg.create_pool(database_url, min_size=4, max_size=8)
    admin = await asyncpg.connect(database_url)
    table = f"cut_{uuid.uuid4().hex[:12]}"
    await admin.execute(f"CREATE TABLE {table} (n int, note text)")
    failures: list[BaseException] = []
    backends: set[int] = set()
    pause = random.Random(7)

    async def transactions(n: int) -> None:
        try:
            for _ in range(20):
                async with pool.acquire() as conn, conn.transaction():
                    backends.add(conn.get_server_pid())
                    await conn.fetch(f"SELECT * FROM {table} WHERE n = $1", n)
                    await conn.executemany(
                        f"INSERT INTO {table} VALUES ($1, $2)", [(n, "x" * 100)] * 5
                    )
                    await conn.fetchval(f"SELECT count(*) FROM {table} WHERE n = $1", n)
        except Exception as error:
            failures.append(error)

    try:
        for _ in range(60):
            running = [asyncio.create_task(transactions(n)) for n in range(6)]
            await asyncio.sleep(pause.random() * 0.05)
            await admin.execute(  # the pool's backends only: other tests share the server
                "SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", list(backends)
            )
            await asyncio.gather(*running)
            for _ in range(2):  # the pool may hand out one connection cut while idle
                with contextlib.suppress(*DATABASE_AWAY):
                    async with pool.acquire() as conn:
                        assert await conn.fetchval("SELECT 1") == 1
                        break
        assert failures, "no transaction was cut: the test proves nothing"
        bugs = [f"{type(e).__name__}: {e}" for e in failures if not database_away(e)]
        assert not bugs, bugs
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await admin.execute(f"DROP TABLE {table}")
        await admin.close()
        await pool.close()
