"""A request that meets an absent database is answered 503 `database_unavailable` with
Retry-After (the notifier's inbound mail answered 500 during the chaos battery's Postgres
restart: the Unix socket was gone, a FileNotFoundError); any other failure stays a 500."""

from __future__ import annotations

import asyncpg
import httpx
import pytest
from beckon_edge.database import answer_database_outages, database_away
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


@pytest.mark.parametrize("path", ["/socket-gone", "/shutting-down", "/died-under-the-query"])
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
