"""Leads: lead mark → assigned latency, leads per second, SLA timer lateness, webhook deliveries.

    uv run python bench/leads.py                  # full size (about 5 minutes on the 2-core VM)
    uv run python bench/leads.py --leads 2000 --seconds 5 --timers 5000 --sla-window 10 \\
        --webhooks 1000                           # smoke

Starts Apache Kafka (or uses --bootstrap) and Postgres (a fresh database per part on
DATABASE_URL's server, else an embedded Postgres like the test fixtures; dropped at the end),
migrates each with `python -m leads migrate`, and runs `python -m leads` instances as the
service runs (LEADS_MIGRATE_ON_START=true, a consumer group of their own whose offsets start
at the topics' current ends, so older records on a shared broker are not read). Sites are
seeded as an admin would leave them: two teams ("sales", "service") with a team lead, three
routing rules (campaign, score + cart, validation) and a default team, agents online in both
teams (TeamPresence records on `agents.presence`, stored as the presence follower stores them)
with the open-lead cap at its maximum (1,000) and enough agents that nobody waits in a queue.
Parts (`--parts`, default all, in this order):
  1. throughput: --leads `conversation.lead_marked` records (contract models, distinct people:
     visitor, conversation and e-mail each; their `visitors.state` first) are written to
     `chat.events` while no instance runs; then one instance starts and captures, dedups,
     routes and assigns them. `leads_per_s` = leads between the first and the last
     `lead.assigned` on `leads.events` over that span (broker time of the relay's records);
     also from the instance's readiness to the last one.
  2. latency: on the same instance, lead marks of new people at --rate per second (open loop)
     for --seconds after --warmup. Latency = the `lead.assigned` (matched on the visitor)
     arriving at this script's consumer of `leads.events` minus the mark's scheduled send
     time; p50/p95/p99/max and the leads never assigned (must be 0).
  3. sla: a fresh database and instance; --timers pending timers (warnings at 50 % and 80 %,
     breaches: one lead each, inserted with SQL) due evenly over --sla-window seconds from
     --sla-lead-in seconds after the insert (announced with NOTIFY, as the service does).
     The scheduler fires them on the real clock; lateness = fired_at - due_at from
     `leads.timers` (the scheduler's claim) and, end to end, the SLA event's broker time on
     `leads.events` - due_at. Every timer must fire exactly once.
  4. webhooks: a fresh database and instance; a receiver in its own process verifies every
     request with the `standardwebhooks` package; --webhooks deliveries of real `leads.events`
     bodies are queued for --webhook-endpoints endpoints in one COPY; `webhooks_per_s` =
     deliveries / (the queue's commit → nothing pending). Verified must equal --webhooks.
Each part reports CPU per process group and `others` (the rest of the machine). The last line
is `RESULT {json}`; exit code 1 when the run is not valid.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `bench` importable, bench/ not shadowing `leads`
    sys.path[:] = [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from beckon_contracts.chat_events import ConversationLeadMarked, LeadMarkedPayload
from beckon_contracts.envelope import record_key
from beckon_contracts.ids import uuid7
from beckon_contracts.leads import LeadAssigned
from beckon_contracts.presence import AgentPresence, TeamPresence, presence_key
from beckon_contracts.topics import (
    AGENTS_PRESENCE,
    CHAT_EVENTS,
    LEADS_EVENTS,
    TRACKING_EVENTS,
    VISITORS_STATE,
)
from beckon_contracts.visitors import VisitorSnapshot, VisitorSnapshotPayload
from beckon_devstack.kafka import KAFKA_VERSION
from beckon_devstack.ports import free_port
from leads.assignment.presence import apply_presence
from leads.domain.routing import parse_routing
from leads.domain.webhooks import WebhookSecret, message_id
from leads.routing.store import RoutingStore
from leads.sla.store import TIMERS_CHANNEL
from leads.uow import UnitOfWorkFactory
from leads.webhooks.store import WebhookStore

from bench._common import (
    MachineMeter,
    Service,
    log_problems,
    machine_facts,
    percentile_ms,
    python_env,
    start_service,
    tail,
    wait_http_ok,
)
from bench._stack import create_database, start_broker, start_postgres

PARTS = ("throughput", "latency", "sla", "webhooks")
TEAMS = ("sales", "service")
CAP = 1000  # leads.agents / leads.sites cap's upper bound
HISTORY_LEADS = 20_000  # closed leads of ten other sites in each part's database
_OLD = "FROM leads.leads WHERE site_id LIKE 'bench-history-%'"
HISTORY = (
    f"""INSERT INTO leads.touches (touch_id, lead_id, site_id, kind, source_event_id,
            occurred_at, visitor_id)
        SELECT gen_random_uuid(), lead_id, site_id, 'lead_marked', gen_random_uuid(),
               created_at, visitor_id {_OLD}""",
    f"""INSERT INTO leads.conversations (site_id, conversation_id, visitor_id, team)
        SELECT site_id, lead_id, visitor_id, 'sales' {_OLD}""",
    f"""INSERT INTO leads.lead_conversations (lead_id, conversation_id, site_id)
        SELECT lead_id, lead_id, site_id {_OLD}""",
    f"""INSERT INTO leads.processed_events (consumer, event_id)
        SELECT 'capture', gen_random_uuid() {_OLD}""",
    """INSERT INTO leads.timers (lead_id, site_id, kind, at_percent, deadline_at, due_at,
            fired_at)
        SELECT lead_id, site_id, kind, at_percent, created_at + interval '30 minutes',
               created_at + interval '30 minutes' * at_percent / 100,
               created_at + interval '30 minutes' * at_percent / 100
        FROM leads.leads CROSS JOIN (VALUES ('warning', 50), ('breach', 100)) AS t(kind, at_percent)
        WHERE site_id LIKE 'bench-history-%'""",
)
MAX_AGENTS = 500  # beckon_contracts.presence.MAX_AGENTS_PER_TEAM
SLA_ALLOWED_S = 300.0  # ready_to_buy's default first-contact time: the warnings' deadlines
TARGETS = {
    "p99_lead_assigned_ms": ("<", 100),
    "leads_per_s": (">=", 1000),
    "sla_fire_lag_p99_ms": ("<", 1000),
    "webhooks_per_s": (">=", 500),
}
ROUTING = {
    "default_team": "sales",
    "rules": [
        {
            "id": "car-service",
            "name": "Car servicing campaigns",
            "conditions": [{"campaign": ["service-*"]}],
            "team": "service",
        },
        {
            "id": "hot-cart",
            "name": "Hot visitors with a big cart",
            "conditions": [{"score": {"gte": 70}}, {"cart_value": {"gte": 500, "currency": "EUR"}}],
            "team": "sales",
        },
        {
            "id": "ready",
            "name": "Ready to buy",
            "conditions": [{"min_validation": "ready_to_buy"}],
            "team": "sales",
        },
    ],
}
PG_SETTINGS = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections")
VALIDATIONS = (("ready_to_buy", 0.2), ("qualified", 0.4), ("interested", 0.4))
CAMPAIGNS = (("service-spring", 0.3), ("spring-sale", 0.4), (None, 0.3))


def pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def cpu_ms_each(cpu_pct: dict[str, float], seconds: float, count: int) -> dict[str, float]:
    """CPU milliseconds per item of each process group (steadier than a rate on a shared
    machine); `machine` is everything that ran, `others` included."""
    if count <= 0:
        return {}
    return {name: round(pct / 100 * seconds * 1000 / count, 3) for name, pct in cpu_pct.items()}


def stats_ms(samples_s: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": percentile_ms(samples_s, 50),
        "p95_ms": percentile_ms(samples_s, 95),
        "p99_ms": percentile_ms(samples_s, 99),
        "max_ms": round(max(samples_s) * 1000, 2) if samples_s else None,
    }


# ---- the people: visitors.state and lead marks, from the contracts -----------------------------


@dataclass(frozen=True)
class Person:
    site_id: str
    visitor_id: str
    validation: str
    campaign: str | None
    cart_value: float
    score: float

    def state(self, now: datetime) -> tuple[bytes, bytes]:
        segment = "hot" if self.score >= 70 else "warm" if self.score >= 35 else "cold"
        snapshot = VisitorSnapshot(
            event_id=uuid7(),
            occurred_at=now,
            site_id=self.site_id,
            visitor_id=self.visitor_id,
            payload=VisitorSnapshotPayload(
                url="https://shop.test/cart",
                page_type="cart",
                session_started_at=now - timedelta(minutes=12),
                last_seen_at=now,
                time_on_site_s=720.0,
                sessions=2,
                returning=True,
                source="google" if self.campaign else None,
                medium="cpc" if self.campaign else None,
                campaign=self.campaign,
                cart_value=self.cart_value,
                cart_items=2 if self.cart_value else 0,
                currency="EUR",
                score=self.score,
                segment=segment,  # type: ignore[arg-type]
                invited=True,
                chatting=True,
            ),
        )
        return record_key(self.site_id, self.visitor_id), snapshot.model_dump_json().encode()

    def mark(self, now: datetime) -> tuple[bytes, bytes]:
        """A `conversation.lead_marked` record as chat writes it (keyed by the conversation)."""
        conversation = uuid.uuid4()
        event = ConversationLeadMarked(
            event_id=uuid7(),
            occurred_at=now,
            site_id=self.site_id,
            visitor_id=self.visitor_id,
            payload=LeadMarkedPayload(
                mark_id=uuid.uuid4(),
                conversation_id=conversation,
                agent_id="chat-agent",
                validation=self.validation,  # type: ignore[arg-type]
                email=f"{self.visitor_id}@bench.test",
                team="sales",
            ),
        )
        return str(conversation).encode(), event.model_dump_json().encode()


def people(site_id: str, prefix: str, count: int, rng: random.Random) -> list[Person]:
    return [
        Person(
            site_id=site_id,
            visitor_id=f"{prefix}{n}",
            validation=pick(rng, VALIDATIONS),
            campaign=pick(rng, CAMPAIGNS),
            cart_value=round(rng.uniform(0, 1500), 2) if rng.random() < 0.7 else 0.0,
            score=round(rng.uniform(0, 100), 1),
        )
        for n in range(count)
    ]


# ---- leads.events, read by this script ---------------------------------------------------------


@dataclass
class Tap:
    """A consumer of `leads.events` from its current end (no group): per `lead.assigned` of the
    watched sites, the lead's visitor with the record's broker time and when it arrived here;
    per SLA event, its timer."""

    bootstrap: str
    assigned: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    assigned_twice: int = 0
    sla: dict[str, tuple[float, float]] = field(default_factory=dict)  # timer → (broker, here)
    sla_twice: int = 0
    sla_types: Counter[str] = field(default_factory=Counter)
    records: int = 0
    _consumer: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="leads-bench-tap",
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
            max_partition_fetch_bytes=4 << 20,
        )
        await consumer.start()
        partitions = [TopicPartition(LEADS_EVENTS.name, n) for n in range(LEADS_EVENTS.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            arrived = time.time()
            for records in batches.values():
                self.records += len(records)
                for record in records:
                    value = record.value or b""
                    if b'"type":"lead.assigned"' in value:
                        event = orjson.loads(value)
                        site = self.assigned.setdefault(event["site_id"], {})
                        if event["visitor_id"] in site:
                            self.assigned_twice += 1
                        else:
                            site[event["visitor_id"]] = (record.timestamp / 1000, arrived)
                    elif b'"type":"lead.sla_' in value:
                        event = orjson.loads(value)
                        timer = event["payload"]["timer_id"]
                        self.sla_types[event["type"]] += 1
                        if timer in self.sla:
                            self.sla_twice += 1
                        else:
                            self.sla[timer] = (record.timestamp / 1000, arrived)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def assigned_of(self, site_id: str) -> dict[str, tuple[float, float]]:
        """visitor → (broker time, arrival here) of the site's `lead.assigned` events."""
        return self.assigned.get(site_id, {})


