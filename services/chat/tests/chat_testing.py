"""Test support for the chat service: real `python -m chat` processes on a real Postgres and a
real broker, throw-away databases and sites, and small visitor / agent clients that speak the
protocol of docs/chat.md over HTTP and WebSockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import orjson
import websockets
import yaml
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_contracts.invitations import (
    InvitationIssued,
    InvitationIssuedPayload,
    InvitingAgent,
)
from beckon_contracts.topics import CHAT_INVITATIONS, TRACKING_EVENTS
from beckon_devstack.kafka_probe import read_records
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from websockets.exceptions import ConnectionClosed

SECRET = "chat-integration-test-secret-not-for-production"
PASSWORD = "test-password-123"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
# A consumer group's first records may wait for the group to form across both instances (a
# join, a rebalance): how long a test waits for something chat consumes to take effect.
GROUP_FORMED_TIMEOUT_S = 60.0
FRAME_TIMEOUT_S = 30.0

# The two tenants every run seeds (SHOP_A_SPEC and SHOP_B_SPEC below).
SHOP_A = "shop-a"
SHOP_A_KEY = "pk_shop_a_test"
SHOP_A_ORIGIN = "http://shop-a.test"
SHOP_B = "shop-b"
SHOP_B_KEY = "pk_shop_b_test"
SHOP_B_ORIGIN = "http://shop-b.test"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- processes --------------------------------------------------------------------------------


@dataclass
class ChatProcess:
    """One `python -m chat` instance as a child process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.process, timeout_s=15)


# Instances alive right now: conftest prints their log tails when a test fails.
RUNNING: list[ChatProcess] = []


def chat_env(
    database_url: str, bootstrap: str, port: int, instance: str, **extra: str
) -> dict[str, str]:
    env = {
        **os.environ,
        "CHAT_DATABASE_URL": database_url,
        "CHAT_KAFKA_BOOTSTRAP": bootstrap,
        # one deployment per database: instances of one share its groups, others do not
        "CHAT_CONSUMER_GROUP": f"chat-{urlsplit(database_url).path.lstrip('/')}",
        "CHAT_HOST": HOST,
        "CHAT_PORT": str(port),
        "CHAT_INSTANCE_ID": instance,
        "CHAT_SECRET_KEY": SECRET,
        "CHAT_ENVIRONMENT": "test",
        "CHAT_LOG_JSON": "false",
        "CHAT_AGENT_OFFLINE_AFTER_S": "3600",
        "CHAT_CREATE_TOPICS": "false",  # kafka_bootstrap created every topic
    }
    env.update(extra)
    return env


def spawn_chat(
    name: str, *, database_url: str, bootstrap: str, log_dir: Path, **extra_env: str
) -> ChatProcess:
    """Start an instance (does not wait; see `wait_ready`)."""
    port = free_port()
    log_path = log_dir / f"chat-{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "chat"],
            env=chat_env(database_url, bootstrap, port, name, **extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    instance = ChatProcess(name, port, process, log_path)
    RUNNING.append(instance)
    return instance


async def wait_ready(instance: ChatProcess, timeout_s: float = START_TIMEOUT_S) -> ChatProcess:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if instance.process.poll() is not None:
                raise RuntimeError(
                    f"chat {instance.name} exited with {instance.process.returncode} during "
                    f"start-up:\n{instance.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{instance.url}/readyz")).status_code == 200:
                    return instance
            if time.monotonic() > deadline:
                raise TimeoutError(f"chat {instance.name} not ready:\n{instance.log_tail()}")
            await asyncio.sleep(0.1)


def stop_chat(*instances: ChatProcess) -> None:
    """SIGTERM every instance at once (shutdowns overlap), then wait for each."""
    for instance in instances:
        if instance.process.poll() is None:
            instance.process.terminate()
    for instance in instances:
        instance.stop()  # waits; SIGKILL after the grace period
        if instance in RUNNING:
            RUNNING.remove(instance)


async def start_chat(name: str, **kwargs: Any) -> ChatProcess:
    instance = spawn_chat(name, **kwargs)
    try:
        return await wait_ready(instance)
    except BaseException:
        stop_chat(instance)
        raise


