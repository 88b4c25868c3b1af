"""Test support for the leads API: a real local HTTP server that answers `/v1/console/me` the
way chat does (it checks the cookie with chat's token code and keeps each agent's session
version, role and teams), the leads app on the session's migrated database (no broker: what
a change publishes is read from the outbox), and leads written straight into the database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import orjson
import uvicorn
from beckon_devstack.ports import free_port
from beckon_edge.console_sessions import ConsoleSessions
from beckon_edge.tokens import InvalidToken, Signer
from leads.config import DEV_AGENT_SESSION_SECRET, Settings
from leads.main import create_app
from leads.runtime import Runtime
from leads.uow import UnitOfWorkFactory
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SECRET = DEV_AGENT_SESSION_SECRET
SIGNER = Signer(SECRET)


@dataclass
class Agent:
    site_id: str
    agent_id: str
    role: str = "agent"
    teams: tuple[str, ...] = ()
    session_version: int = 1

    def cookie(self, *, ttl_s: int = 3600, signer: Signer = SIGNER) -> str:
        return signer.agent_token(
            site_id=self.site_id,
            agent_id=self.agent_id,
            session_version=self.session_version,
            ttl_s=ttl_s,
            now=time.time(),
        )


@dataclass
class ChatStub:
    """chat's `/v1/console/me`, served over real HTTP on a free port."""

    url: str = ""
    agents: dict[tuple[str, str], Agent] = field(default_factory=dict)
    calls: int = 0
    server: uvicorn.Server | None = None
    task: asyncio.Task[None] | None = None

    async def stop(self) -> None:
        """chat goes away (its port stops answering)."""
        if self.server is not None and self.task is not None:
            self.server.should_exit = True
            await self.task
            self.server = self.task = None

    def add(self, agent: Agent) -> Agent:
        self.agents[(agent.site_id, agent.agent_id)] = agent
        return agent

    async def me(self, request: Request) -> JSONResponse:
        self.calls += 1
        cookie = request.cookies.get("beckon_agent")
        if not cookie:
            return JSONResponse({"error": "not_logged_in", "detail": "log in first"}, 401)
        try:
            claims = SIGNER.check_agent(cookie, now=time.time())
        except InvalidToken as exc:
            return JSONResponse({"error": "not_logged_in", "detail": str(exc)}, 401)
        agent = self.agents.get((claims.site_id, claims.agent_id))
        if agent is None:
            return JSONResponse({"error": "deactivated", "detail": "not active"}, 401)
        if agent.session_version != claims.session_version:
            return JSONResponse({"error": "session_ended", "detail": "log in again"}, 401)
        profile = {
            "id": agent.agent_id,
            "site_id": agent.site_id,
            "email": f"{agent.agent_id}@example.com",
            "name": agent.agent_id,
            "role": agent.role,
            "status": "online",
            "teams": list(agent.teams),
        }
        return JSONResponse({"agent": profile, "site": {"site_id": agent.site_id}, "teams": []})


@asynccontextmanager
async def chat_stub() -> AsyncIterator[ChatStub]:
    stub = ChatStub()
    port = free_port()
    app = Starlette(routes=[Route("/v1/console/me", stub.me)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
        await asyncio.sleep(0.01)
    stub.url, stub.server, stub.task = f"http://127.0.0.1:{port}", server, task
    try:
        yield stub
    finally:
        await stub.stop()


@dataclass
class LeadsApi:
    """The leads app over ASGI, its pool and chat stub; `client(agent)` logs in as `agent`."""

    app: Any
    pool: asyncpg.Pool
    chat: ChatStub

    def client(
        self, agent: Agent | None = None, *, cookie: str | None = None, **headers: str
    ) -> httpx.AsyncClient:
        cookies = {}
        if agent is not None or cookie is not None:
            cookies["beckon_agent"] = cookie if cookie is not None else agent.cookie()  # type: ignore[union-attr]
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://leads.test",
            cookies=cookies,
            headers=headers,
        )

    def api(self, key: str) -> httpx.AsyncClient:
        return self.client(authorization=f"Bearer {key}")


@asynccontextmanager
async def leads_api(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[LeadsApi]:
    async with chat_stub() as chat:
        settings = Settings(
            environment="test",
            api_docs=True,
            database_url=database_url,
            chat_url=chat.url,
            session_cache_s=0,  # every call asks chat: tests change sessions between calls
        )
        app = create_app(settings)
        sessions = ConsoleSessions(secret=SECRET, chat_url=chat.url, cache_s=0)
        app.state.leads = Runtime(
            settings=settings,
            pool=pool,
            uow=UnitOfWorkFactory(pool, on_commit=lambda: None),
            bus=None,  # type: ignore[arg-type]
            relay=None,  # type: ignore[arg-type]
            ready=True,
            sessions=sessions,
        )
        try:
            yield LeadsApi(app, pool, chat)
        finally:
            await sessions.aclose()


async def insert_lead(
    pool: asyncpg.Pool,
    site_id: str,
    *,
    status: str = "assigned",
    team: str | None = "sales",
    assignee: str | None = "anna",
    validation: str = "qualified",
    name: str | None = "Ann Lee",
    source: str = "chat",
    created_at: datetime | None = None,
    **columns: Any,
) -> uuid.UUID:
    lead_id = uuid.uuid4()
    values: dict[str, Any] = {
        "lead_id": lead_id,
        "site_id": site_id,
        "visitor_id": f"v-{lead_id.hex[:8]}",
        "status": status,
        "validation": validation,
        "team": team,
        "assignee": assignee,
        "name": name,
        "source": source,
        "email": f"{lead_id.hex[:8]}@example.com",
        "email_key": f"{lead_id.hex[:8]}@example.com",
        **columns,
    }
    if created_at is not None:
        values["created_at"] = created_at
    if status in ("won", "lost", "recycled"):
        values.setdefault("closed_at", created_at or datetime.now().astimezone())
    if status == "new" and assignee is None and team is not None:
        values.setdefault("queued_at", created_at or datetime.now().astimezone())
    names = list(values)
    await pool.execute(
        f"INSERT INTO leads.leads ({', '.join(names)}) "
        f"VALUES ({', '.join(f'${n}' for n in range(1, len(names) + 1))})",
        *values.values(),
    )
    return lead_id


async def published(pool: asyncpg.Pool, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """The lead's events in the outbox, in the order they were written."""
    rows = await pool.fetch(
        "SELECT value FROM leads.outbox WHERE key = $1 ORDER BY id", str(lead_id).encode()
    )
    return [orjson.loads(row["value"]) for row in rows]
