"""Notifier: transcripts per second, conversation closed → SMTP 250, e-mailed reply → console.

    uv run python bench/notifier.py               # 5,000 transcripts; 30 closes/s for 30 s;
                                                  # 20 replies/s for 30 s (about 3 minutes)
    uv run python bench/notifier.py --conversations 500 --seconds 5 --reply-seconds 5 \\
        --reply-conversations 5                   # smoke

Starts Apache Kafka (or uses --bootstrap), Postgres (a fresh database `notifier_bench_<random>`
on DATABASE_URL's server, else an embedded Postgres like the test fixtures; dropped at the end),
an SMTP server of its own (aiosmtpd in its own process, uvloop, that only records each
recipient, its Message-ID and the time of its 250: no parsing, so the figures are the
notifier's) and one `python -m notifier` instance as the service runs
(NOTIFIER_MIGRATE_ON_START=true, a consumer group of its own whose offsets start at the topics'
current ends, so a shared broker's history is not read; the per-site hourly limit lifted to its
maximum, as the other benches lift rate limits: one site plays thousands of conversations).
Every fact is built from the `chat.events` contract (as the notifier's tests build them) and
produced keyed by its conversation. Parts (`--parts`, default all, in this order):
  1. throughput: --conversations conversations (distinct visitors and addresses, dealt over
     --sites sites, default one busy site; started,
     e-mail captured, three messages, closed) are written to `chat.events` while no instance
     runs (a backlog, as after an outage or a deploy: the instance's drain rate, not the
     producer's pace); then the instance starts, takes them in and sends a transcript for each.
     `emails_per_s` = transcripts accepted by the SMTP server / (last 250 - first 250); also
     from the instance's readiness to the last 250, and the intake's own pace (the
     transcripts' `created_at` span). Each conversation must get exactly one transcript
     (counted per recipient, every Message-ID distinct) or the run is invalid.
  2. latency: on the same instance, new conversations at --rate per second (open loop) for
     --seconds after --warmup; each one's opening facts go out --lead seconds before its
     close, and the close at its scheduled time. Latency = the SMTP server's 250 for that
     recipient - the close's scheduled send time; p50/p95/p99/max, and transcripts lost
     (nothing more for --grace s) must be 0. Split at the e-mail's intent (`created_at`).
  3. replies: `python -m chat` starts too (its own database, migrated and seeded with site
     `bench`, team `sales` and one agent, CHAT_* as bench/chat.py sets them, a consumer group of
     its own); the agent logs in, goes online and opens the console WebSocket;
     --reply-conversations visitors start conversations through the widget API, which chat
     assigns to that agent and publishes on `chat.events` through its outbox, so the notifier
     learns them. Then replies by e-mail (raw RFC 5322, To: the conversation's reply address
     signed with ReplyTokens and the NOTIFIER_REPLY_SECRETS the instance has) are POSTed to
     the notifier's `/v1/inbound/mail` (Bearer NOTIFIER_INBOUND_SECRET) at --reply-rate per
     second (open loop) for --reply-seconds after --warmup. Latency = the `message` frame with
     that text on the agent's socket - the POST's scheduled send time; p50/p95/p99/max, and
     replies lost (must be 0) or answered other than 202. Split at the command's record on
     `chat.inbound` (read by this script): the notifier's part and chat's.
Each part reports CPU per process group (notifier, postgres, broker, smtp, chat, the bench's
own driver) and `others` (the rest of the machine), and the throughput part CPU milliseconds
per e-mail per group (steadier than the rate when other work shares the cores) and what the
instance's Postgres sessions were doing (pg_stat_activity sampled every 50 ms, with the
statements seen most). The transcript parts also report `result_unwritten_ms`: the
instance's `notifier_result_unwritten_seconds` for that part (from each SMTP 250 to its result
written: the window in which a crash sends an e-mail twice), read from its /metrics
(NOTIFIER_METRICS_PORT). The last line is `RESULT {json}`; exit code 1 when the run is not
valid. `--py-spy DIR` samples the instance during the throughput part.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `bench` importable, bench/ not shadowing services
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
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import asyncpg
import httpx
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from beckon_contracts.chat_events import (
    ConversationClosed,
    ConversationClosedPayload,
    ConversationStarted,
    ConversationStartedPayload,
    EmailCaptured,
    EmailCapturedPayload,
    MessageSent,
    MessageSentPayload,
)
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import (
    CHAT_EVENTS,
    CHAT_INBOUND,
    CHAT_INVITATIONS,
    LEADS_EVENTS,
    TRACKING_EVENTS,
    Topic,
)
from beckon_devstack.kafka import KAFKA_VERSION
from beckon_devstack.ports import free_port
from beckon_edge.tokens import Signer
from notifier.domain.tokens import ReplyTokens, reply_address
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection

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
from bench.chat import (
    AGENT_PASSWORD,
    COOKIE,
    ORIGIN,
    SITE_ID,
    TEAM,
    TOKEN_TTL_S,
    agent_email,
    read_hello,
    seed_yaml,
    ws_connect,
)
from bench.chat import SECRET as CHAT_SECRET

PARTS = ("throughput", "latency", "replies")
TARGETS = {
    "emails_per_s": (">=", 300),
    "p99_close_to_smtp_ms": ("<", 500),
    "p99_reply_to_console_ms": ("<", 500),
}
REPLY_SECRET = "bench-reply-secret-0123456789abcdef"  # a throwaway bench secret
INBOUND_SECRET = "bench-inbound-secret-0123456789abcdef"
REPLY_DOMAIN = "reply.bench.test"
PER_SITE_HOUR_MAX = "10000000"  # notifier.config.Settings.per_site_hour's upper bound
PG_SETTINGS = ("server_version", "fsync", "synchronous_commit", "shared_buffers", "max_connections")
QUESTIONS = (
    "Hi! Do these boots run small? I usually take a 39 but my feet are a bit wide.",
    "Can I still get the winter jacket in dark green, size M, before Friday?",
    "Is there a discount if I order the sofa and the two armchairs together?",
)
ANSWERS = (
    "They run a little small: take half a size up, and you can return them for free.",
    "Yes, we have three left in the Helsinki warehouse; order today and it ships tomorrow.",
    "Yes: 10 % off the set, and delivery to your door is included above 500 €.",
)


def stats_ms(samples_s: Sequence[float]) -> dict[str, float | None]:
    return {
        "p50_ms": percentile_ms(samples_s, 50),
        "p95_ms": percentile_ms(samples_s, 95),
        "p99_ms": percentile_ms(samples_s, 99),
        "max_ms": round(max(samples_s) * 1000, 2) if samples_s else None,
    }


def cpu_ms_each(cpu_pct: dict[str, float], seconds: float, count: int) -> dict[str, float]:
    """CPU milliseconds per item of each process group; `machine` is everything that ran."""
    if count <= 0:
        return {}
    return {name: round(pct / 100 * seconds * 1000 / count, 3) for name, pct in cpu_pct.items()}


# ---- conversations: chat.events facts, from the contracts --------------------------------------


@dataclass(frozen=True)
class Talk:
    """One conversation with a captured address, as chat publishes it (cf. the notifier's
    tests' `Talk`): started, e-mail captured, visitor / agent / visitor, closed."""

    site_id: str
    visitor_id: str
    email: str
    language: str
    conversation_id: uuid.UUID = field(default_factory=uuid7)

    @property
    def key(self) -> bytes:
        return str(self.conversation_id).encode()

    def _env(self, now: datetime) -> dict[str, Any]:
        return {
            "event_id": uuid7(),
            "occurred_at": now,
            "site_id": self.site_id,
            "visitor_id": self.visitor_id,
        }

    def opening(self, now: datetime, n: int) -> list[bytes]:
        """Every fact before the close (values)."""
        c = self.conversation_id
        facts: list[Any] = [
            ConversationStarted(
                **self._env(now),
                payload=ConversationStartedPayload(
                    conversation_id=c,
                    team="sales",
                    language=self.language,  # type: ignore[arg-type]
                ),
            ),
            EmailCaptured(
                **self._env(now), payload=EmailCapturedPayload(conversation_id=c, email=self.email)
            ),
        ]
        lines = [
            ("visitor", QUESTIONS[n % len(QUESTIONS)]),
            ("agent", ANSWERS[n % len(ANSWERS)]),
            ("visitor", "Great, thank you! I'll order now."),
        ]
        for seq, (author, text) in enumerate(lines, start=1):
            facts.append(
                MessageSent(
                    **self._env(now),
                    payload=MessageSentPayload(
                        conversation_id=c,
                        message_id=uuid.uuid4(),
                        seq=seq,
                        author=author,  # type: ignore[arg-type]
                        agent_id="agent-007" if author == "agent" else None,
                        agent_name="Mikko" if author == "agent" else None,
                        text=text,
                        sent_at=now,
                    ),
                )
            )
        return [fact.model_dump_json().encode() for fact in facts]

    def closed(self, now: datetime) -> bytes:
        return (
            ConversationClosed(
                **self._env(now),
                payload=ConversationClosedPayload(
                    conversation_id=self.conversation_id,
                    closed_by="agent",
                    agent_id="agent-007",
                    team="sales",
                    messages=3,
                    email=None,
                ),
            )
            .model_dump_json()
            .encode()
        )


def histogram_buckets(text: str, name: str) -> list[tuple[float, float]]:
    """A Prometheus histogram's cumulative buckets (upper bound, count), summed over its
    series, from a /metrics page."""
    counts: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == name:
            for sample in family.samples:
                if sample.name == f"{name}_bucket":
                    le = float(sample.labels["le"])
                    counts[le] = counts.get(le, 0.0) + sample.value
    return sorted(counts.items())


def talks(site_prefix: str, prefix: str, count: int, sites: int) -> list[Talk]:
    """`count` conversations dealt over `sites` sites (`<site_prefix>-<n>`)."""
    return [
        Talk(
            site_id=f"{site_prefix}-{n % sites}",
            visitor_id=f"{prefix}{n}",
            email=f"{prefix}{n}@mail.bench.test",
            language="fi" if n % 3 == 0 else "en",
        )
        for n in range(count)
    ]


# ---- the SMTP server (its own process) ---------------------------------------------------------


def _message_id(raw: bytes) -> str:
    head = raw[: raw.find(b"\r\n\r\n")].lower()
    start = head.find(b"\nmessage-id:")
    if start < 0:
        return ""
    end = head.find(b"\r\n", start + 1)
    return head[start + 12 : end if end > 0 else len(head)].strip().decode(errors="replace")


def _smtp_main(port: int, commands: Any, reports: Any) -> None:
    from aiosmtpd.smtp import SMTP, Envelope, Session

    accepted: list[tuple[str, float, str]] = []
    taken = 0

    class Recorder:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            at = time.time()  # the 250 goes out as this returns
            raw = envelope.original_content or b""
            mid = _message_id(raw)
            for recipient in envelope.rcpt_tos:
                accepted.append((recipient.lower(), at, mid))
            return "250 2.0.0 accepted"

    async def main() -> None:
        nonlocal taken
        loop = asyncio.get_running_loop()
        recorder = Recorder()
        server = await loop.create_server(
            lambda: SMTP(recorder, hostname="bench-smtp", ident="bench SMTP", decode_data=False),
            "127.0.0.1",
            port,
        )
        reports.put(("ready", None))
        while (await loop.run_in_executor(None, commands.get)) != "stop":
            batch, taken = accepted[taken:], len(accepted)
            reports.put(("taken", batch))
        server.close()
        await server.wait_closed()

    uvloop.run(main())


class SmtpServer:
    """A recording SMTP server in its own process; `take()` returns what it accepted since the
    last call: (recipient, time of the 250, Message-ID)."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.port = free_port()
        self.commands: Any = ctx.Queue()
        self.reports: Any = ctx.Queue()
        self.process = ctx.Process(
            target=_smtp_main,
            args=(self.port, self.commands, self.reports),
            name="notifier-bench-smtp",
            daemon=True,
        )
        self.process.start()
        kind, _ = self.reports.get(timeout=60)
        assert kind == "ready"

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def take(self) -> list[tuple[str, float, str]]:
        self.commands.put("take")
        kind, batch = self.reports.get(timeout=60)
        assert kind == "taken"
        return list(batch)

    def stop(self) -> None:
        if self.process.is_alive():
            self.commands.put("stop")
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()


@dataclass
class Mailbox:
    """Everything the SMTP server accepted in this run: 250 times per recipient, Message-IDs."""

    server: SmtpServer
    times: dict[str, list[float]] = field(default_factory=dict)
    message_ids: Counter[str] = field(default_factory=Counter)
    accepted: int = 0

    async def refresh(self) -> None:
        for recipient, at, mid in await asyncio.to_thread(self.server.take):
            self.times.setdefault(recipient, []).append(at)
            self.message_ids[mid] += 1
            self.accepted += 1

    def arrived(self, recipients: Sequence[str]) -> int:
        return sum(1 for r in recipients if r in self.times)

    async def wait_for(
        self, recipients: Sequence[str], *, grace_s: float, timeout_s: float, say: Any
    ) -> None:
        """Until every recipient got mail, or nothing new came for `grace_s` (after the first
        arrival; before it, `timeout_s` in all)."""
        deadline = time.monotonic() + timeout_s
        seen, moved, printed = -1, time.monotonic(), time.monotonic()
        while time.monotonic() < deadline:
            await self.refresh()
            got = self.arrived(recipients)
            if got == len(recipients):
                break
            if got != seen:
                seen, moved = got, time.monotonic()
            elif got and time.monotonic() - moved > grace_s:
                break
            if time.monotonic() - printed >= 5:
                printed = time.monotonic()
                say(f"   {got:,}/{len(recipients):,} transcripts accepted")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # a second copy, if any, would come right after
        await self.refresh()


# ---- Postgres: what the instance's sessions do -------------------------------------------------


class WaitSampler:
    """The instance's Postgres sessions sampled every 50 ms (pg_stat_activity): the average
    number per state and wait event, and the statements seen most while active."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.samples = 0
        self.seen: Counter[str] = Counter()
        self.queries: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        conn = await asyncpg.connect(self.url)
        self._task = asyncio.create_task(self._run(conn))

    async def _run(self, conn: asyncpg.Connection) -> None:
        try:
            while True:
                rows = await conn.fetch(
                    """SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()
                         AND backend_type = 'client backend' AND state <> 'idle'"""
                )
                self.samples += 1
                for row in rows:
                    waits = f"{row['wait_event_type']}:{row['wait_event']}"
                    self.seen[f"{row['state']} {waits if row['wait_event'] else 'cpu'}"] += 1
                    if row["state"] == "active":
                        self.queries[" ".join((row["query"] or "").split())[:120]] += 1
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        n = max(1, self.samples)
        return {
            "sessions": {k: round(c / n, 2) for k, c in self.seen.most_common(8)},
            "active_statements": {k: round(c / n, 2) for k, c in self.queries.most_common(5)},
        }


async def start_group_at_end(bootstrap: str, group: str, topics: Sequence[Topic]) -> None:
    """Commit the group's offsets at the current ends of `topics`, so a new instance in it
    reads only what is written from now on (a shared broker's history is not drained into the
    figures)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic.name, n) for topic in topics for n in range(topic.partitions)
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: ends[tp] for tp in partitions})
    finally:
        await consumer.stop()


class InboundTap:
    """A consumer of `chat.inbound` from its current end (no group): when each reply's command
    (by its text) was produced there by the notifier's outbox relay (the record's time)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.produced: dict[str, float] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            client_id="notifier-bench-tap",
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
        )
        await consumer.start()
        partitions = [TopicPartition(CHAT_INBOUND.name, n) for n in range(CHAT_INBOUND.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for partition in partitions:
            await consumer.position(partition)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        text = orjson.loads(record.value or b"")["payload"]["text"]
                        self.produced.setdefault(str(text), record.timestamp / 1000)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


# ---- the run -----------------------------------------------------------------------------------


@dataclass
class Console:
    """The agent's console socket: when each e-mailed reply (by its text) arrived on it."""

    ws: ClientConnection
    arrived: dict[str, float] = field(default_factory=dict)
    twice: int = 0
    frames: Counter[str] = field(default_factory=Counter)

    async def read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                at = time.time()
                frame = orjson.loads(raw)
                kind = frame.get("t")
                self.frames[str(kind)] += 1
                if kind != "message":
                    continue
                message = frame.get("message") or {}
                if message.get("author") == "visitor" and message.get("channel") == "email":
                    text = str(message.get("text"))
                    if text in self.arrived:
                        self.twice += 1
                    else:
                        self.arrived[text] = at


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quiet: bool = args.json_only
        self.stack = contextlib.ExitStack()
        self.log_dir = Path(tempfile.mkdtemp(prefix="beckon-bench-notifier-"))
        self.run_id = uuid.uuid4().hex[:8]
        self.services: list[Service] = []
        self.bootstrap = ""
        self.server_url = ""
        self.database_url = ""
        self.chat_database_url = ""
        self.broker_pids: list[int] = []
        self.postgres_pids: list[int] = []
        self.pg_settings: dict[str, str] = {}
        self.smtp: SmtpServer | None = None
        self.mailbox: Mailbox | None = None
        self.metrics_port = 0  # the instance's /metrics (set when it starts)
        self.unwritten_before: list[tuple[float, float]] = []  # its histogram, last part
        self.expected: set[str] = set()  # every recipient this run meant to mail
        self.bulk_sites = f"bench-bulk-{self.run_id}"
        self.live_sites = f"bench-live-{self.run_id}"
        self.started = time.monotonic()

    def say(self, message: str) -> None:
        if not self.quiet:
            print(
                f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True
            )

    def _own(self, service: Service) -> Service:
        self.services.append(service)
        self.stack.callback(service.stop)
        return service

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
        name = f"notifier_bench_{self.run_id}"
        self.database_url = asyncio.run(create_database(self.stack, self.server_url, name))
        self.say(f"created database {name}")

    def start_smtp(self) -> None:
        self.smtp = SmtpServer()
        self.stack.callback(self.smtp.stop)
        self.mailbox = Mailbox(self.smtp)
        self.say(f"started the recording SMTP server at 127.0.0.1:{self.smtp.port}")

    def notifier_env(self, port: int) -> dict[str, str]:
        assert self.smtp is not None
        return python_env(
            NOTIFIER_DATABASE_URL=self.database_url,
            NOTIFIER_KAFKA_BOOTSTRAP=self.bootstrap,
            NOTIFIER_HOST="127.0.0.1",
            NOTIFIER_PORT=str(port),
            NOTIFIER_INSTANCE_ID=f"bench-{self.run_id}",
            NOTIFIER_CONSUMER_GROUP=self.notifier_group,
            NOTIFIER_MIGRATE_ON_START="true",
            NOTIFIER_CREATE_TOPICS="false",
            NOTIFIER_LOG_LEVEL="WARNING",
            NOTIFIER_LOG_JSON="false",
            NOTIFIER_SMTP_HOST="127.0.0.1",
            NOTIFIER_SMTP_PORT=str(self.smtp.port),
            NOTIFIER_REPLY_SECRETS=REPLY_SECRET,
            NOTIFIER_REPLY_DOMAIN=REPLY_DOMAIN,
            NOTIFIER_INBOUND_SECRET=INBOUND_SECRET,
            NOTIFIER_AGENT_SESSION_SECRET=CHAT_SECRET,
            NOTIFIER_DIRECTORY_WAIT_S="5",
            # one site plays thousands of conversations: lift the site's hourly cap
            NOTIFIER_PER_SITE_HOUR=PER_SITE_HOUR_MAX,
        )

    @property
    def notifier_group(self) -> str:
        return f"notifier-bench-{self.run_id}"

    async def start_notifier(self) -> Service:
        port = free_port()
        self.metrics_port = free_port()
        env = {**self.notifier_env(port), "NOTIFIER_METRICS_PORT": str(self.metrics_port)}
        service = self._own(
            start_service("notifier", [sys.executable, "-m", "notifier"], env, self.log_dir)
        )
        service.port = port
        await asyncio.to_thread(
            wait_http_ok, service, f"http://127.0.0.1:{port}/readyz", timeout_s=180
        )
        self.say(f"started the notifier at http://127.0.0.1:{port}")
        return service

    def meter(self, *services: Service, **more: list[int]) -> MachineMeter:
        groups: dict[str, list[int]] = {s.name: [s.process.pid] for s in services}
        groups["postgres"] = self.postgres_pids
        groups["broker"] = self.broker_pids
        groups["smtp"] = [self.smtp.pid] if self.smtp else []
        groups.update(more)
        meter = MachineMeter(groups)
        meter.start()
        return meter

    async def email_counts(self, pool: asyncpg.Pool, site_prefix: str) -> dict[str, int]:
        rows = await pool.fetch(
            """SELECT template, status, count(*) AS n FROM notifier.emails
               WHERE site_id LIKE $1 || '-%' GROUP BY 1, 2""",
            site_prefix,
        )
        return {f"{r['template']} {r['status']}": r["n"] for r in rows}

    def mail_check(self, recipients: Sequence[str]) -> dict[str, Any]:
        """Exactly one transcript each: how many got none, how many more than one."""
        assert self.mailbox is not None
        got = [len(self.mailbox.times.get(r, [])) for r in recipients]
        return {
            "recipients": len(recipients),
            "with_mail": sum(1 for n in got if n),
            "without_mail": sum(1 for n in got if not n),
            "more_than_one": sum(1 for n in got if n > 1),
        }

    # -- parts 1 and 2: transcripts --

    async def transcript_parts(self, parts: set[str]) -> tuple[dict[str, Any], Service]:
        args = self.args
        out: dict[str, Any] = {}
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, max_batch_size=262_144
        )
        await producer.start()
        try:
            bulk = talks(self.bulk_sites, f"b{self.run_id}-", args.conversations, args.sites)
            # the instance's group starts at the topics' ends, then the backlog goes in
            await start_group_at_end(
                self.bootstrap, self.notifier_group, (CHAT_EVENTS, LEADS_EVENTS)
            )
            if "throughput" in parts:
                now = datetime.now(UTC)
                for n, talk in enumerate(bulk):
                    for value in talk.opening(now, n):
                        await producer.send(CHAT_EVENTS.name, value, key=talk.key)
                    await producer.send(CHAT_EVENTS.name, talk.closed(now), key=talk.key)
                await producer.flush()
                self.expected.update(t.email for t in bulk)
                self.say(
                    f"-- throughput: wrote {args.conversations:,} closed conversations "
                    f"({args.conversations * 6:,} records) with no instance running"
                )
            launched = time.time()
            instance = await self.start_notifier()
            ready = time.time()
            pool = await asyncpg.create_pool(self.database_url, min_size=1, max_size=2)
            try:
                if "throughput" in parts:
                    out["throughput"] = await self.throughput(bulk, instance, pool, launched, ready)
                if "latency" in parts:
                    out["latency"] = await self.latency(producer, instance, pool)
            finally:
                await pool.close()
        finally:
            await producer.stop()
        return out, instance

    def start_py_spy(self, instance: Service, seconds: float) -> subprocess.Popen[bytes] | None:
        if not self.args.py_spy:
            return None
        out = Path(self.args.py_spy)
        out.mkdir(parents=True, exist_ok=True)
        argv = [
            shutil.which("py-spy") or "py-spy", "record", "--pid", str(instance.process.pid),
            "--rate", "100", "--duration", str(max(1, round(seconds))), "--format", "raw",
            "--output", str(out / "notifier-throughput.txt"),
        ]  # fmt: skip
        self.say(f"   profiling the notifier with py-spy into {out}")
        return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def throughput(
        self,
        bulk: list[Talk],
        instance: Service,
        pool: asyncpg.Pool,
        launched: float,
        ready: float,
    ) -> dict[str, Any]:
        args = self.args
        mailbox = self.mailbox
        assert mailbox is not None
        recipients = [t.email for t in bulk]
        meter = self.meter(instance)
        sampler = WaitSampler(self.database_url)
        await sampler.start()
        spy = self.start_py_spy(instance, args.conversations / 300 + 5)
        metered = time.monotonic()
        await mailbox.wait_for(
            recipients, grace_s=args.grace, timeout_s=args.drain_timeout, say=self.say
        )
        metered = time.monotonic() - metered
        cpu = meter.stop()
        pg = await sampler.stop()
        if spy is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                spy.wait(timeout=30)
        times = sorted(t for r in recipients for t in mailbox.times.get(r, []))
        first_times = sorted(mailbox.times[r][0] for r in recipients if r in mailbox.times)
        span = first_times[-1] - first_times[0] if len(first_times) > 1 else 0.0
        intake = await pool.fetchrow(
            """SELECT count(*) AS n,
                      extract(epoch FROM max(created_at) - min(created_at))::float8 AS span_s,
                      extract(epoch FROM min(created_at))::float8 AS first_at
               FROM notifier.emails WHERE site_id LIKE $1 || '-%' AND template = 'transcript'""",
            self.bulk_sites,
        )
        check = self.mail_check(recipients)
        unwritten = await self.result_unwritten()
        result = {
            "conversations": len(bulk),
            "records": len(bulk) * 6,
            **check,
            "accepted": len(times),
            "emails_per_s": round((len(first_times) - 1) / span, 1) if span > 0 else None,
            "span_s": round(span, 3),
            "emails_per_s_from_ready": round(len(first_times) / (first_times[-1] - ready), 1)
            if first_times
            else None,
            "instance_start_s": round(ready - launched, 2),
            "first_after_ready_s": round(first_times[0] - ready, 2) if first_times else None,
            "intake_transcripts_per_s": round((intake["n"] - 1) / intake["span_s"], 1)
            if intake["n"] > 1 and intake["span_s"]
            else None,
            "intake_first_after_ready_s": round(intake["first_at"] - ready, 2)
            if intake["first_at"]
            else None,
            "database": await self.email_counts(pool, self.bulk_sites),
            "cpu_pct_of_core": cpu,
            "cpu_ms_per_email": cpu_ms_each(cpu, metered, len(first_times)),
            "postgres": pg,
            "result_unwritten_ms": unwritten,
        }
        self.say(
            f"   from the SMTP server's 250 to its result written (a crash's resend window), "
            f"ms: {unwritten}"
        )
        self.say(
            f"   {check['with_mail']:,}/{len(bulk):,} transcripts accepted "
            f"({check['more_than_one']} more than once): {result['emails_per_s']} e-mails/s "
            f"between the first and the last 250 ({span:.2f} s); "
            f"{result['emails_per_s_from_ready']}/s from readiness; the intake intended "
            f"{result['intake_transcripts_per_s']} transcripts/s; database {result['database']}; "
            f"cpu % {cpu}; CPU ms per e-mail {result['cpu_ms_per_email']}; Postgres {pg}"
        )
        return result

    async def result_unwritten(self) -> dict[str, Any]:
        """`notifier_result_unwritten_seconds` of this part: the instance's histogram read
        from its /metrics once it holds a result for every 250 the server gave so far (their
        writes end just after the last), less what earlier parts left in it. How many, and
        the bucket bounds under which half, 99 % and all of them fell, in ms."""
        assert self.mailbox is not None
        sent = sum(len(times) for times in self.mailbox.times.values())
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        buckets: list[tuple[float, float]] = []
        async with httpx.AsyncClient(timeout=5.0) as client:
            for _ in range(50):
                page = (await client.get(url)).text
                buckets = histogram_buckets(page, "notifier_result_unwritten_seconds")
                if buckets and buckets[-1][1] >= sent:
                    break
                await asyncio.sleep(0.2)
        before = dict(self.unwritten_before)
        self.unwritten_before = buckets
        part = [(le, n - before.get(le, 0.0)) for le, n in buckets]
        total = part[-1][1] if part else 0.0

        def under(share: float) -> float | None:
            bound = next((le for le, n in part if n >= share * total), None)
            return None if bound is None or math.isinf(bound) else round(bound * 1000, 1)

        return {
            "count": int(total),
            "p50_le": under(0.5),
            "p99_le": under(0.99),
            "max_le": under(1),
        }

    async def latency(
        self, producer: AIOKafkaProducer, instance: Service, pool: asyncpg.Pool
    ) -> dict[str, Any]:
        args = self.args
        mailbox = self.mailbox
        assert mailbox is not None
        count = math.ceil(args.rate * (args.warmup + args.seconds))
        live = talks(self.live_sites, f"l{self.run_id}-", count, args.sites)
        self.expected.update(t.email for t in live)
        self.say(
            f"-- latency: {args.rate:g} closed conversations/s for {args.seconds:g} s "
            f"(+{args.warmup:g} s warm-up), each opened {args.lead:g} s before its close"
        )
        interval = 1.0 / args.rate
        # (when, 0 = the opening facts / 1 = the close, conversation)
        plan = sorted(
            [(args.lead + n * interval, 1, n) for n in range(count)]
            + [(n * interval, 0, n) for n in range(count)]
        )
        due: dict[
            str, tuple[float, bool]
        ] = {}  # recipient → (close's scheduled wall time, measured)
        meter = self.meter(instance)
        cpu_started = time.process_time()
        started = time.perf_counter() + 0.01
        wall_offset = time.time() - time.perf_counter()
        opens = started + args.lead + args.warmup
        send_lag_max = 0.0
        for offset, kind, n in plan:
            moment = started + offset
            delay = moment - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            talk = live[n]
            now = datetime.now(UTC)
            if kind == 0:
                for value in talk.opening(now, n):
                    await producer.send(CHAT_EVENTS.name, value, key=talk.key)
                continue
            due[talk.email] = (moment + wall_offset, moment >= opens)
            await producer.send(CHAT_EVENTS.name, talk.closed(now), key=talk.key)
            if moment >= opens:
                send_lag_max = max(send_lag_max, time.perf_counter() - moment)
        await producer.flush()
        elapsed = time.perf_counter() - started
        driver = round(100 * (time.process_time() - cpu_started) / elapsed, 1)
        recipients = [t.email for t in live]
        await mailbox.wait_for(recipients, grace_s=args.grace, timeout_s=args.grace, say=self.say)
        cpu = meter.stop({"bench": driver})
        measured = [r for r, (_, m) in due.items() if m]
        latencies = [mailbox.times[r][0] - due[r][0] for r in measured if r in mailbox.times]
        intents = await pool.fetch(
            """SELECT recipient, extract(epoch FROM created_at)::float8 AS at
               FROM notifier.emails WHERE site_id LIKE $1 || '-%' AND template = 'transcript'""",
            self.live_sites,
        )
        to_intent = [
            row["at"] - due[row["recipient"]][0]
            for row in intents
            if due.get(row["recipient"], (0, False))[1]
        ]
        check = self.mail_check(recipients)
        result = {
            "rate": args.rate,
            "conversations": count,
            "measured": len(measured),
            "accepted": len(latencies),
            "lost": check["without_mail"],
            "more_than_one": check["more_than_one"],
            **stats_ms(latencies),
            "to_intent_p50_ms": percentile_ms(to_intent, 50),
            "to_intent_p99_ms": percentile_ms(to_intent, 99),
            "send_lag_max_ms": round(send_lag_max * 1000, 2),
            "database": await self.email_counts(pool, self.live_sites),
            "cpu_pct_of_core": cpu,
            "result_unwritten_ms": await self.result_unwritten(),
        }
        self.say(
            f"   {len(latencies):,}/{len(measured):,} measured closes → 250, {result['lost']} "
            f"lost: p50 {result['p50_ms']} p95 {result['p95_ms']} p99 {result['p99_ms']} max "
            f"{result['max_ms']} ms (to the intent: p50 {result['to_intent_p50_ms']} p99 "
            f"{result['to_intent_p99_ms']} ms); database {result['database']}; cpu % {cpu}; "
            f"250 → result written, ms: {result['result_unwritten_ms']}"
        )
        return result

    # -- part 3: replies by e-mail --

    def chat_env(self, port: int) -> dict[str, str]:
        big = "1000000000"
        return python_env(
            CHAT_DATABASE_URL=self.chat_database_url,
            CHAT_KAFKA_BOOTSTRAP=self.bootstrap,
            CHAT_HOST="127.0.0.1",
            CHAT_PORT=str(port or 8003),
            CHAT_INSTANCE_ID=f"bench-{self.run_id}",
            CHAT_CONSUMER_GROUP=self.chat_group,
            CHAT_SECRET_KEY=CHAT_SECRET,
            CHAT_LOG_LEVEL="WARNING",
            CHAT_CREATE_TOPICS="false",
            CHAT_WIDGET_REQUESTS_PER_S="1e9",
            CHAT_WIDGET_REQUEST_BURST=big,
            CHAT_SOCKET_MESSAGES_PER_S="1e9",
            CHAT_SOCKET_MESSAGE_BURST=big,
            CHAT_AGENT_OFFLINE_AFTER_S="86400",
        )

    @property
    def chat_group(self) -> str:
        return f"chat-bench-{self.run_id}"

    async def start_chat(self) -> Service:
        name = f"chat_bench_notifier_{self.run_id}"
        self.chat_database_url = await create_database(self.stack, self.server_url, name)
        seed = self.log_dir / "chat-seed.yaml"
        seed.write_text(seed_yaml(1))
        env = self.chat_env(0)
        for argv in (["migrate"], ["seed", str(seed)]):
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "chat", *argv],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"python -m chat {argv[0]} failed:\n{done.stdout}{done.stderr}")
        # chat's groups read chat.invitations, tracking.events (activity) and chat.inbound
        for group, topic in (
            (self.chat_group, CHAT_INVITATIONS),
            (f"{self.chat_group}-activity", TRACKING_EVENTS),
            (f"{self.chat_group}-inbound", CHAT_INBOUND),
        ):
            await start_group_at_end(self.bootstrap, group, (topic,))
        port = free_port()
        service = self._own(
            start_service("chat", [sys.executable, "-m", "chat"], self.chat_env(port), self.log_dir)
        )
        service.port = port
        await asyncio.to_thread(
            wait_http_ok, service, f"http://127.0.0.1:{port}/readyz", timeout_s=120
        )
        self.say(f"created database {name} (site {SITE_ID}, one agent); chat at :{port}")
        return service

    async def replies(self, notifier: Service) -> dict[str, Any]:
        args = self.args
        chat = await self.start_chat()
        base = f"http://127.0.0.1:{chat.port}"
        signer = Signer(CHAT_SECRET)
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            answer = await client.post(
                f"{base}/v1/console/login",
                json={"email": agent_email(0), "password": AGENT_PASSWORD},
            )
            answer.raise_for_status()
            cookie = answer.cookies[COOKIE]
            client.cookies.clear()
            headers = {"Cookie": f"{COOKIE}={cookie}", "Origin": base}
            answer = await client.post(
                f"{base}/v1/console/status", json={"status": "online"}, headers=headers
            )
            answer.raise_for_status()
            ws = await ws_connect(
                f"ws://127.0.0.1:{chat.port}/v1/console/ws",
                base,
                True,
                additional_headers={"Cookie": f"{COOKIE}={cookie}"},
            )
            await read_hello(ws)
            console = Console(ws)
            reader = asyncio.create_task(console.read())
            conversations: list[uuid.UUID] = []
            for n in range(args.reply_conversations):
                token = signer.visitor_token(
                    site_id=SITE_ID,
                    visitor_id=f"mail-{self.run_id}-{n}",
                    conversation_id=None,
                    ttl_s=TOKEN_TTL_S,
                    now=time.time(),
                )
                answer = await client.post(
                    f"{base}/v1/widget/conversations",
                    json={"team": TEAM},
                    headers={"Authorization": f"Bearer {token}", "Origin": ORIGIN},
                )
                answer.raise_for_status()
                conversations.append(uuid.UUID(answer.json()["conversation"]["id"]))
            answer = await client.get(
                f"{base}/v1/console/conversations", params={"scope": "mine"}, headers=headers
            )
            answer.raise_for_status()
            mine = {uuid.UUID(c["id"]) for c in answer.json()["conversations"]}
            if not set(conversations) <= mine:
                raise RuntimeError(
                    f"the agent has {len(set(conversations) & mine)} of the "
                    f"{len(conversations)} conversations"
                )
        # the notifier learns them from chat.events (chat's outbox → the intake)
        known = 0
        conn = await asyncpg.connect(self.database_url)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                known = await conn.fetchval(
                    "SELECT count(*) FROM notifier.conversations WHERE conversation_id = ANY($1)",
                    conversations,
                )
                if known == len(conversations):
                    break
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        if known != len(conversations):
            raise RuntimeError(f"the notifier knows {known} of {len(conversations)} conversations")
        self.say(
            f"-- replies: {len(conversations)} conversations started in the widget, assigned to "
            f"the agent (console socket open) and known to the notifier; {args.reply_rate:g} "
            f"replies/s for {args.reply_seconds:g} s (+{args.warmup:g} s warm-up)"
        )
        await asyncio.sleep(1.0)  # the set-up's frames settle
        tokens = ReplyTokens([REPLY_SECRET])
        now = datetime.now(UTC)
        addresses = [
            reply_address("reply", tokens.issue(c, now=now), REPLY_DOMAIN) for c in conversations
        ]
        count = math.ceil(args.reply_rate * (args.warmup + args.reply_seconds))
        texts = [f"Reply {n} by e-mail ({self.run_id}): yes, please send it." for n in range(count)]
        bodies = []
        for n, text in enumerate(texts):
            mail = EmailMessage()
            mail["From"] = (
                f"Visitor {n % len(addresses)} <visitor{n % len(addresses)}@mail.bench.test>"
            )
            mail["To"] = addresses[n % len(addresses)]
            mail["Subject"] = "Re: Your conversation with Bench store"
            mail["Message-ID"] = f"<reply-{n}-{self.run_id}@mail.bench.test>"
            mail.set_content(f"{text}\n\nOn Mon, 1 Dec 2026 at 12:00, Bench store wrote:\n> Hi!\n")
            bodies.append(bytes(mail))
        url = f"http://127.0.0.1:{notifier.port}/v1/inbound/mail"
        post_headers = {
            "Authorization": f"Bearer {INBOUND_SECRET}",
            "Content-Type": "message/rfc822",
        }
        statuses: Counter[int] = Counter()
        errors: Counter[str] = Counter()
        scheduled: dict[str, tuple[float, bool]] = {}
        tap = InboundTap(self.bootstrap)
        await tap.start()
        meter = self.meter(notifier, chat)
        cpu_started = time.process_time()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        async with httpx.AsyncClient(timeout=30, trust_env=False, limits=limits) as client:

            async def post(n: int) -> None:
                try:
                    answer = await client.post(url, content=bodies[n], headers=post_headers)
                    statuses[answer.status_code] += 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1

            interval = 1.0 / args.reply_rate
            started = time.perf_counter() + 0.01
            wall_offset = time.time() - time.perf_counter()
            opens = started + args.warmup
            tasks: set[asyncio.Task[None]] = set()
            for n in range(count):
                moment = started + n * interval
                delay = moment - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                scheduled[texts[n]] = (moment + wall_offset, moment >= opens)
                task = asyncio.create_task(post(n))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=30)
        elapsed = time.perf_counter() - started
        driver = round(100 * (time.process_time() - cpu_started) / elapsed, 1)
        seen, moved = -1, time.monotonic()
        while len(console.arrived) < count and time.monotonic() - moved < args.grace:
            if len(console.arrived) != seen:
                seen, moved = len(console.arrived), time.monotonic()
            await asyncio.sleep(0.1)
        cpu = meter.stop({"bench": driver})
        await tap.stop()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.close()
        measured = [t for t, (_, m) in scheduled.items() if m]
        latencies = [console.arrived[t] - scheduled[t][0] for t in measured if t in console.arrived]
        # where the time goes: POST → the command on chat.inbound (the notifier: parse, store,
        # outbox relay) and from there → the console (chat: consume, store, publish, fan out)
        to_inbound = [tap.produced[t] - scheduled[t][0] for t in measured if t in tap.produced]
        to_console = [
            console.arrived[t] - tap.produced[t]
            for t in measured
            if t in tap.produced and t in console.arrived
        ]
        result = {
            "reply_rate": args.reply_rate,
            "conversations": len(conversations),
            "replies": count,
            "measured": len(measured),
            "arrived": len(latencies),
            "lost": sum(1 for t in texts if t not in console.arrived),
            "twice": console.twice,
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "errors": dict(errors),
            **stats_ms(latencies),
            "to_chat_inbound_p50_ms": percentile_ms(to_inbound, 50),
            "to_chat_inbound_p99_ms": percentile_ms(to_inbound, 99),
            "chat_inbound_to_console_p50_ms": percentile_ms(to_console, 50),
            "chat_inbound_to_console_p99_ms": percentile_ms(to_console, 99),
            "frames": dict(console.frames),
            "cpu_pct_of_core": cpu,
            "chat_log": log_problems(chat.log_path),
        }
        self.say(
            f"   {len(latencies):,}/{len(measured):,} measured replies on the console, "
            f"{result['lost']} lost, answers {result['statuses']} {dict(errors) or ''}: p50 "
            f"{result['p50_ms']} p95 {result['p95_ms']} p99 {result['p99_ms']} max "
            f"{result['max_ms']} ms (POST → chat.inbound p50 {result['to_chat_inbound_p50_ms']} "
            f"p99 {result['to_chat_inbound_p99_ms']}; chat.inbound → console p50 "
            f"{result['chat_inbound_to_console_p50_ms']} p99 "
            f"{result['chat_inbound_to_console_p99_ms']} ms); cpu % {cpu}"
        )
        return result

    # -- everything --

    async def parts(self) -> dict[str, Any]:
        parts = set(self.args.parts)
        out, instance = await self.transcript_parts(parts)
        if "replies" in parts:
            out["replies"] = await self.replies(instance)
        assert self.mailbox is not None
        await self.mailbox.refresh()
        out["unexpected_recipients"] = sum(1 for r in self.mailbox.times if r not in self.expected)
        out["message_ids"] = {
            "accepted": self.mailbox.accepted,
            "distinct": len(self.mailbox.message_ids),
            "missing": self.mailbox.message_ids.get("", 0),
        }
        out["server_log"] = log_problems(instance.log_path)
        return out

    def run(self) -> dict[str, Any]:
        facts = machine_facts()
        results: dict[str, Any] = {}
        with self.stack:
            try:
                self.start_broker()
                self.start_postgres()
                self.start_smtp()
                results = uvloop.run(self.parts())
            except BaseException:
                for service in self.services:
                    self.say(f"{service.name} log ({service.log_path}):\n{tail(service.log_path)}")
                self.say(f"logs kept in {self.log_dir}")
                raise
        if not self.args.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        facts["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        facts["seconds_total"] = round(time.monotonic() - self.started, 1)
        return self.figures(results, facts)

    def figures(self, p: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
        args = self.args
        thr, lat, rep = p.get("throughput"), p.get("latency"), p.get("replies")
        f: dict[str, Any] = {
            "bench": "notifier",
            "emails_per_s": thr["emails_per_s"] if thr else None,
            "emails_per_s_from_ready": thr["emails_per_s_from_ready"] if thr else None,
            "p99_close_to_smtp_ms": lat["p99_ms"] if lat else None,
            "p95_close_to_smtp_ms": lat["p95_ms"] if lat else None,
            "p50_close_to_smtp_ms": lat["p50_ms"] if lat else None,
            "max_close_to_smtp_ms": lat["max_ms"] if lat else None,
            "transcripts_lost": (lat["lost"] if lat else 0) + (thr["without_mail"] if thr else 0),
            "p99_reply_to_console_ms": rep["p99_ms"] if rep else None,
            "p95_reply_to_console_ms": rep["p95_ms"] if rep else None,
            "p50_reply_to_console_ms": rep["p50_ms"] if rep else None,
            "max_reply_to_console_ms": rep["max_ms"] if rep else None,
            "replies_lost": rep["lost"] if rep else 0,
        }
        problems: list[str] = []
        if f["transcripts_lost"]:
            problems.append(f"{f['transcripts_lost']} conversations without a transcript")
        for name, part in (("throughput", thr), ("latency", lat)):
            if part and part["more_than_one"]:
                problems.append(f"{name}: {part['more_than_one']} recipients mailed more than once")
        ids = p["message_ids"]
        if ids["distinct"] != ids["accepted"] or ids["missing"]:
            problems.append(
                f"{ids['accepted']} e-mails accepted with {ids['distinct']} distinct Message-IDs "
                f"({ids['missing']} without one)"
            )
        if p["unexpected_recipients"]:
            problems.append(f"{p['unexpected_recipients']} recipients this run never meant")
        if rep:
            if rep["lost"] or rep["twice"]:
                problems.append(f"replies: {rep['lost']} lost, {rep['twice']} shown twice")
            if set(rep["statuses"]) - {"202"} or rep["errors"]:
                problems.append(f"replies answered {rep['statuses']} {rep['errors']}")
            if rep["chat_log"]["count"]:
                problems.append(f"{rep['chat_log']['count']} error lines in chat's log")
        if p["server_log"]["count"]:
            problems.append(f"{p['server_log']['count']} error lines in the notifier's log")
        f["server_log_errors"] = p["server_log"]["count"]
        f["problems"] = problems
        f["valid"] = not problems
        f["targets_met"] = {
            key: None if f[key] is None else (f[key] >= bound if op == ">=" else f[key] < bound)
            for key, (op, bound) in TARGETS.items()
        }
        f["parts"] = p
        f["config"] = {
            "parts": list(args.parts),
            "conversations": args.conversations,
            "sites": args.sites,
            "rate": args.rate,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "lead_s": args.lead,
            "reply_rate": args.reply_rate,
            "reply_seconds": args.reply_seconds,
            "reply_conversations": args.reply_conversations,
            "broker": args.bootstrap or f"apache kafka {KAFKA_VERSION} (embedded, same machine)",
            "postgres": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
            "postgres_settings": self.pg_settings,
            "notifier": "defaults (NOTIFIER_SMTP_CONNECTIONS 8, NOTIFIER_SEND_BATCH 200), "
            f"NOTIFIER_PER_SITE_HOUR {PER_SITE_HOUR_MAX}",
        }
        f["machine"] = facts
        if args.keep_logs:
            f["logs"] = str(self.log_dir)
        return f


def print_summary(f: dict[str, Any]) -> None:
    p = f["parts"]
    print()
    if (thr := p.get("throughput")) is not None:
        print(
            f"one instance: {thr['emails_per_s']} transcripts/s rendered and accepted by SMTP "
            f"({thr['with_mail']:,} of {thr['conversations']:,}; "
            f"{thr['emails_per_s_from_ready']}/s counted from readiness; "
            f"intake {thr['intake_transcripts_per_s']}/s)"
        )
    if (lat := p.get("latency")) is not None:
        print(
            f"close → SMTP 250 at {lat['rate']:g}/s: p50 {lat['p50_ms']} p95 {lat['p95_ms']} "
            f"p99 {lat['p99_ms']} max {lat['max_ms']} ms over {lat['measured']:,}; "
            f"{lat['lost']} lost"
        )
    if (rep := p.get("replies")) is not None:
        print(
            f"reply POST → agent's console at {rep['reply_rate']:g}/s: p50 {rep['p50_ms']} p95 "
            f"{rep['p95_ms']} p99 {rep['p99_ms']} max {rep['max_ms']} ms over "
            f"{rep['measured']:,}; {rep['lost']} lost"
        )
    for key, (op, bound) in TARGETS.items():
        met = f["targets_met"][key]
        verdict = "not measured" if met is None else "met" if met else "MISSED"
        print(f"target {key} {op} {bound:,}: {f[key]} -> {verdict}")
    for problem in f["problems"]:
        print(f"PROBLEM: {problem}")
    for line in p["server_log"]["first"]:
        print(f"   notifier: {line}")
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
    add("--conversations", type=int, default=5000, help="closed conversations of the backlog")
    add(
        "--sites",
        type=int,
        default=1,
        help="sites the conversations of parts 1 and 2 are dealt over (1: one busy site)",
    )
    add(
        "--rate",
        type=float,
        default=30.0,
        help="closed conversations per second in the latency part (about half the measured peak)",
    )
    add("--seconds", type=float, default=30.0, help="measured seconds of the latency part")
    add("--warmup", type=float, default=5.0, help="unmeasured seconds before each open loop")
    add("--lead", type=float, default=1.0, help="seconds between a conversation's start and close")
    add("--reply-rate", type=float, default=20.0, help="replies by e-mail per second")
    add("--reply-seconds", type=float, default=30.0, help="measured seconds of the replies")
    add("--reply-conversations", type=int, default=20, help="conversations the replies go to")
    add(
        "--grace",
        type=float,
        default=15.0,
        help="seconds without progress before the missing results count as lost",
    )
    add("--drain-timeout", type=float, default=600.0, help="give up on the backlog after this")
    add("--bootstrap", help="use this running broker (HOST:PORT) instead of starting Apache Kafka")
    add("--py-spy", metavar="DIR", help="profile the notifier during the throughput part into DIR")
    add("--keep-logs", action="store_true", help="keep the servers' logs")
    add("--json-only", action="store_true", help="print only the RESULT line")
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown or not args.parts:
        parser.error(f"--parts takes some of {','.join(PARTS)}, not {','.join(unknown) or '-'}")
    if min(args.conversations, args.reply_conversations, args.sites) < 1:
        parser.error("--conversations, --reply-conversations and --sites must be >= 1")
    if args.reply_conversations > 50:
        parser.error("--reply-conversations: one agent holds at most 50 chats")
    if min(args.rate, args.seconds, args.reply_rate, args.reply_seconds) <= 0 or args.lead < 0:
        parser.error("--rate, --seconds, --reply-rate and --reply-seconds must be positive")
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