def run_chat_command(database_url: str, *args: str) -> str:
    """`python -m chat <args>` against a database; returns its output, fails loudly."""
    env = chat_env(database_url, "127.0.0.1:1", 1, "cli")
    done = subprocess.run(
        [sys.executable, "-m", "chat", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"python -m chat {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


# --- databases --------------------------------------------------------------------------------


def database_url_for(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database(server_url: str, prefix: str = "chat_test") -> tuple[str, str]:
    """A fresh, empty database on the server of `server_url`: (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, database_url_for(server_url, name)


def can_drop_databases() -> bool:
    """Whether dropping a test database is safe on this session's Postgres.

    DROP DATABASE forces a checkpoint. The embedded server (no DATABASE_URL) runs as the
    `pgserver` user in a data directory under pytest's 0700 base temp dir when tests run as
    root; its checkpointer then cannot open global/pg_control and PANICs the server. That server
    is thrown away with the session anyway, so its test databases are left to it.
    """
    return bool(os.environ.get("DATABASE_URL"))


async def drop_database(server_url: str, name: str) -> None:
    if not can_drop_databases():
        return
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, prefix: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A migrated database that no running instance serves: (url, pool)."""
    from chat.adapters import migrations

    name, url = await create_database(server_url, prefix)
    pool: asyncpg.Pool | None = None
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        yield url, pool
    finally:
        if pool is not None:
            await pool.close()
        await drop_database(server_url, name)


def relayless_uow(pool: asyncpg.Pool) -> Any:
    """Units of work for chat's own use cases with no relay behind them: what they commit
    stays unpublished."""
    from chat.uow import UnitOfWorkFactory

    async def no_agents_changed(site_id: str, agent_ids: Iterable[str]) -> None:
        return None

    return UnitOfWorkFactory(pool, on_commit=lambda: None, on_agents_changed=no_agents_changed)


# --- sites --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentSpec:
    agent_id: str
    email: str
    name: str
    teams: tuple[str, ...]
    max_chats: int
    password: str = PASSWORD


@dataclass(frozen=True)
class SiteSpec:
    site_id: str
    site_key: str
    origin: str
    teams: tuple[str, ...]
    agents: tuple[AgentSpec, ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def agent(self, local: str) -> AgentSpec:
        for agent in self.agents:
            if agent.agent_id == f"{self.site_id}-{local}":
                return agent
        raise KeyError(local)

    def seed(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id,
            "site_key": self.site_key,
            "name": self.site_id,
            "allowed_origins": [self.origin],
            "settings": {
                "greeting": f"Hello from {self.site_id}",
                "typing_preview": True,
                "default_team": self.teams[0],
                **self.settings,
            },
            "teams": [{"team": team, "name": team.title()} for team in self.teams],
            "agents": [
                {
                    "agent_id": agent.agent_id,
                    "email": agent.email,
                    "password": agent.password,
                    "name": agent.name,
                    "teams": list(agent.teams),
                    "max_chats": agent.max_chats,
                }
                for agent in self.agents
            ],
        }


def site_spec(
    site_id: str,
    *,
    agents: Iterable[tuple[str, Iterable[str], int]] = (),
    teams: Iterable[str] = ("sales",),
    site_key: str | None = None,
    origin: str | None = None,
    settings: dict[str, Any] | None = None,
) -> SiteSpec:
    """agents: (local name, teams, max_chats); ids are `{site_id}-{local}`."""
    return SiteSpec(
        site_id=site_id,
        site_key=site_key or f"pk_{site_id.replace('-', '_')}",
        origin=origin or f"http://{site_id}.test",
        teams=tuple(teams),
        agents=tuple(
            AgentSpec(
                agent_id=f"{site_id}-{local}",
                email=f"{local}@{site_id}.test",
                name=local.title(),
                teams=tuple(member_of),
                max_chats=max_chats,
            )
            for local, member_of, max_chats in agents
        ),
        settings=settings or {},
    )


SHOP_A_SPEC = site_spec(
    SHOP_A,
    site_key=SHOP_A_KEY,
    origin=SHOP_A_ORIGIN,
    teams=("sales", "support"),
    agents=(("alice", ("sales", "support"), 5), ("bob", ("sales",), 5), ("carol", ("support",), 3)),
)
SHOP_B_SPEC = site_spec(
    SHOP_B,
    site_key=SHOP_B_KEY,
    origin=SHOP_B_ORIGIN,
    teams=("sales",),
    agents=(("dave", ("sales",), 5), ("erin", ("sales",), 5)),
)


def seed_yaml(*sites: SiteSpec) -> str:
    """A seed file for `python -m chat seed`."""
    return str(yaml.safe_dump({"sites": [site.seed() for site in sites]}, sort_keys=False))


async def add_site(database_url: str, site: SiteSpec) -> SiteSpec:
    """Upsert a site with chat's own seeding code (`chat.seed.apply_seed`)."""
    from chat.seed import Seed, apply_seed

    conn = await asyncpg.connect(database_url)
    try:
        await apply_seed(conn, Seed.model_validate({"sites": [site.seed()]}))
    finally:
        await conn.close()
    return site


# --- WebSockets -------------------------------------------------------------------------------


class Socket:
    """A client WebSocket that collects every JSON frame; tests wait for the ones they want."""

    def __init__(self, ws: websockets.ClientConnection, label: str) -> None:
        self.ws = ws
        self.label = label
        self.frames: list[dict[str, Any]] = []
        self._taken: set[int] = set()
        self._changed = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._reader = asyncio.create_task(self._read(), name=f"reader-{label}")

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames.append(orjson.loads(raw))
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self._changed.set()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    def matching(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Every frame received so far that matches (taken or not)."""
        return [frame for frame in self.frames if predicate(frame)]

    async def recv_until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = FRAME_TIMEOUT_S
    ) -> dict[str, Any]:
        """The oldest frame not yet returned that matches; waits up to `timeout` for it."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            self._changed.clear()
            for index, frame in enumerate(self.frames):
                if index not in self._taken and predicate(frame):
                    self._taken.add(index)
                    return frame
            if self.closed.is_set():
                raise AssertionError(
                    f"{self.label}: socket closed ({self.close_code} {self.close_reason!r}) "
                    f"before a matching frame; frames: {self.frames}"
                )
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(
                    f"{self.label}: no matching frame within {timeout} s; frames: {self.frames}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def wait_closed(self, timeout: float = FRAME_TIMEOUT_S) -> int | None:
        await asyncio.wait_for(self.closed.wait(), timeout)
        return self.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 5)


async def open_socket(url: str, headers: dict[str, str], label: str) -> Socket:
    ws = await websockets.connect(url, additional_headers=headers, open_timeout=10)
    return Socket(ws, label)


def frame_is(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """A predicate: `t == kind` and every given field equal (`a__b` reaches frame["a"]["b"])."""

    def check(frame: dict[str, Any]) -> bool:
        if frame.get("t") != kind:
            return False
        for name, wanted in fields.items():
            value: Any = frame
            for part in name.split("__"):
                value = value.get(part) if isinstance(value, dict) else None
            if value != wanted:
                return False
        return True

    return check


# --- clients ------------------------------------------------------------------------------------


class VisitorClient:
    """A visitor of one site, calling any instance (no sticky routing)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        site: SiteSpec,
        visitor_id: str | None = None,
        origin: str | None = None,
    ) -> None:
        self.http = http
        self.site = site
        self.visitor_id = visitor_id or unique("v")
        self.origin = origin or site.origin
        self.token: str | None = None
        self.credential: str | None = None  # the browser credential, kept as the widget does
        self.sockets: list[Socket] = []

    def _headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"Origin": self.origin}
        token = token or self.token
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    async def session(self, base: str, **extra: Any) -> httpx.Response:
        body = {"site_key": self.site.site_key, "visitor_id": self.visitor_id}
        if self.credential:
            body["credential"] = self.credential
        body.update(extra)
        answer = await self.http.post(
            f"{base}/v1/widget/session", json=body, headers={"Origin": self.origin}
        )
        if answer.status_code == 200:
            self.token = answer.json()["token"]
            self.credential = answer.json().get("credential") or self.credential
        return answer

    async def post(self, base: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.post(
            f"{base}/v1/widget{path}",
            json=body,
            headers={**self._headers(), **kw.pop("headers", {})},
            **kw,
        )

    async def get(self, base: str, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(
            f"{base}/v1/widget{path}", headers={**self._headers(), **kw.pop("headers", {})}, **kw
        )

    async def start(self, base: str, **body: Any) -> httpx.Response:
        answer = await self.post(base, "/conversations", body)
        if answer.status_code in (200, 201):
            self.token = answer.json()["token"]
        return answer

    async def connect(self, ws_base: str, origin: str | None = None) -> Socket:
        assert self.token is not None, "open a session first"
        socket = await open_socket(
            f"{ws_base}/v1/widget/ws?token={self.token}",
            {"Origin": origin or self.origin},
            f"visitor {self.visitor_id}",
        )
        self.sockets.append(socket)
        return socket

    async def aclose(self) -> None:
        for socket in self.sockets:
            await socket.close()


class AgentClient:
    """An agent logged in through one instance; the cookie works on every instance."""

    def __init__(self, base: str, agent: AgentSpec) -> None:
        self.base = base
        self.spec = agent
        self.http = httpx.AsyncClient(timeout=30.0)
        self.cookie: str | None = None
        self.sockets: list[Socket] = []

    @property
    def agent_id(self) -> str:
        return self.spec.agent_id

    def headers(self, base: str | None = None) -> dict[str, str]:
        headers = {"Origin": base or self.base}
        if self.cookie:
            headers["Cookie"] = f"beckon_agent={self.cookie}"
        return headers

    async def login(self) -> dict[str, Any]:
        answer = await self.http.post(
            f"{self.base}/v1/console/login",
            json={"email": self.spec.email, "password": self.spec.password},
            headers={"Origin": self.base},
        )
        assert answer.status_code == 200, answer.text
        self.cookie = answer.cookies["beckon_agent"]
        self.http.cookies.clear()  # sent explicitly, so tests control it
        return dict(answer.json())

    async def post(
        self, path: str, body: Any = None, *, base: str | None = None, **kw: Any
    ) -> httpx.Response:
        base = base or self.base
        return await self.http.post(
            f"{base}/v1/console{path}",
            json=body,
            headers={**self.headers(base), **kw.pop("headers", {})},
            **kw,
        )

    async def get(self, path: str, *, base: str | None = None, **kw: Any) -> httpx.Response:
        base = base or self.base
        return await self.http.get(
            f"{base}/v1/console{path}",
            headers={**self.headers(base), **kw.pop("headers", {})},
            **kw,
        )

    async def status(self, status: str, *, base: str | None = None) -> dict[str, Any]:
        answer = await self.post("/status", {"status": status}, base=base)
        assert answer.status_code == 200, answer.text
        return dict(answer.json()["agent"])

    async def connect(self, ws_base: str | None = None, origin: str | None = None) -> Socket:
        ws_base = ws_base or self.base.replace("http://", "ws://")
        http_base = ws_base.replace("ws://", "http://")
        headers = {"Origin": origin or http_base}
        if self.cookie:
            headers["Cookie"] = f"beckon_agent={self.cookie}"
        socket = await open_socket(f"{ws_base}/v1/console/ws", headers, f"agent {self.agent_id}")
        self.sockets.append(socket)
        return socket

    async def aclose(self) -> None:
        for socket in self.sockets:
            await socket.close()
        await self.http.aclose()


async def close_code(url: str, headers: dict[str, str], timeout: float = 10.0) -> int | None:
    """Open a socket and return the code the server closes it with."""
    ws = await websockets.connect(url, additional_headers=headers, open_timeout=10)
    try:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), timeout)
    finally:
        await ws.close()
    return ws.close_code


# --- tokens ---------------------------------------------------------------------------------------


def token_claims(token: str) -> dict[str, Any]:
    body = token.partition(".")[0]
    return dict(orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def tamper(token: str, **claims: Any) -> str:
    """The same signature over changed claims (a forgery the server must refuse)."""
    signature = token.partition(".")[2]
    changed = {**token_claims(token), **claims}
    new_body = base64.urlsafe_b64encode(orjson.dumps(changed)).rstrip(b"=").decode()
    return f"{new_body}.{signature}"


# --- Kafka ----------------------------------------------------------------------------------------


def invitation_record(
    site_id: str,
    visitor_id: str,
    *,
    message: str = "Need a hand choosing a size?",
    team: str = "sales",
    rule_id: str = "size-help",
    agent_name: str | None = "Anna",
    expires_in_s: float = 600,
) -> InvitationIssued:
    now = datetime.now(UTC)
    return InvitationIssued(
        event_id=uuid7(),
        occurred_at=now,
        site_id=site_id,
        visitor_id=visitor_id,
        payload=InvitationIssuedPayload(
            invitation_id=uuid7(),
            rule_id=rule_id,
            rule_name="Size help",
            team=team,
            message=message,
            agent=InvitingAgent(name=agent_name, avatar_url="https://cdn.test/a.png")
            if agent_name
            else None,
            expires_at=now + timedelta(seconds=expires_in_s),
        ),
    )


async def produce(bootstrap: str, topic: str, key: bytes, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def produce_invitation(bootstrap: str, record: InvitationIssued) -> None:
    key = f"{record.site_id}:{record.visitor_id}".encode()
    await produce(bootstrap, CHAT_INVITATIONS.name, key, record.model_dump_json().encode())


@dataclass(frozen=True)
class Event:
    partition: int
    offset: int
    key: str
    value: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.value.get("type"))

    @property
    def payload(self) -> dict[str, Any]:
        return dict(self.value.get("payload") or {})


async def read_events(
    bootstrap: str,
    topic: str,
    *,
    key: str | None = None,
    match: Callable[[Event], bool] = lambda _event: True,
    until: Callable[[list[Event]], bool],
    timeout_s: float = 45.0,
) -> list[Event]:
    """JSON records of a topic (with `key`, when given) in read order, until `until` holds,
    then drained to every partition's high watermark so late duplicates are seen too."""

    def convert(record: Any) -> Event | None:
        try:
            value = orjson.loads(record.value or b"")
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, dict):
            return None
        return Event(record.partition, record.offset, (record.key or b"").decode(), value)

    def wanted(record: Any) -> bool:
        if key is not None and (record.key or b"").decode() != key:
            return False
        event = convert(record)
        return event is not None and match(event)

    records = await read_records(
        bootstrap,
        topic,
        match=wanted,
        until=lambda found: until([e for e in map(convert, found) if e is not None]),
        drain=True,
        timeout_s=timeout_s,
    )
    return [event for event in map(convert, records) if event is not None]


def dedupe(events: Iterable[Event]) -> list[Event]:
    """First occurrence of each event_id (publishing is at least once)."""
    seen: set[str] = set()
    kept = []
    for event in events:
        event_id = str(event.value.get("event_id"))
        if event_id not in seen:
            seen.add(event_id)
            kept.append(event)
    return kept


# --- waiting --------------------------------------------------------------------------------------


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 30.0, what: str = "condition"
) -> None:
    """Poll `check` until it holds (for state that changes asynchronously, e.g. a relay)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not hold within {timeout_s} s")
        await asyncio.sleep(0.05)


# ---- tracking events (what the tracker puts on tracking.events) -----------------------


def tracking_event(
    site_id: str, visitor_id: str, type_: str, payload: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "event_id": str(uuid7()),
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat(),
        "received_at": datetime.now(UTC).isoformat(),
        "site_id": site_id,
        "visitor_id": visitor_id,
        "session_id": "s-1",
        "context": {
            "page": {"url": "https://shop.test/p/trail", "title": "Trail Runner X"},
            "campaign": {"source": "newsletter", "medium": "email"},
        },
    }
    if payload is not None:
        value["payload"] = payload
    value.update(extra)
    return value


def visit(site_id: str, visitor_id: str) -> list[dict[str, Any]]:
    """A short shopping visit: home, a product, the cart, an order, identify, a heartbeat."""
    item = {"product_id": "trail", "name": "Trail Runner X", "price": 129.9, "quantity": 1}
    return [
        tracking_event(site_id, visitor_id, "page_viewed", {"page_type": "home"}),
        tracking_event(
            site_id,
            visitor_id,
            "product_viewed",
            {"product_id": "trail", "name": "Trail Runner X", "price": 129.9, "currency": "EUR"},
        ),
        tracking_event(
            site_id,
            visitor_id,
            "cart_updated",
            {"items": [item], "value": 129.9, "currency": "EUR"},
        ),
        tracking_event(site_id, visitor_id, "heartbeat", {"seconds_on_page": 15}),
        tracking_event(
            site_id,
            visitor_id,
            "order_completed",
            {"order_id": "A-1", "items": [item], "value": 129.9, "currency": "EUR"},
        ),
        tracking_event(
            site_id,
            visitor_id,
            "identified",
            {"user_id": "u-1", "traits": {"email": "maija@example.fi", "name": "Maija"}},
        ),
    ]


async def produce_events(bootstrap: str, events: list[dict[str, Any]]) -> None:
    for value in events:
        key = f"{value['site_id']}:{value['visitor_id']}".encode()
        await produce(bootstrap, TRACKING_EVENTS.name, key, orjson.dumps(value))
