"""The app's own edges without Postgres or Kafka: /healthz, and what /readyz answers for
each part that is (not) there; the runtime is a stand-in."""

from __future__ import annotations

import httpx
import pytest
from leads.config import Settings
from leads.main import create_app
from leads.runtime import Runtime


class _Pool:
    def __init__(self, answers: bool) -> None:
        self.answers = answers

    async def fetchval(self, query: str) -> bool:
        if not self.answers:
            raise ConnectionRefusedError("Postgres is away")
        return True


class _Bus:
    def __init__(self, connected: bool) -> None:
        self._connected = connected

    async def connected(self) -> bool:
        return self._connected


def _app(*, ready: bool = True, database: bool = True, broker: bool = True):
    app = create_app(Settings(environment="test"))
    app.state.leads = Runtime(
        settings=Settings(environment="test"),
        pool=_Pool(database),  # type: ignore[arg-type]
        uow=None,  # type: ignore[arg-type]
        bus=_Bus(broker),  # type: ignore[arg-type]
        relay=None,  # type: ignore[arg-type]
        ready=ready,
    )
    return app


async def _get(app, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # no lifespan: nothing is connected
    async with httpx.AsyncClient(transport=transport, base_url="http://leads") as client:
        return await client.get(path)


async def test_healthz_answers_while_nothing_is_connected():
    answer = await _get(create_app(Settings(environment="test")), "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


async def test_readyz_is_503_until_the_lifespan_has_started():
    answer = await _get(create_app(Settings(environment="test")), "/readyz")
    assert answer.status_code == 503
    assert answer.json()["error"] == "starting"
    assert (await _get(_app(ready=False), "/readyz")).json()["error"] == "starting"


@pytest.mark.parametrize(
    ("database", "broker", "error"),
    [(False, True, "database_unavailable"), (True, False, "broker_unavailable")],
)
async def test_readyz_is_503_naming_the_part_that_does_not_answer(database, broker, error):
    answer = await _get(_app(database=database, broker=broker), "/readyz")
    assert answer.status_code == 503
    assert answer.json()["error"] == error


async def test_readyz_is_200_when_postgres_answers_and_the_producer_is_connected():
    answer = await _get(_app(), "/readyz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ready"


async def test_a_trailing_slash_is_a_404_not_a_redirect():
    assert (await _get(_app(), "/healthz/")).status_code == 404


def test_a_request_that_meets_an_absent_database_is_answered_503_not_500():
    from beckon_edge.database import DATABASE_AWAY

    handlers = create_app(Settings(environment="test")).exception_handlers
    assert all(kind in handlers for kind in DATABASE_AWAY)
