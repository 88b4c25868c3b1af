"""Kafka for the chat service: the outbox relay, the broadcast feed every instance reads,
and the invitations consumer.

- The relay (beckon_messaging.outbox's, on `chat.outbox`) publishes committed outbox rows in
  id order. One relay at a time holds the outbox lock, so rows of one conversation (committed
  one after another under its row lock) reach `chat.events` in commit order. Each row's
  stored trace context (of the request or record that wrote it) goes out as its headers.
- Every instance reads `chat.events` and `chat.signals` from the end, without a consumer
  group, and hands each record to the socket hub: that is how a visitor on one instance and
  an agent on another hear each other.
- `chat.invitations` is read by the `chat` group: each invitation is stored once (idempotent
  on its id, with its record's trace context) and fanned out as a signal; bad records go to
  the dead-letter twin. Each record is handled in a span of its own trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from beckon_contracts.chat_signals import (
    AgentCard,
    AgentsPushSignal,
    ChatSignal,
    InvitationSignal,
    ShownInvitation,
    chat_signal_key,
)
from beckon_contracts.dead_letter import ReasonCode
from beckon_contracts.invitations import InvitationIssued, parse_invitation_record
from beckon_contracts.topics import (
    CHAT_EVENTS,
    CHAT_INVITATIONS,
    CHAT_INVITATIONS_DLQ,
    CHAT_SIGNALS,
)
from beckon_edge.database import database_away
from beckon_messaging import (
    PLAINTEXT,
    KafkaSecurity,
    dead_letter,
    encode_dead_letter,
)
from beckon_messaging.bus import Bus as SharedBus
from beckon_messaging.consumer import finish_then_cancel
from beckon_messaging.metrics import count_dead_letter
from beckon_messaging.outbox import ACK_WAIT_S
from beckon_messaging.outbox import OutboxRelay as SharedOutboxRelay
from beckon_messaging.progress import ConsumerProgress, untracked
from beckon_observability import (
    KafkaHeaders,
    extract_context,
    inject_headers,
    trace_carrier,
)
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

log = logging.getLogger("chat.bus")
tracer = trace.get_tracer("chat")

OUTBOX_LOCK = 0x0BEC_C0A7  # pg advisory lock id of the outbox relay

Handler = Callable[[str, dict[str, Any]], Awaitable[None]]
BatchEnd = Callable[[], Awaitable[None]]
# The pauses before the feed tries a record again when its handler met Postgres away (about
# a restart's length in all); then the record is logged and passed (sockets resync later).
FEED_DATABASE_PAUSES_S = (0.2, 0.5, 1.0, 2.0, 4.0)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Stop a background loop and wait until it has."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Bus(SharedBus):
    """The producer every part of the instance shares (beckon_messaging.bus), and the
    signals it publishes."""

    async def signal(self, signal: ChatSignal, *, headers: KafkaHeaders | None = None) -> None:
        """Ephemeral news for sockets on any instance (typing, previews, invitations)."""
        await self.producer.send(
            CHAT_SIGNALS.name,
            signal.model_dump_json().encode(),
            key=chat_signal_key(signal),
            headers=headers,
        )

    async def push_to_agents(
        self, site_id: str, frame: dict[str, Any], agent_ids: Iterable[str] | None = None
    ) -> None:
        """One console frame for the site's agent sockets on every instance (all of them, or
        only those of `agent_ids`): notes, live-list news, anything agents-only."""
        await self.signal(
            AgentsPushSignal(
                site_id=site_id,
                agent_ids=sorted(agent_ids) if agent_ids is not None else None,
                frame=frame,
            )
        )


class OutboxRelay(SharedOutboxRelay):
    """Publishes `chat.outbox` (the shared relay of beckon_messaging.outbox, on chat's table
    and lock)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        poll_s: float,
        ack_wait_s: float = ACK_WAIT_S,
    ) -> None:
        super().__init__(
            pool,
            producer,
            table="chat.outbox",
            lock_id=OUTBOX_LOCK,
            poll_s=poll_s,
            ack_wait_s=ack_wait_s,
        )


