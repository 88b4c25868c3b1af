"""This instance's own reading of `visitors.state` (and of chat's news about visitors), and
the pushes to the console sockets it holds.

Group-less, like the socket feed: every instance reads every partition itself, so each one
holds the whole live picture and sends deltas only to its own subscribed sockets — that is
the cross-replica path, nothing travels between instances. Being group-less it commits no
offsets and dead-letters nothing: an unreadable snapshot is skipped, logged and counted
(`chat_live_skipped_total`); the next snapshot of that visitor replaces it anyway.

Start-up reads each `visitors.state` partition from the first record of the idle window
(`offsets_for_times(now - window)`; the end offset when no record is that new), so a
visitor who left long ago is never fetched; records older than the window that still come
(producer timestamps are not in offset order) are dropped without parsing them and counted
(`chat_live_stale_total`). `chat.events` and `chat.signals` are read from the end for what
triggers' snapshot may not know yet: a chat of any origin started or ended, a personal
invitation sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from beckon_contracts.chat_signals import InvitationSignal, parse_chat_signal
from beckon_contracts.topics import CHAT_EVENTS, CHAT_SIGNALS, VISITORS_STATE, Topic
from beckon_contracts.visitors import VisitorSnapshot
from beckon_messaging import PLAINTEXT, KafkaSecurity
from beckon_messaging.progress import ConsumerProgress, untracked
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import ValidationError

from chat.hub import Connection
from chat.live.domain import Registry
from chat.live.store import LiveStore
from chat.uow import EVERY_SITE, UnitsOfWork

log = logging.getLogger("chat.live")

METRICS = CollectorRegistry()
SNAPSHOTS = Counter(
    "chat_live_snapshots_total", "visitor.state records applied to the live list", registry=METRICS
)
SKIPPED = Counter(
    "chat_live_skipped_total",
    "visitors.state records skipped as unreadable",
    ["reason"],
    registry=METRICS,
)
STALE = Counter(
    "chat_live_stale_total",
    "visitors.state records dropped unparsed as older than the idle window",
    registry=METRICS,
)
VISITORS = Gauge("chat_live_visitors", "Visitors in the live list (all sites)", registry=METRICS)
PUSHES = Counter("chat_live_deltas_total", "Delta frames sent to console sockets", registry=METRICS)
PUSH_SECONDS = Histogram(
    "chat_live_push_seconds",
    "Building and queueing one round of deltas",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5),
    registry=METRICS,
)

# chat's own facts that change a row (prefiltered on the raw bytes: most records are messages)
_CHAT_NEWS = (
    b'"type":"conversation.started"',
    b'"type":"conversation.closed"',
    b'"type":"conversation.email_captured"',
)
_INVITATION_SIGNAL = b'"kind":"invitation"'
_LOG_EVERY = 1000  # after the first few, one log line per this many skipped records
# How much older than the idle window a snapshot may be and still be read: room for clock
# skew between triggers (which stamps the records) and this instance.
_WINDOW_SLACK_S = 60.0


class LiveVisitors:
    """The live list of every site, as this instance sees it (the live feature runs it)."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        *,
        idle_after_s: float,
        push_interval_s: float,
        uow: UnitsOfWork | None = None,
        security: KafkaSecurity = PLAINTEXT,
        state_topic: Topic = VISITORS_STATE,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.progress = progress or untracked("chat-live")
        self.registry = Registry(idle_after_s)
        self.state_topic = state_topic
        self.window_s = idle_after_s + _WINDOW_SLACK_S
        self.push_interval_s = push_interval_s
        self.sweep_every_s = max(1.0, min(30.0, idle_after_s / 10))
        self.uow = uow  # reads what chat knows at start-up (None: nothing to read)
        self.subscribers: dict[str, set[Connection]] = defaultdict(set)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=f"{client_id}-live",
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            auto_offset_reset="earliest",
            **security.aiokafka_options(),
        )
        self.loaded = asyncio.Event()
        self.skipped = 0
        self.read = 0  # visitors.state records fetched (stale ones included)
        self.stale = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._backlog: dict[TopicPartition, int] = {}

    # --- what the other console features call ---------------------------------------------

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        """The visitor's latest snapshot payload (JSON-able) plus "visitor_id", or None when
        they are not on the site now."""
        return self.registry.visitor(site_id, visitor_id)

    def note_invited(self, site_id: str, visitor_id: str) -> None:
        """A personal invitation was just sent (the signal tells the other instances)."""
        self.registry.note(site_id, visitor_id, time.time(), invited_at=time.time())

    # --- sockets ---------------------------------------------------------------------------

    def subscribe(self, connection: Connection) -> None:
        """The socket gets the site's whole list now, then the deltas."""
        self.subscribers[connection.site_id].add(connection)
        connection.push_text(self.registry.snapshot_text(connection.site_id))

    def unsubscribe(self, connection: Connection) -> None:
        group = self.subscribers.get(connection.site_id)
        if group is not None:
            group.discard(connection)
            if not group:
                del self.subscribers[connection.site_id]

    def push_deltas(self) -> int:
        """One delta per site with changes, serialised once for all its sockets here."""
        sent = 0
        for site_id in self.registry.pending_sites():
            group = [c for c in self.subscribers.get(site_id, ()) if not c.closed]
            if not group:
                self.registry.drop_pending(site_id)
                continue
            text = self.registry.take_delta(site_id)
            if text is None:
                continue
            for connection in group:
                connection.push_text(text)
            sent += len(group)
        return sent

    # --- life ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.consumer.start()
        if self.uow is not None:
            await self.load_chat_news()
        state = [
            TopicPartition(self.state_topic.name, p) for p in range(self.state_topic.partitions)
        ]
        news = [
            TopicPartition(topic.name, p)
            for topic in (CHAT_EVENTS, CHAT_SIGNALS)
            for p in range(topic.partitions)
        ]
        self.consumer.assign(state + news)
        ends = await self.consumer.end_offsets(state)
        since_ms = int((time.time() - self.window_s) * 1000)
        starts = await self.consumer.offsets_for_times(dict.fromkeys(state, since_ms))
        for partition in state:
            found = starts.get(partition)
            self.consumer.seek(partition, found.offset if found is not None else ends[partition])
        await self.consumer.seek_to_end(*news)
        for partition in news:
            await self.consumer.position(partition)
        self._backlog = {tp: int(end) for tp, end in ends.items()}  # `loaded` once read to here
        self._tasks = [
            asyncio.create_task(self._read(), name="live-reader"),
            asyncio.create_task(self._push(), name="live-push"),
        ]

    async def stop(self) -> None:
        self.progress.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.consumer.stop()

    async def load_chat_news(self) -> None:
        """Chats open now and recent personal invitations, which the feed would only tell
        about from now on."""
        assert self.uow is not None
        now = time.time()
        async with self.uow.read(EVERY_SITE) as tx:
            chatting, invited = await tx.store(LiveStore).chat_news(
                invited_within_s=self.registry.idle_after_s
            )
        for row in chatting:
            self.registry.note(
                row["site_id"], row["visitor_id"], now, chatting=True, email=row["email"]
            )
        for row in invited:
            self.registry.note(
                row["site_id"], row["visitor_id"], now, invited_at=row["at"].timestamp()
            )

    async def _read(self) -> None:
        with self.progress.running():
            await self._follow()

    async def _follow(self) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=2000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup: keep listening
                log.exception("live reader fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            self.progress.fetched(sum(len(records) for records in batches.values()))
            await self.progress.observe_lag(self.consumer)
            now = time.time()
            for partition, records in batches.items():
                if partition.topic == self.state_topic.name:
                    self.read += len(records)
                    for record in records:
                        self.handle_state(record, now)
                else:
                    for record in records:
                        self.handle_news(partition.topic, record.value or b"", now)
                await asyncio.sleep(0)  # let sockets breathe between partitions
            self.progress.handled()
            if not self.loaded.is_set() and await self._caught_up():
                self.loaded.set()
                log.info("live list loaded", extra={"visitors": self._visitor_count()})

    async def _caught_up(self) -> bool:
        for partition, end in self._backlog.items():
            if await self.consumer.position(partition) < end:
                return False
        return True

    def handle_state(self, record: ConsumerRecord[bytes, bytes], now: float) -> None:
        """One `visitors.state` record: a snapshot, a tombstone, or something to skip."""
        if record.value is None:  # a tombstone: the visitor's key was deleted
            site_id, _, visitor_id = (record.key or b"").decode("utf-8", "replace").partition(":")
            self.registry.remove(site_id, visitor_id)
            return
        if record.timestamp and now * 1000 - record.timestamp > self.window_s * 1000:
            self.stale += 1  # written before the idle window: not a visitor on site now
            STALE.inc()
            return
        try:
            snapshot = VisitorSnapshot.model_validate_json(record.value)
        except ValidationError as exc:
            self._skip("schema_invalid", record, str(exc.errors()[0]["loc"]))
            return
        if self.registry.apply(snapshot.site_id, snapshot.visitor_id, snapshot.payload, now):
            SNAPSHOTS.inc()

    def handle_news(self, topic: str, raw: bytes, now: float) -> None:
        """A chat fact or signal that changes a visitor's invited / chatting badge."""
        if topic == CHAT_EVENTS.name:
            if not any(marker in raw for marker in _CHAT_NEWS):
                return
        else:
            if _INVITATION_SIGNAL not in raw:
                return
            try:
                signal = parse_chat_signal(raw)
            except ValidationError:
                return  # the hub logs invalid signals
            if isinstance(signal, InvitationSignal) and signal.invitation.rule_id is None:
                self.registry.note(signal.site_id, signal.visitor_id, now, invited_at=now)
            return
        try:
            news = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if not isinstance(news, dict):
            return
        site_id, visitor_id = news.get("site_id"), news.get("visitor_id")
        if not isinstance(site_id, str) or not isinstance(visitor_id, str):
            return
        kind = news.get("type")
        if kind == "conversation.started":
            self.registry.note(site_id, visitor_id, now, chatting=True)
        elif kind == "conversation.closed":
            self.registry.note(site_id, visitor_id, now, chatting=False)
        elif kind == "conversation.email_captured":
            email = (news.get("payload") or {}).get("email")
            if isinstance(email, str):
                self.registry.note(site_id, visitor_id, now, email=email)

    def _skip(self, reason: str, record: ConsumerRecord[bytes, bytes], detail: str) -> None:
        self.skipped += 1
        SKIPPED.labels(reason).inc()
        if self.skipped <= 10 or self.skipped % _LOG_EVERY == 0:
            log.warning(
                "visitors.state record skipped",
                extra={
                    "reason": reason,
                    "detail": detail[:200],
                    "partition": record.partition,
                    "offset": record.offset,
                    "skipped": self.skipped,
                },
            )

    def _visitor_count(self) -> int:
        return sum(len(site.entries) for site in self.registry.sites.values())

    async def _push(self) -> None:
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(self.push_interval_s)
            try:
                if time.monotonic() - last_sweep >= self.sweep_every_s:
                    last_sweep = time.monotonic()
                    self.registry.expire(time.time())
                    VISITORS.set(self._visitor_count())
                with PUSH_SECONDS.time():
                    PUSHES.inc(self.push_deltas())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live push failed")