class WaitSampler:
    """What the instance's Postgres sessions do, sampled every 50 ms (pg_stat_activity): the
    average number of sessions per state and wait event, i.e. where capture spends its time
    when it is not on the CPU (team locks, WAL flushes at commit, waiting for the service)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples = 0
        self.seen: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self.url)
        self._task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                rows = await conn.fetch(
                    """SELECT state, wait_event_type, wait_event FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()
                         AND backend_type = 'client backend' AND state <> 'idle'"""
                )
                self.samples += 1
                for row in rows:
                    waits = f"{row['wait_event_type']}:{row['wait_event']}"
                    self.seen[f"{row['state']} {waits if row['wait_event'] else 'cpu'}"] += 1
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    async def stop(self) -> dict[str, float]:
        """Average sessions per state over the samples, busiest first."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        n = max(1, self.samples)
        return {key: round(count / n, 2) for key, count in self.seen.most_common(8)}


async def start_group_at_end(bootstrap: str, group: str) -> None:
    """Commit the group's offsets at the current ends of what capture reads, so a new
    instance in it reads only what is written from now on (a shared broker's history is not
    drained into the figures)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic.name, n)
            for topic in (CHAT_EVENTS, TRACKING_EVENTS)
            for n in range(topic.partitions)
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: ends[tp] for tp in partitions})
    finally:
        await consumer.stop()


# ---- the webhook receiver (its own process) ----------------------------------------------------


def _receiver_main(ports: list[int], secret: str, commands: Any, reports: Any) -> None:
    import standardwebhooks
    from aiohttp import web

    hook = standardwebhooks.Webhook(secret)
    ids: set[str] = set()
    counts: Counter[str] = Counter()
    first_errors: list[str] = []
    times: list[float] = []  # when the first and last verified request arrived

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        webhook_id = request.headers.get("webhook-id", "")
        try:
            hook.verify(body, dict(request.headers))
        except Exception as exc:  # WebhookVerificationError, or a body that is not JSON
            counts["failed"] += 1
            if len(first_errors) < 5:
                first_errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return web.Response(status=401, text="bad signature")
        counts["verified"] += 1
        if webhook_id in ids:
            counts["duplicates"] += 1
        ids.add(webhook_id)
        now = time.time()
        if not times:
            times.append(now)
        times[1:] = [now]
        return web.Response(text="ok")

    async def main() -> None:
        runners = []
        for port in ports:
            app = web.Application()
            app.router.add_post("/hooks/beckon", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        loop = asyncio.get_running_loop()
        reports.put(("ready", None))
        while (command := await loop.run_in_executor(None, commands.get)) != "stop":
            assert command == "report"
            reports.put(
                (
                    "report",
                    {
                        **{k: counts[k] for k in ("verified", "failed", "duplicates")},
                        "distinct_ids": len(ids),
                        "first_errors": first_errors,
                        "first_at": times[0] if times else None,
                        "last_at": times[-1] if times else None,
                    },
                )
            )
        for runner in runners:
            await runner.cleanup()

    uvloop.run(main())


class Receiver:
    """The CRM: one process, one port per endpoint, verifying every signature."""

    def __init__(self, endpoints: int, secret: str) -> None:
        ctx = mp.get_context("spawn")
        self.ports = [free_port() for _ in range(endpoints)]
        self.commands: Any = ctx.Queue()
        self.reports: Any = ctx.Queue()
        self.process = ctx.Process(
            target=_receiver_main,
            args=(self.ports, secret, self.commands, self.reports),
            name="leads-bench-receiver",
            daemon=True,
        )
        self.process.start()
        kind, _ = self.reports.get(timeout=60)
        assert kind == "ready"

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}/hooks/beckon" for port in self.ports]

    def report(self) -> dict[str, Any]:
        self.commands.put("report")
        kind, body = self.reports.get(timeout=60)
        assert kind == "report"
        return dict(body)

    def stop(self) -> None:
        if self.process.is_alive():
            self.commands.put("stop")
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()


# ---- the run -----------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quiet: bool = args.json_only
        self.stack = contextlib.ExitStack()
        self.log_dir = Path(tempfile.mkdtemp(prefix="beckon-bench-leads-"))
        self.run_id = uuid.uuid4().hex[:8]
        self.rng = random.Random(args.seed)
        self.services: list[Service] = []
        self.bootstrap = ""
        self.server_url = ""
        self.broker_pids: list[int] = []
        self.postgres_pids: list[int] = []
        self.pg_settings: dict[str, str] = {}
        self.capture_url = ""
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(
                f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True
            )

    # -- what it needs --

    def start_broker(self) -> None:
        self.bootstrap, self.broker_pids = start_broker(
            self.stack, self.log_dir, self.args.bootstrap, self.say
        )

    def start_postgres(self) -> None:
        self.server_url, self.postgres_pids = start_postgres(self.stack, self.log_dir, self.say)

        async def settings() -> None:
            conn = await asyncpg.connect(self.server_url)
            try:
                for name in PG_SETTINGS:
                    self.pg_settings[name] = await conn.fetchval(f"SHOW {name}")
            finally:
                await conn.close()

        asyncio.run(settings())

    async def new_database(self, part: str, *, history: bool = False) -> str:
        """A migrated database of its own for one part (dropped at the end, after the
        instances stop)."""
        name = f"leads_bench_{part}_{self.run_id}"
        url = await create_database(self.stack, self.server_url, name)
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "leads", "migrate"],
            env=self.leads_env(url, 1, "migrate"),
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"python -m leads migrate failed:\n{done.stdout}{done.stderr}")
        self.say(f"created database {name}: {done.stdout.strip().splitlines()[-1]}")
        if history:
            await self.history(url)
        return url

    async def history(self, url: str) -> None:
        """What a store that has run for a while has (the capture parts' database): closed
        leads of other sites, and the statistics autovacuum's ANALYZE keeps. Without them
        Postgres makes the plans it keeps for the service's prepared statements on empty
        tables (within a real install's first minute only: its first ANALYZE replaces them;
        a part of this script ends sooner)."""
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, email,
                       email_key, team, status, closed_at, lost_reason, created_at, updated_at)
                   SELECT gen_random_uuid(), 'bench-history-' || (n % 10), 'h' || n,
                          'qualified', n || '@history.test', n || '@history.test', 'sales',
                          'lost', now(), 'no_answer', now() - interval '30 days', now()
                   FROM generate_series(1, $1) AS n""",
                HISTORY_LEADS,
            )
            for statement in HISTORY:  # each lead's touch, conversation, event and timers
                await conn.execute(statement)
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    def leads_env(self, database_url: str, port: int, name: str, **extra: str) -> dict[str, str]:
        return python_env(
            LEADS_DATABASE_URL=database_url,
            LEADS_KAFKA_BOOTSTRAP=self.bootstrap,
            LEADS_HOST="127.0.0.1",
            LEADS_PORT=str(port),
            LEADS_INSTANCE_ID=f"bench-{name}-{self.run_id}",
            LEADS_CONSUMER_GROUP=f"leads-bench-{name}-{self.run_id}",
            LEADS_MIGRATE_ON_START="true",
            LEADS_CREATE_TOPICS="false",
            LEADS_LOG_LEVEL="WARNING",
            LEADS_LOG_JSON="false",
            **extra,
        )

    async def start_leads(self, database_url: str, name: str, **extra: str) -> Service:
        port = free_port()
        env = self.leads_env(database_url, port, name, **extra)
        service = start_service(f"leads-{name}", [sys.executable, "-m", "leads"], env, self.log_dir)
        service.port = port
        self.services.append(service)
        self.stack.callback(service.stop)
        await asyncio.to_thread(
            wait_http_ok, service, f"http://127.0.0.1:{port}/readyz", timeout_s=180
        )
        self.say(f"started leads instance {name} at http://127.0.0.1:{port}")
        return service

    def meter(self, *services: Service, **more: list[int]) -> MachineMeter:
        groups: dict[str, list[int]] = {s.name: [s.process.pid] for s in services}
        groups["postgres"] = self.postgres_pids
        groups["broker"] = self.broker_pids
        groups.update(more)
        meter = MachineMeter(groups)
        meter.start()
        return meter

    # -- sites --

    async def seed_site(self, pool: asyncpg.Pool, site: str, agents: int, producer: Any) -> None:
        """The site as an admin leaves it: teams with a team lead, routing rules, the cap at
        its maximum, and every agent online in their team (stored as the presence follower
        stores it, and published on agents.presence at the same time so the follower agrees)."""
        await pool.execute(
            """INSERT INTO leads.sites (site_id, default_team, default_lead_cap)
               VALUES ($1, 'sales', $2)""",
            site,
            CAP,
        )
        await pool.executemany(
            "INSERT INTO leads.teams (site_id, team, name, lead_agent_id) VALUES ($1, $2, $3, $4)",
            [(site, team, team.title(), f"{team}-000") for team in TEAMS],
        )
        rules = parse_routing(ROUTING, teams=set(TEAMS))
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            await RoutingStore(conn).save(site, rules, by=None, now=now)
        uow = UnitOfWorkFactory(pool, on_commit=lambda: None)
        for team in TEAMS:
            members = [
                AgentPresence(
                    agent_id=f"{team}-{n:03d}",
                    name=f"{team.title()} {n:03d}",
                    status="online",
                    open_chats=0,
                    max_chats=5,
                )
                for n in range(agents)
            ]
            await apply_presence(
                uow=uow, site_id=site, team=team, agents=members, as_of=now, now=now
            )
            record = TeamPresence(
                event_id=uuid7(), occurred_at=now, site_id=site, team=team, agents=members
            )
            await producer.send_and_wait(
                AGENTS_PRESENCE.name,
                record.model_dump_json().encode(),
                key=presence_key(site, team),
            )

    def agents_for(self, leads: int) -> int:
        """Agents per team so that every lead finds one below the cap (no queue)."""
        needed = max(int(self.args.agents), math.ceil(1.25 * leads / CAP))
        if needed > MAX_AGENTS:
            raise SystemExit(f"{leads} leads need more than {MAX_AGENTS} agents per team")
        return needed

    # -- parts 1 and 2: capture → assignment --

    async def capture_parts(self, parts: set[str]) -> dict[str, Any]:
        args = self.args
        out: dict[str, Any] = {}
        url = self.capture_url = await self.new_database("capture", history=True)
        bulk, live = f"bench-bulk-{self.run_id}", f"bench-live-{self.run_id}"
        live_count = math.ceil(args.rate * (args.warmup + args.seconds))
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, max_batch_size=262_144
        )
        await producer.start()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        tap = Tap(self.bootstrap)
        try:
            agents = {
                bulk: self.agents_for(args.leads if "throughput" in parts else 0),
                live: self.agents_for(live_count if "latency" in parts else 0),
            }
            for site, count in agents.items():
                await self.seed_site(pool, site, count, producer)
            self.say(
                f"seeded sites {bulk} and {live}: teams {', '.join(TEAMS)}, "
                f"{agents[bulk]} / {agents[live]} agents online per team, cap {CAP}"
            )
            name = "capture"
            await start_group_at_end(self.bootstrap, f"leads-bench-{name}-{self.run_id}")
            await tap.start()
            bulk_people = people(bulk, f"b{self.run_id}-", args.leads, self.rng)
            if "throughput" in parts:
                now = datetime.now(UTC)
                for person in bulk_people:
                    key, value = person.state(now)
                    await producer.send(VISITORS_STATE.name, value, key=key)
                for person in bulk_people:
                    key, value = person.mark(now)
                    await producer.send(CHAT_EVENTS.name, value, key=key)
                await producer.flush()
                self.say(f"-- throughput: wrote {args.leads:,} lead marks with no instance running")
            launched = time.time()
            instance = await self.start_leads(
                url,
                name,
                LEADS_CAPTURE_ENABLED="true",
                LEADS_CAPTURE_VISITOR_STATES_WAIT_S="60",
            )
            ready = time.time()
            if "throughput" in parts:
                out["throughput"] = await self.throughput(
                    tap, bulk, bulk_people, instance, pool, launched, ready
                )
            if "latency" in parts:
                out["latency"] = await self.latency(tap, live, live_count, producer, instance, pool)
            out["server_log"] = log_problems(instance.log_path)
        finally:
            await tap.stop()
            await pool.close()
            await producer.stop()
        return out

    async def throughput(
        self,
        tap: Tap,
        site: str,
        persons: list[Person],
        instance: Service,
        pool: asyncpg.Pool,
        launched: float,
        ready: float,
    ) -> dict[str, Any]:
        args = self.args
        meter = self.meter(instance)
        sampler = WaitSampler(self.capture_url)
        await sampler.start()
        metered = time.monotonic()
        deadline = time.monotonic() + args.drain_timeout
        last_print = time.monotonic()
        while len(tap.assigned_of(site)) < len(persons) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if time.monotonic() - last_print >= 5:
                last_print = time.monotonic()
                self.say(f"   {len(tap.assigned_of(site)):,}/{len(persons):,} assigned")
        cpu = meter.stop()
        metered = time.monotonic() - metered
        sessions = await sampler.stop()
        got = tap.assigned_of(site)
        broker_times = sorted(ts for ts, _ in got.values())
        arrivals = sorted(at for _, at in got.values())
        span = broker_times[-1] - broker_times[0] if len(broker_times) > 1 else 0.0
        counts = await self.lead_counts(pool, site)
        result = {
            "leads": len(persons),
            "assigned": len(got),
            "not_assigned": len(persons) - len(got),
            "leads_per_s": round((len(got) - 1) / span, 1) if span > 0 else None,
            "span_s": round(span, 3),
            "leads_per_s_from_ready": round(len(got) / (arrivals[-1] - ready), 1)
            if arrivals
            else None,
            "instance_start_s": round(ready - launched, 2),
            "first_assigned_after_ready_s": round(arrivals[0] - ready, 2) if arrivals else None,
            "database": counts,
            "cpu_pct_of_core": cpu,
            "cpu_ms_per_lead": cpu_ms_each(cpu, metered, len(got)),
            "postgres_sessions": sessions,
        }
        self.say(
            f"   {len(got):,}/{len(persons):,} assigned: {result['leads_per_s']} leads/s between "
            f"the first and the last ({span:.2f} s); {result['leads_per_s_from_ready']}/s from "
            f"readiness; database {counts}; cpu % {cpu}; CPU ms per lead "
            f"{result['cpu_ms_per_lead']}; Postgres sessions {sessions}"
        )
        return result

    async def lead_counts(self, pool: asyncpg.Pool, site: str) -> dict[str, Any]:
        rows = await pool.fetch(
            """SELECT status, (queued_at IS NOT NULL AND assignee IS NULL) AS queued,
                      count(*) AS n
               FROM leads.leads WHERE site_id = $1 GROUP BY 1, 2""",
            site,
        )
        teams = await pool.fetch(
            "SELECT team, count(*) AS n FROM leads.leads WHERE site_id = $1 GROUP BY 1", site
        )
        over_cap = await pool.fetchval(
            """SELECT count(*) FROM (SELECT assignee FROM leads.leads
               WHERE site_id = $1 AND assignee IS NOT NULL GROUP BY assignee
               HAVING count(*) > $2) AS x""",
            site,
            CAP,
        )
        return {
            "by_status": {r["status"] + (" (queued)" if r["queued"] else ""): r["n"] for r in rows},
            "by_team": {str(r["team"]): r["n"] for r in teams},
            "agents_over_cap": over_cap,
        }

    async def latency(
        self,
        tap: Tap,
        site: str,
        count: int,
        producer: AIOKafkaProducer,
        instance: Service,
        pool: asyncpg.Pool,
    ) -> dict[str, Any]:
        args = self.args
        persons = people(site, f"l{self.run_id}-", count, self.rng)
        now = datetime.now(UTC)
        for person in persons:  # their visitors.state first, as triggers writes it
            key, value = person.state(now)
            await producer.send(VISITORS_STATE.name, value, key=key)
        await producer.flush()
        await asyncio.sleep(1.0)
        self.say(
            f"-- latency: {args.rate:g} lead marks/s for {args.seconds:g} s "
            f"(+{args.warmup:g} s warm-up), each a new person"
        )
        interval = 1.0 / args.rate
        due: dict[str, tuple[float, bool]] = {}  # visitor → (scheduled wall time, measured)
        meter = self.meter(instance)
        sampler = WaitSampler(self.capture_url)
        await sampler.start()
        cpu_started = time.process_time()
        started = time.perf_counter() + 0.01
        wall_offset = time.time() - time.perf_counter()
        opens, closes = started + args.warmup, started + args.warmup + args.seconds
        send_lag_max = 0.0
        n = 0
        while (moment := started + n * interval) < closes and n < count:
            now_pc = time.perf_counter()
            if moment > now_pc:
                await asyncio.sleep(moment - now_pc)
                continue
            person = persons[n]
            key, value = person.mark(datetime.now(UTC))
            due[person.visitor_id] = (moment + wall_offset, moment >= opens)
            await producer.send(CHAT_EVENTS.name, value, key=key)
            if moment >= opens:
                send_lag_max = max(send_lag_max, time.perf_counter() - moment)
            n += 1
        await producer.flush()
        elapsed = time.perf_counter() - started
        driver = round(100 * (time.process_time() - cpu_started) / elapsed, 1)
        cpu = meter.stop({"bench": driver})
        sessions = await sampler.stop()
        # A backlog drains as long as it moves: a lead is "not assigned" only when nothing more
        # was assigned for --grace seconds.
        seen, quiet_until = -1, time.monotonic() + args.grace
        while time.monotonic() < quiet_until:
            got = tap.assigned_of(site)
            if sum(1 for v in due if v in got) == len(due):
                break
            if len(got) != seen:
                seen, quiet_until = len(got), time.monotonic() + args.grace
            await asyncio.sleep(0.1)
        got = tap.assigned_of(site)
        measured = [v for v, (_, m) in due.items() if m]
        latencies = [got[v][1] - due[v][0] for v in measured if v in got]
        to_relay = [got[v][0] - due[v][0] for v in measured if v in got]
        counts = await self.lead_counts(pool, site)
        result = {
            "rate": args.rate,
            "marks": len(due),
            "measured": len(measured),
            "assigned": len(latencies),
            "not_assigned": sum(1 for v in due if v not in got),
            "assigned_twice": tap.assigned_twice,
            **stats_ms(latencies),
            "to_relay_p50_ms": percentile_ms(to_relay, 50),
            "to_relay_p99_ms": percentile_ms(to_relay, 99),
            "send_lag_max_ms": round(send_lag_max * 1000, 2),
            "database": counts,
            "cpu_pct_of_core": cpu,
            "postgres_sessions": sessions,
        }
        self.say(
            f"   {len(latencies):,}/{len(measured):,} measured marks assigned, "
            f"{result['not_assigned']} never: p50 {result['p50_ms']} p95 {result['p95_ms']} "
            f"p99 {result['p99_ms']} max {result['max_ms']} ms (to the relay's record: p99 "
            f"{result['to_relay_p99_ms']} ms); database {counts}; cpu % {cpu}; "
            f"Postgres sessions {sessions}"
        )
        return result

    # -- part 3: SLA timers --

    async def sla_part(self) -> dict[str, Any]:
        args = self.args
        url = await self.new_database("sla")
        site = f"bench-sla-{self.run_id}"
        instance = await self.start_leads(url, "sla", LEADS_CAPTURE_ENABLED="false")
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        tap = Tap(self.bootstrap)
        await tap.start()
        try:
            await pool.execute(
                "INSERT INTO leads.sites (site_id, default_team) VALUES ($1, 'sales')", site
            )
            await pool.execute(
                """INSERT INTO leads.teams (site_id, team, name, lead_agent_id)
                   VALUES ($1, 'sales', 'Sales', 'sales-000')""",
                site,
            )
            started = time.perf_counter()
            await pool.execute(
                """INSERT INTO leads.leads (lead_id, site_id, visitor_id, status, validation, team,
                                            assignee, created_at, updated_at, assigned_at)
                   SELECT gen_random_uuid(), $1, 's-' || g, 'assigned', 'ready_to_buy', 'sales',
                          'sales-' || lpad((g % 20)::text, 3, '0'), now(), now(), now()
                   FROM generate_series(1, $2) AS g""",
                site,
                args.timers,
            )
            leads_s = time.perf_counter() - started
            # One timer per lead: a warning at 50 % or 80 % (its breach after the window, so it
            # is not stale), or the breach itself, due evenly over the window from lead-in on.
            async with pool.acquire() as conn, conn.transaction():
                base: datetime = await conn.fetchval(
                    "SELECT clock_timestamp() + make_interval(secs => $1::float8)", args.sla_lead_in
                )
                await conn.execute(
                    """INSERT INTO leads.timers (lead_id, site_id, kind, at_percent, assignee,
                                                 deadline_at, due_at)
                       SELECT lead_id, site_id,
                              CASE WHEN g % 3 = 0 THEN 'breach' ELSE 'warning' END,
                              CASE g % 3 WHEN 0 THEN 100 WHEN 1 THEN 50 ELSE 80 END,
                              assignee, due + make_interval(secs => $5::float8 * share), due
                       FROM (SELECT lead_id, site_id, assignee, g,
                                    CASE g % 3 WHEN 0 THEN 0.0 WHEN 1 THEN 0.5 ELSE 0.2 END
                                      ::float8 AS share,
                                    $2::timestamptz
                                      + make_interval(secs => $3::float8 * (g - 1) / $4::float8)
                                      AS due
                             FROM (SELECT lead_id, site_id, assignee,
                                          substr(visitor_id, 3)::int AS g
                                   FROM leads.leads WHERE site_id = $1) AS l) AS t""",
                    site,
                    base,
                    float(args.sla_window),
                    float(args.timers),
                    SLA_ALLOWED_S,
                )
                await conn.execute("SELECT pg_notify($1, $2)", TIMERS_CHANNEL, base.isoformat())
            committed = datetime.now(UTC)
            self.say(
                f"-- sla: {args.timers:,} pending timers due over {args.sla_window:g} s from "
                f"{(base - committed).total_seconds():.1f} s after the insert "
                f"(leads inserted in {leads_s:.1f} s)"
            )
            if committed > base:
                self.say("   WARNING: the insert committed after the first timers were due")
            meter = self.meter(instance)
            end = base + timedelta(seconds=args.sla_window)
            pending, moved = args.timers, time.monotonic()
            while True:  # until none is pending, or none fired for --grace s after the window
                await asyncio.sleep(0.5)
                left = await pool.fetchval(
                    """SELECT count(*) FROM leads.timers
                       WHERE fired_at IS NULL AND cancelled_at IS NULL"""
                )
                if left != pending:
                    pending, moved = left, time.monotonic()
                stuck = time.monotonic() - moved > args.grace
                if pending == 0 or (datetime.now(UTC) > end and stuck):
                    break
            cpu = meter.stop()
            seen, moved = -1, time.monotonic()
            while len(tap.sla) < args.timers and time.monotonic() - moved < args.grace:
                if len(tap.sla) != seen:
                    seen, moved = len(tap.sla), time.monotonic()
                await asyncio.sleep(0.2)
            row = await pool.fetchrow(
                """SELECT count(*) FILTER (WHERE fired_at IS NOT NULL) AS fired,
                          count(*) FILTER (WHERE cancelled_at IS NOT NULL) AS cancelled,
                          count(*) FILTER (WHERE fired_at IS NULL AND cancelled_at IS NULL)
                            AS pending,
                          count(*) FILTER (WHERE fired_at < due_at) AS early,
                          count(DISTINCT due_at) AS distinct_due
                   FROM leads.timers"""
            )
            timers = await pool.fetch(
                """SELECT timer_uuid::text AS id, extract(epoch FROM due_at)::float8 AS due,
                          extract(epoch FROM fired_at - due_at)::float8 AS lag
                   FROM leads.timers WHERE fired_at IS NOT NULL"""
            )
            lags = [r["lag"] for r in timers]
            # the event's payload names the lead's deadline; a warning's own due time is the row's
            event_lags = [tap.sla[r["id"]][0] - r["due"] for r in timers if r["id"] in tap.sla]
            without_event = sum(1 for r in timers if r["id"] not in tap.sla)
            table = stats_ms(lags)
            events = stats_ms(event_lags)
            result = {
                "timers": args.timers,
                "window_s": args.sla_window,
                "fired": row["fired"],
                "cancelled": row["cancelled"],
                "pending": row["pending"],
                "fired_early": row["early"],
                "distinct_due_times": row["distinct_due"],
                # only this part's timers: an instance of an earlier part may still fire its own
                "events": len(set(tap.sla) & {r["id"] for r in timers}),
                "fired_without_event": without_event,
                "events_twice": tap.sla_twice,
                "event_types": dict(tap.sla_types),
                "fire_lag": table,
                "event_lag": events,
                "cpu_pct_of_core": cpu,
                "server_log": log_problems(instance.log_path),
            }
            self.say(
                f"   fired {row['fired']:,} (cancelled {row['cancelled']}, pending "
                f"{row['pending']}); fired_at - due_at p50 {table['p50_ms']} p99 "
                f"{table['p99_ms']} max {table['max_ms']} ms; on leads.events p50 "
                f"{events['p50_ms']} p99 {events['p99_ms']} max {events['max_ms']} ms "
                f"({len(tap.sla):,} timers' events, {tap.sla_twice} twice); cpu % {cpu}"
            )
            return result
        finally:
            await tap.stop()
            await pool.close()
            await asyncio.to_thread(instance.stop)

    # -- part 4: webhooks --

    async def webhooks_part(self) -> dict[str, Any]:
        args = self.args
        url = await self.new_database("webhooks")
        site = f"bench-hooks-{self.run_id}"
        secret = str(WebhookSecret.generate())
        receiver = Receiver(args.webhook_endpoints, secret)
        self.stack.callback(receiver.stop)
        instance = await self.start_leads(
            url,
            "webhooks",
            LEADS_CAPTURE_ENABLED="false",
            LEADS_WEBHOOK_ALLOW_HTTP="true",
            LEADS_WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
        )
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            now = datetime.now(UTC)
            endpoints = []
            async with pool.acquire() as conn:
                for target in receiver.urls():
                    endpoint = await WebhookStore(conn).add_endpoint(
                        site_id=site,
                        endpoint_id=uuid.uuid4(),
                        url=target,
                        description="bench CRM",
                        event_types=["lead.assigned"],
                        secret=secret,
                        now=now,
                    )
                    endpoints.append(endpoint.endpoint_id)
            rows = list(self.deliveries(site, endpoints, args.webhooks))
            self.say(
                f"-- webhooks: {args.webhooks:,} signed deliveries to {len(endpoints)} "
                f"endpoint(s) of a receiver that verifies each (standardwebhooks, own process)"
            )
            async with pool.acquire() as conn:
                await conn.copy_records_to_table(
                    "webhook_deliveries",
                    schema_name="leads",
                    columns=["endpoint_id", "site_id", "message_id", "event_type", "body"],
                    records=rows,
                )
            queued = time.perf_counter()
            meter = self.meter(instance, receiver=[receiver.pid])
            pending = args.webhooks
            deadline = queued + args.drain_timeout
            while time.perf_counter() < deadline:
                pending = await pool.fetchval(
                    "SELECT count(*) FROM leads.webhook_deliveries WHERE status = 'pending'"
                )
                if pending == 0:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - queued
            cpu = meter.stop()
            received = await asyncio.to_thread(receiver.report)
            row = await pool.fetchrow(
                """SELECT count(*) FILTER (WHERE status = 'delivered') AS delivered,
                          count(*) FILTER (WHERE status = 'failed') AS failed,
                          count(*) FILTER (WHERE attempts > 1) AS retried,
                          extract(epoch FROM max(delivered_at) - min(delivered_at))::float8
                            AS span_s
                   FROM leads.webhook_deliveries"""
            )
            span = row["span_s"] or 0.0
            result = {
                "deliveries": args.webhooks,
                "endpoints": len(endpoints),
                "webhooks_per_s": round(args.webhooks / elapsed, 1) if pending == 0 else None,
                "seconds": round(elapsed, 2),
                "webhooks_per_s_first_to_last": round((row["delivered"] - 1) / span, 1)
                if span > 0
                else None,
                "pending": pending,
                "delivered": row["delivered"],
                "failed": row["failed"],
                "retried": row["retried"],
                "receiver": received,
                "cpu_pct_of_core": cpu,
                "cpu_ms_per_delivery": cpu_ms_each(cpu, elapsed, row["delivered"]),
                "server_log": log_problems(instance.log_path),
            }
            self.say(
                f"   {row['delivered']:,} delivered in {elapsed:.2f} s = "
                f"{result['webhooks_per_s']}/s; receiver verified {received['verified']:,} "
                f"({received['distinct_ids']:,} distinct ids, {received['failed']} failed, "
                f"{received['duplicates']} again); cpu % {cpu}; CPU ms per delivery "
                f"{result['cpu_ms_per_delivery']}"
            )
            return result
        finally:
            await pool.close()
            await asyncio.to_thread(instance.stop)
            await asyncio.to_thread(receiver.stop)

    def deliveries(
        self, site: str, endpoints: list[uuid.UUID], count: int
    ) -> Iterator[tuple[uuid.UUID, str, str, str, bytes]]:
        """Queue rows as `events.emit` writes them: the exact `leads.events` body of a
        `lead.assigned`, its `webhook-id`, one endpoint after the other."""
        now = datetime.now(UTC)
        for n in range(count):
            lead_id = uuid.uuid4()
            agent = f"sales-{n % 20:03d}"
            event = LeadAssigned.model_validate(
                {
                    "event_id": uuid7(),
                    "occurred_at": now,
                    "site_id": site,
                    "lead_id": lead_id,
                    "visitor_id": f"h-{n}",
                    "payload": {
                        "seq": 3,
                        "lead": {
                            "status": "assigned",
                            "validation": "qualified",
                            "team": "sales",
                            "agent_id": agent,
                            "contact": {"email": f"h-{n}@bench.test", "name": f"Person {n}"},
                        },
                        "team": "sales",
                        "agent_id": agent,
                        "how": "auto",
                        "first_contact_due_at": now + timedelta(minutes=30),
                    },
                }
            )
            body = event.model_dump_json().encode()
            endpoint = endpoints[n % len(endpoints)]
            yield endpoint, site, message_id(event.event_id), event.type, body

    # -- everything --

    def run(self) -> dict[str, Any]:
        args = self.args
        parts = set(args.parts)
        facts = machine_facts()
        results: dict[str, Any] = {}
        with self.stack:
            try:
                self.start_broker()
                self.start_postgres()
                if parts & {"throughput", "latency"}:
                    results.update(uvloop.run(self.capture_parts(parts)))
                if "sla" in parts:
                    results["sla"] = uvloop.run(self.sla_part())
                if "webhooks" in parts:
                    results["webhooks"] = uvloop.run(self.webhooks_part())
            except BaseException:
                for service in self.services:
                    self.say(f"{service.name} log ({service.log_path}):\n{tail(service.log_path)}")
                self.say(f"logs kept in {self.log_dir}")
                raise
        if not args.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        facts["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        facts["seconds_total"] = round(time.monotonic() - self.started, 1)
        return self.figures(results, facts)

    def figures(self, p: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
        args = self.args
        thr, lat = p.get("throughput"), p.get("latency")
        sla, hooks = p.get("sla"), p.get("webhooks")
        f: dict[str, Any] = {
            "bench": "leads",
            "p99_lead_assigned_ms": lat["p99_ms"] if lat else None,
            "p95_lead_assigned_ms": lat["p95_ms"] if lat else None,
            "p50_lead_assigned_ms": lat["p50_ms"] if lat else None,
            "max_lead_assigned_ms": lat["max_ms"] if lat else None,
            "leads_not_assigned": (lat["not_assigned"] if lat else 0)
            + (thr["not_assigned"] if thr else 0),
            "leads_per_s": thr["leads_per_s"] if thr else None,
            "leads_per_s_from_ready": thr["leads_per_s_from_ready"] if thr else None,
            "sla_fire_lag_p50_ms": sla["fire_lag"]["p50_ms"] if sla else None,
            "sla_fire_lag_p99_ms": sla["fire_lag"]["p99_ms"] if sla else None,
            "sla_fire_lag_max_ms": sla["fire_lag"]["max_ms"] if sla else None,
            "sla_event_lag_p99_ms": sla["event_lag"]["p99_ms"] if sla else None,
            "webhooks_per_s": hooks["webhooks_per_s"] if hooks else None,
            "webhooks_verified": hooks["receiver"]["verified"] if hooks else None,
        }
        problems: list[str] = []
        if f["leads_not_assigned"]:
            problems.append(f"{f['leads_not_assigned']} leads not assigned")
        for part in (thr, lat):
            if part and (part["database"]["agents_over_cap"] or part.get("assigned_twice")):
                problems.append("an agent over the cap or a lead assigned twice")
        if lat and lat["assigned_twice"]:
            problems.append(f"{lat['assigned_twice']} lead.assigned events for a lead already seen")
        if sla:
            if sla["fired"] != sla["timers"] or sla["cancelled"] or sla["pending"]:
                problems.append(
                    f"SLA: {sla['fired']} of {sla['timers']} fired, {sla['cancelled']} cancelled"
                )
            if sla["distinct_due_times"] != sla["timers"]:
                problems.append(f"SLA: only {sla['distinct_due_times']} distinct due times")
            if sla["events"] != sla["timers"] or sla["events_twice"] or sla["fired_without_event"]:
                problems.append(
                    f"SLA: events for {sla['events']} timers, {sla['events_twice']} twice"
                )
        if hooks:
            r = hooks["receiver"]
            if not (
                r["verified"] == r["distinct_ids"] == hooks["deliveries"] == hooks["delivered"]
            ):
                problems.append(
                    f"webhooks: {r['verified']} verified, {r['distinct_ids']} distinct, "
                    f"{hooks['delivered']} delivered of {hooks['deliveries']}"
                )
            if r["failed"] or r["duplicates"] or hooks["failed"]:
                problems.append(f"webhooks: {r['failed']} bad signatures, {r['duplicates']} again")
        logs = [p.get("server_log"), sla and sla["server_log"], hooks and hooks["server_log"]]
        log_errors = sum(entry["count"] for entry in logs if entry)
        if log_errors:
            problems.append(f"{log_errors} error lines in the instances' logs")
        f["server_log_errors"] = log_errors
        f["problems"] = problems
        f["valid"] = not problems
        f["targets_met"] = {
            key: None if f[key] is None else (f[key] >= bound if op == ">=" else f[key] < bound)
            for key, (op, bound) in TARGETS.items()
        }
        f["parts"] = p
        f["config"] = {
            "parts": list(args.parts),
            "leads": args.leads,
            "rate": args.rate,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "timers": args.timers,
            "sla_window_s": args.sla_window,
            "webhooks": args.webhooks,
            "webhook_endpoints": args.webhook_endpoints,
            "agents_per_team_min": args.agents,
            "broker": args.bootstrap or f"apache kafka {KAFKA_VERSION} (embedded, same machine)",
            "postgres": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
            "postgres_settings": self.pg_settings,
        }
        f["machine"] = facts
        if args.keep_logs:
            f["logs"] = str(self.log_dir)
        return f


def print_summary(f: dict[str, Any]) -> None:
    p = f["parts"]
    print()
    if (lat := p.get("latency")) is not None:
        print(
            f"lead mark → lead.assigned at {lat['rate']:g}/s: p50 {lat['p50_ms']} p95 "
            f"{lat['p95_ms']} p99 {lat['p99_ms']} max {lat['max_ms']} ms over "
            f"{lat['measured']:,} leads; {lat['not_assigned']} not assigned"
        )
    if (thr := p.get("throughput")) is not None:
        print(
            f"one instance: {thr['leads_per_s']} leads/s captured, routed and assigned "
            f"({thr['assigned']:,} of {thr['leads']:,}; {thr['leads_per_s_from_ready']}/s "
            f"counted from readiness)"
        )
    if (sla := p.get("sla")) is not None:
        print(
            f"SLA: {sla['fired']:,} of {sla['timers']:,} timers fired over {sla['window_s']:g} s; "
            f"fired_at - due_at p50 {sla['fire_lag']['p50_ms']} p99 {sla['fire_lag']['p99_ms']} "
            f"max {sla['fire_lag']['max_ms']} ms; event on leads.events p99 "
            f"{sla['event_lag']['p99_ms']} ms"
        )
    if (hooks := p.get("webhooks")) is not None:
        print(
            f"webhooks: {hooks['webhooks_per_s']} signed deliveries/s "
            f"({hooks['receiver']['verified']:,} verified of {hooks['deliveries']:,})"
        )
    for key, (op, bound) in TARGETS.items():
        met = f["targets_met"][key]
        verdict = "not measured" if met is None else "met" if met else "MISSED"
        print(f"target {key} {op} {bound:,}: {f[key]} -> {verdict}")
    for problem in f["problems"]:
        print(f"PROBLEM: {problem}")
    if not f["valid"]:
        print("INVALID RUN")
    print(
        f"load average {f['machine']['load_avg_at_start']} at the start, "
        f"{f['machine']['load_avg_at_end']} at the end; {f['machine']['seconds_total']} s in all. "
        "Other work on this machine moves these figures: compare runs, not single numbers."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add(
        "--parts",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=list(PARTS),
        help=f"comma-separated, from {','.join(PARTS)} (default: all)",
    )
    add("--leads", type=int, default=20_000, help="lead marks pre-loaded for the throughput part")
    add("--rate", type=float, default=200.0, help="lead marks per second in the latency part")
    add("--seconds", type=float, default=30.0, help="measured seconds of the latency part")
    add("--warmup", type=float, default=5.0, help="unmeasured seconds before them")
    add(
        "--grace",
        type=float,
        default=15.0,
        help="seconds without progress before the missing results count as lost",
    )
    add("--agents", type=int, default=20, help="agents online per team, at least")
    add("--timers", type=int, default=100_000, help="pending SLA timers")
    add("--sla-window", type=float, default=100.0, help="seconds the timers are due over")
    add("--sla-lead-in", type=float, default=5.0, help="seconds from the insert to the first due")
    add("--webhooks", type=int, default=20_000, help="webhook deliveries queued")
    add("--webhook-endpoints", type=int, default=1, help="endpoints (receiver ports) they go to")
    add("--drain-timeout", type=float, default=600.0, help="give up on a backlog after this")
    add("--seed", type=int, default=15, help="random seed of the people")
    add("--bootstrap", help="use this running broker (HOST:PORT) instead of starting Apache Kafka")
    add("--keep-logs", action="store_true", help="keep the instances' logs")
    add("--json-only", action="store_true", help="print only the RESULT line")
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown or not args.parts:
        parser.error(f"--parts takes some of {','.join(PARTS)}, not {','.join(unknown) or '-'}")
    if min(args.leads, args.timers, args.webhooks, args.webhook_endpoints, args.agents) < 1:
        parser.error("--leads, --timers, --webhooks, --webhook-endpoints and --agents must be >= 1")
    if args.rate <= 0 or args.seconds <= 0 or args.sla_window <= 0:
        parser.error("--rate, --seconds and --sla-window must be positive")
    return args


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: every server is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    figures = Bench(args).run()
    if not args.json_only:
        print_summary(figures)
    print("RESULT " + json.dumps(figures, separators=(",", ":")), flush=True)
    return 0 if figures["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