class Feed:
    """Every record of `chat.events` and `chat.signals` from now on, for this instance.

    `handler` takes each record; `batch_end`, when given, is called after each fetched batch
    (the hub's work that one answer serves for many records: queued visitors' places)."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        handler: Handler,
        fetch_wait_ms: int,
        *,
        batch_end: BatchEnd | None = None,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.progress = progress or untracked("chat-feed")
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=fetch_wait_ms,
            auto_offset_reset="latest",
            **security.aiokafka_options(),
        )
        self.handler = handler
        self.batch_end = batch_end
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [
            TopicPartition(topic.name, partition)
            for topic in (CHAT_EVENTS, CHAT_SIGNALS)
            for partition in range(topic.partitions)
        ]
        self.consumer.assign(partitions)
        # The socket's own sync fills gaps; the feed only needs what happens from now on.
        await self.consumer.seek_to_end(*partitions)
        for partition in partitions:
            await self.consumer.position(partition)
        self.ready.set()
        self._task = asyncio.create_task(self._run(), name="feed")

    async def stop(self) -> None:
        self.progress.close()
        await cancel(self._task)
        await self.consumer.stop()

    async def _run(self) -> None:
        with self.progress.running():
            await self._listen()

    async def _listen(self) -> None:
        while True:
            try:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=1000)
            except asyncio.CancelledError:
                raise
            except Exception:  # a broker hiccup: keep listening (sockets resync on their own)
                log.exception("feed fetch failed; retrying")
                await asyncio.sleep(1.0)
                continue
            self.progress.fetched(sum(len(records) for records in batches.values()))
            await self.progress.observe_lag(self.consumer)
            await self._hand_over(batches)
            if self.batch_end is not None and batches:
                await self._retried("batch end", self.batch_end)
            self.progress.handled()

    async def _hand_over(
        self, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        for partition, records in batches.items():
            for record in records:
                try:
                    value = orjson.loads(record.value or b"")
                except orjson.JSONDecodeError:
                    log.warning("unreadable record on the feed", extra={"topic": partition.topic})
                    continue
                if not isinstance(value, dict):
                    continue
                await self._handle(partition.topic, value)

    async def _handle(self, topic: str, value: dict[str, Any]) -> None:
        """One record to the hub. A frame that needs a row (a conversation's new state) and
        meets Postgres away is tried again a few times: a console that misses it would not
        hear of a conversation it was just given until it reconnects."""
        await self._retried(topic, lambda: self.handler(topic, value))

    async def _retried(self, what: str, call: Callable[[], Awaitable[None]]) -> None:
        for pause in (*FEED_DATABASE_PAUSES_S, None):
            try:
                await call()
                return
            except Exception as error:
                if pause is not None and database_away(error):
                    log.warning(
                        "feed handler met the database away; trying again",
                        extra={"topic": what, "error": repr(error), "pause_s": pause},
                    )
                    await asyncio.sleep(pause)
                    continue
                log.exception("feed handler failed", extra={"topic": what})
                return


class InvitationConsumer:
    """Stores each proactive invitation once and tells the instances to show it."""

    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        *,
        record: Callable[[dict[str, Any]], Awaitable[bool]],
        bus: Bus,
        group_id: str = "chat",
        session_timeout_ms: int = 10_000,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.progress = progress or untracked(group_id)
        self.stop_grace_s = stop_grace_s
        self._stopping = False
        self.consumer = AIOKafkaConsumer(
            CHAT_INVITATIONS.name,
            bootstrap_servers=bootstrap,
            client_id=client_id,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=20,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=1000,
            **security.aiokafka_options(),
        )
        self.record = record
        self.bus = bus
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name="invitations")

    async def stop(self) -> None:
        """Finish and commit the fetch in hand (up to `stop_grace_s`), then leave the group."""
        self._stopping = True
        self.progress.close()
        await finish_then_cancel(self._task, self.stop_grace_s)
        await self.consumer.stop()

    async def _run(self) -> None:
        with self.progress.running():
            await self._consume()

    async def _consume(self) -> None:
        while not self._stopping:
            try:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=200)
                if self._stopping:
                    return  # not handled, not committed: read again by the next owner
                self.progress.fetched(sum(len(records) for records in batches.values()))
                await self.progress.observe_lag(self.consumer)
                for records in batches.values():
                    for message in records:
                        # the invitation's trace goes on: triggers → here → the widget
                        with tracer.start_as_current_span(
                            f"{CHAT_INVITATIONS.name} process",
                            context=extract_context(message.headers),
                            kind=SpanKind.CONSUMER,
                        ):
                            await self._handle_safely(message)
                if batches:
                    await self.consumer.commit()
                self.progress.handled()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker or the database is away: retry, never stop
                log.exception("invitations consumer failed; retrying")
                await asyncio.sleep(1.0)

    async def _handle_safely(self, message: ConsumerRecord[bytes, bytes]) -> None:
        """One record's failure is that record's: it is dead-lettered, the rest go on."""
        try:
            await self._handle(message)
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            await self._dead_letter(message, "processing_failed", f"{type(exc).__name__}: {exc}")

    async def _handle(self, message: ConsumerRecord[bytes, bytes]) -> None:
        try:
            record = parse_invitation_record(message.value or b"")
        except ValidationError as exc:
            await self._dead_letter(message, "schema_invalid", str(exc), exc.errors())
            return
        if not isinstance(record, InvitationIssued):
            return  # held-out visitors are triggers' control group: nothing to show
        payload = record.payload
        if payload.expires_at <= datetime.now(UTC):
            return
        invitation = {
            "invitation_id": payload.invitation_id,
            "site_id": record.site_id,
            "visitor_id": record.visitor_id,
            "rule_id": payload.rule_id,
            "rule_name": payload.rule_name,
            "team": payload.team,
            "message": payload.message,
            "agent": payload.agent.model_dump() if payload.agent else None,
            "personal": payload.personal,
            "expires_at": payload.expires_at,
            "trace": trace_carrier(),  # the widget's answers continue it
        }
        if not await self.record(invitation):
            return
        agent = payload.agent
        await self.bus.signal(
            InvitationSignal(
                site_id=record.site_id,
                visitor_id=record.visitor_id,
                invitation=ShownInvitation(
                    id=payload.invitation_id,
                    message=payload.message,
                    agent=AgentCard(name=agent.name, avatar_url=agent.avatar_url)
                    if agent
                    else None,
                    team=payload.team,
                    expires_at=payload.expires_at,
                    rule_id=payload.rule_id,
                ),
            ),
            headers=inject_headers(),
        )

    async def _dead_letter(
        self,
        message: ConsumerRecord[bytes, bytes],
        reason: ReasonCode,
        detail: str,
        errors: Sequence[Any] = (),
    ) -> None:
        letter = dead_letter(
            message.value or b"",
            reason=reason,
            detail=detail,
            errors=errors,
            source=CHAT_INVITATIONS.name,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
        )
        await self.bus.producer.send_and_wait(
            CHAT_INVITATIONS_DLQ.name,
            encode_dead_letter(letter),
            key=letter.site_id.encode(),
            headers=inject_headers(),
        )
        count_dead_letter(CHAT_INVITATIONS_DLQ.name, letter)
        log.warning("invitation dead-lettered", extra={"reason": reason, "detail": detail[:200]})
