"""The intake's Kafka side: `chat.events` and `leads.events` in the deployment's consumer
group (beckon_messaging.consumer), each record one unit of work, offsets committed after.

- **Once in effect.** A record's unit records `first_delivery("intake", event_id)` with the
  e-mails it intends, and every e-mail's idempotency key is unique besides: a redelivery,
  a replay or a second instance intends nothing twice.
- **A poison record does not stop its partition.** Not JSON, no type, a used type that
  breaks its contract: to the topic's dead-letter twin with the reason (through the outbox,
  with a `notifier.dead_letters` row). Types the notifier does not use are skipped.
- **An outage does not skip records**: Postgres or the broker away, the record is tried
  again with a growing pause, forever; other errors `max_attempts` times, then dead-lettered.
- Partitions of a poll run side by side; one partition's records in order, up to
  `NOTIFIER_INTAKE_BATCH_RECORDS` of them in one unit of work (a batch that fails, or a record
  that does not decode, goes one record per unit instead).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from beckon_contracts.chat_events import (
    ConversationClosed,
    ConversationSeen,
    ConversationStarted,
    EmailCaptured,
    MessageSent,
    OfflineMessageLeft,
    chat_event_adapter,
)
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.leads import (
    LeadAssigned,
    LeadEscalated,
    LeadSlaWarning,
    LeadsTopicRecord,
    WebhookEndpointDisabled,
)
from beckon_contracts.topics import CHAT_EVENTS, LEADS_EVENTS
from beckon_contracts.topics import get as topic_named
from beckon_messaging import PLAINTEXT, KafkaSecurity, dead_letter, dead_letter_for
from beckon_messaging import encode_dead_letter as encode
from beckon_messaging.consumer import TRANSIENT, Backoff, GroupConsumer, handle_until_done
from beckon_messaging.metrics import count_dead_letter
from beckon_messaging.outbox import OutboxRecord
from beckon_messaging.progress import ConsumerProgress
from beckon_observability import extract_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import TypeAdapter, ValidationError

from notifier.intake.service import CONSUMER, Intake
from notifier.uow import EVERY_SITE, UnitsOfWork

log = logging.getLogger("notifier.intake")
tracer = trace.get_tracer("notifier")

TOPICS = (CHAT_EVENTS.name, LEADS_EVENTS.name)
USED_TYPES: dict[str, frozenset[str]] = {
    CHAT_EVENTS.name: frozenset(
        {
            "conversation.started",
            "conversation.email_captured",
            "message.sent",
            "conversation.seen",
            "conversation.closed",
            "offline.message_left",
        }
    ),
    LEADS_EVENTS.name: frozenset(
        {"lead.assigned", "lead.sla_warning", "lead.escalated", "webhook.disabled"}
    ),
}
leads_topic_adapter: TypeAdapter[LeadsTopicRecord] = TypeAdapter(LeadsTopicRecord)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class NotTheContract(ValueError):
    pass


def decode(topic: str, value: bytes | None) -> Any | None:
    """The event of a record the intake uses, or None for a type it does not use."""
    data = orjson.loads(value or b"")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise NotTheContract("a record must be a JSON object with a string `type`")
    if data["type"] not in USED_TYPES.get(topic, frozenset()):
        return None
    if topic == CHAT_EVENTS.name:
        return chat_event_adapter.validate_python(data)
    return leads_topic_adapter.validate_python(data)


class IntakeHandler:
    """One record → its use case in one unit of work (or a dead letter)."""

    def __init__(self, uow: UnitsOfWork, intake: Intake, *, clock: Clock = utc_now) -> None:
        self.uow = uow
        self.intake = intake
        self.clock = clock
        self.outcomes: Counter[str] = Counter()

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> str:
        where: dict[str, Any] = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
        }
        try:
            event = decode(record.topic, record.value)
        except (orjson.JSONDecodeError, ValidationError) as error:
            return await self._dead(
                dead_letter_for(error, record.value or b"", source="notifier:intake", **where)
            )
        except NotTheContract as error:
            return await self._dead(
                dead_letter(
                    record.value or b"",
                    reason="schema_invalid",
                    detail=str(error),
                    source="notifier:intake",
                    **where,
                )
            )
        if event is None:
            self.outcomes["skipped"] += 1
            return "skipped"
        async with self.uow(event.site_id) as tx:
            if not await tx.first_delivery(CONSUMER, event.event_id):
                outcome = "duplicate"
            else:
                await self._apply(tx, event)
                outcome = "done"
        self.outcomes[outcome] += 1
        return outcome

    async def handle_batch(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Records of one partition in one unit of work, each event's use case in order.
        Returns the records left for `handle` one at a time: those that do not decode (their
        dead letters), or all of them when the unit failed (nothing of it happened)."""
        events: list[Any] = []
        left: list[ConsumerRecord[bytes, bytes]] = []
        skipped = 0
        for record in records:
            try:
                event = decode(record.topic, record.value)
            except (orjson.JSONDecodeError, ValidationError, NotTheContract):
                left.append(record)
                continue
            if event is None:
                skipped += 1
            else:
                events.append(event)
        if not events:
            self.outcomes["skipped"] += skipped
            return left
        outcomes: Counter[str] = Counter(skipped=skipped)
        try:
            async with self.uow(EVERY_SITE) as tx:
                first = await tx.first_deliveries(CONSUMER, [e.event_id for e in events])
                for event in events:
                    if event.event_id in first:
                        first.discard(event.event_id)  # a second copy in the batch: a duplicate
                        await self._apply(tx, event)
                        outcomes["done"] += 1
                    else:
                        outcomes["duplicate"] += 1
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning(
                "a batch failed; its records go one at a time", extra={"error": repr(error)}
            )
            return records
        self.outcomes.update(outcomes)
        return left

    async def _apply(self, tx: Any, event: Any) -> None:
        now = self.clock()
        intake = self.intake
        if isinstance(event, ConversationStarted):
            await intake.conversation_started(tx, event)
        elif isinstance(event, EmailCaptured):
            await intake.email_captured(tx, event)
        elif isinstance(event, MessageSent):
            await intake.message_sent(tx, event, now=now)
        elif isinstance(event, ConversationSeen):
            await intake.seen(tx, event)
        elif isinstance(event, ConversationClosed):
            await intake.conversation_closed(tx, event, now=now)
        elif isinstance(event, OfflineMessageLeft):
            await intake.offline_message(tx, event, now=now)
        elif isinstance(event, LeadAssigned | LeadSlaWarning | LeadEscalated):
            await intake.lead_alert(tx, event, now=now)
        elif isinstance(event, WebhookEndpointDisabled):
            await intake.webhook_disabled(tx, event, now=now)

    async def give_up(self, error: BaseException, record: ConsumerRecord[bytes, bytes]) -> str:
        """Dead-letter a record its use case kept failing on (`processing_failed`)."""
        return await self._dead(
            dead_letter(
                record.value or b"",
                reason="processing_failed",
                detail=f"{type(error).__name__}: {error}",
                source="notifier:intake",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
        )

    async def _dead(self, letter: DeadLettered) -> str:
        payload = letter.payload
        topic = topic_named(payload.topic or CHAT_EVENTS.name)
        assert topic.dead_letter is not None
        async with self.uow(letter.site_id) as tx:
            tx.publish(OutboxRecord(topic.dead_letter, letter.site_id.encode(), encode(letter)))
            await tx.conn.execute(
                """INSERT INTO notifier.dead_letters
                       (site_id, source_topic, partition, "offset", reason, detail, value)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                None if letter.site_id == "unknown" else letter.site_id,
                topic.name,
                payload.partition,
                payload.offset,
                payload.reason,
                payload.detail,
                payload.raw.encode(),
            )
        count_dead_letter(topic.dead_letter, letter)  # committed: the relay publishes it
        log.warning(
            "record dead-lettered",
            extra={"topic": topic.name, "reason": payload.reason, "detail": payload.detail[:200]},
        )
        self.outcomes["dead_lettered"] += 1
        return "dead_lettered"


class IntakeConsumer:
    """The group consumer of `chat.events` and `leads.events` for the notifier."""

    def __init__(
        self,
        handler: IntakeHandler,
        *,
        bootstrap: str,
        group_id: str,
        client_id: str,
        backoff: Backoff = Backoff(),
        before: Callable[[], Any] | None = None,
        security: KafkaSecurity = PLAINTEXT,
        batch_records: int = 200,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.handler = handler
        self.backoff = backoff
        self.batch_records = batch_records
        self.group = GroupConsumer(
            TOPICS,
            self._process,
            bootstrap=bootstrap,
            group_id=group_id,
            client_id=client_id,
            name="notifier-intake",
            backoff=backoff,
            before=before,
            security=security,
            progress=progress,
        )

    async def start(self) -> None:
        await self.group.start()

    async def stop(self) -> None:
        await self.group.stop()

    async def _process(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        await asyncio.gather(*(self._partition(records) for records in polled.values()))

    async def _partition(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """One partition's records in order, `batch_records` to a unit of work; what a batch
        leaves (a poison record, a failed unit) one record at a time, until done."""
        for start in range(0, len(records), self.batch_records):
            chunk = records[start : start + self.batch_records]
            if len(chunk) > 1:
                with tracer.start_as_current_span(
                    "intake process",
                    kind=SpanKind.CONSUMER,
                    attributes={"messaging.batch.message_count": len(chunk)},
                ):
                    chunk = await self.handler.handle_batch(chunk)
            for record in chunk:
                with tracer.start_as_current_span(
                    f"{record.topic} process",
                    context=extract_context(record.headers),
                    kind=SpanKind.CONSUMER,
                ):
                    await handle_until_done(
                        self.handler.handle,
                        self.handler.give_up,
                        record,
                        transient=TRANSIENT,
                        backoff=self.backoff,
                        name="intake",
                    )
