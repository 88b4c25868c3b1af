"""Fixtures for the chat service's integration tests: a fresh database on the session's
Postgres (migrated and seeded with two tenants by the service's own CLI), two chat instances
as real processes on the session's broker, throw-away sites, and protocol clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from chat.seed import apply_seed, load_seed
from chat_testing import (
    RUNNING,
    SHOP_A_SPEC,
    SHOP_B_SPEC,
    AgentClient,
    AgentSpec,
    ChatProcess,
    SiteSpec,
    VisitorClient,
    add_site,
    create_database,
    drop_database,
    run_chat_command,
    seed_yaml,
    site_spec,
    spawn_chat,
    stop_chat,
    unique,
    wait_ready,
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing chat test shows the tail of every running instance's log."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed and report.when in ("setup", "call"):
        for instance in list(RUNNING):
            report.sections.append(
                (f"chat {instance.name} log (tail of {instance.log_path})", instance.log_tail())
            )


@dataclass(frozen=True)
class Chat:
    """Two instances on one database and one broker; a client may use either for any call."""

    a: ChatProcess
    b: ChatProcess
    database_url: str
    server_url: str  # the Postgres server's maintenance database
    bootstrap: str
    log_dir: Path

    @property
    def instances(self) -> tuple[ChatProcess, ChatProcess]:
        return (self.a, self.b)


@pytest.fixture(scope="session")
async def chat_database(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """A fresh database: `python -m chat migrate`, then the seed file of shop-a and shop-b."""
    name, url = await create_database(database_url)
    try:
        seed_file = tmp_path_factory.mktemp("chat-seed") / "tenants.yaml"
        seed_file.write_text(seed_yaml(SHOP_A_SPEC, SHOP_B_SPEC))
        await asyncio.to_thread(run_chat_command, url, "migrate")
        # what `python -m chat seed FILE` does, without a second interpreter start-up
        conn = await asyncpg.connect(url)
        try:
            await apply_seed(conn, load_seed(seed_file))
        finally:
            await conn.close()
        yield url
    finally:
        await drop_database(database_url, name)


@pytest.fixture(scope="session")
async def chat(
    chat_database: str,
    database_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Chat]:
    log_dir = tmp_path_factory.mktemp("chat-logs")
    started = [
        spawn_chat(name, database_url=chat_database, bootstrap=kafka_bootstrap, log_dir=log_dir)
        for name in ("a", "b")
    ]
    try:
        await asyncio.gather(*(wait_ready(instance) for instance in started))
        yield Chat(started[0], started[1], chat_database, database_url, kafka_bootstrap, log_dir)
    finally:
        stop_chat(*started)


@pytest.fixture(scope="session")
async def db(chat_database: str) -> AsyncIterator[asyncpg.Pool]:
    """The chat database, for asserting what was committed."""
    pool = await asyncpg.create_pool(chat_database, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


MakeSite = Callable[..., Awaitable[SiteSpec]]


@pytest.fixture
def make_site(chat: Chat) -> MakeSite:
    """`await make_site(agents=[(name, teams, max_chats)], teams=[...])`: a new tenant."""

    async def make(
        *,
        agents: Iterable[tuple[str, Iterable[str], int]] = (),
        teams: Iterable[str] = ("sales",),
        **kwargs: Any,
    ) -> SiteSpec:
        site = site_spec(unique("site"), agents=agents, teams=teams, **kwargs)
        return await add_site(chat.database_url, site)

    return make


class Clients:
    """Visitors and agents for one test; every socket and client is closed afterwards."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.visitors: list[VisitorClient] = []
        self.agents: list[AgentClient] = []

    def visitor(self, site: SiteSpec, **kwargs: Any) -> VisitorClient:
        visitor = VisitorClient(self.http, site, **kwargs)
        self.visitors.append(visitor)
        return visitor

    async def agent(self, base: str, spec: AgentSpec, *, online: bool = False) -> AgentClient:
        agent = AgentClient(base, spec)
        self.agents.append(agent)
        await agent.login()
        if online:
            await agent.status("online")
        return agent

    async def aclose(self) -> None:
        for client in [*self.visitors, *self.agents]:
            await client.aclose()


@pytest.fixture
async def clients(http: httpx.AsyncClient) -> AsyncIterator[Clients]:
    made = Clients(http)
    try:
        yield made
    finally:
        await made.aclose()
