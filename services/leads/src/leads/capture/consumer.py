"""Capture's Kafka side: `chat.events` and `tracking.events` in the deployment's consumer
group, each record one unit of work, offsets committed only after the units committed.

- **At least once, once in effect.** A record's unit records `first_delivery("capture",
  event_id)` with its effects, so a redelivery (a crash before the commit of the offset, a
  rebalance) changes nothing.
- **A poison record does not stop its partition.** Not JSON, not the contract (a used type
  that fails validation, an event without a type, a bad site id), or refused by the use case
  (a contact-only capture whose e-mail cannot be read): it goes to the topic's dead-letter
  twin with the reason, through the outbox, together with a `leads.dead_letters` row, and the
  partition goes on. Types capture does not use are skipped without a word.
- **An outage does not skip records.** Postgres or the broker away, a deadlock, a lost
  race that kept losing: the same record is tried again with a growing pause (forever: it is
  the world that is broken, not the record). Any other error is tried `max_attempts` times,
  then dead-lettered as `processing_failed`.
- A poll's partitions are dealt into lanes that run side by side (`in_lanes`: one lane when
  the poll is small), each lane in units of work of many records (`handle_batch`); one
  partition's records always in order.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import orjson
from aiokafka import ConsumerRecord, TopicPartition
from beckon_contracts.chat_events import (
    ConversationClosed,
    ConversationLeadMarked,
    ConversationStarted,
    ConversationTagged,
    EmailCaptured,
    OfflineMessageLeft,
)
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.topics import CHAT_EVENTS, TRACKING_EVENTS, VISITORS_STATE
from beckon_contracts.topics import get as topic_named
from beckon_contracts.tracking import Identified, OrderCompleted
from beckon_edge.refusals import Invalid, Refusal
from beckon_messaging import (
    PLAINTEXT,
    CompactedTopicFollower,
    KafkaSecurity,
    dead_letter,
    dead_letter_for,
)
from beckon_messaging import encode_dead_letter as encode
from beckon_messaging.consumer import TRANSIENT as WORLD_AWAY
from beckon_messaging.consumer import Backoff, GroupConsumer, Sleep
from beckon_messaging.consumer import handle_until_done as shared_until_done
from beckon_messaging.metrics import count_dead_letter
from beckon_messaging.outbox import OutboxRecord
from beckon_messaging.progress import ConsumerProgress, Watchdog
from beckon_observability import extract_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from leads.assignment import service as assignment
from leads.capture import service
from leads.capture.model import NotTheContract, capture_of, decode
from leads.capture.store import CaptureStore
from leads.capture.visitors import VisitorStates
from leads.config import Settings
from leads.uow import UnitsOfWork

log = logging.getLogger("leads.capture")
tracer = trace.get_tracer("leads")

TOPICS = (CHAT_EVENTS.name, TRACKING_EVENTS.name)
# The world is away, not the record: try the same record again (never skip it)
TRANSIENT: tuple[type[BaseException], ...] = (*WORLD_AWAY, service.Contended)
Clock = Callable[[], datetime]
Arrivals = dict[str, dict[UUID, datetime | None]]  # team → its just-queued leads' deadlines
Record = TypeVar("Record")
LANE_RECORDS = 100  # about this many records of a poll to a lane (`in_lanes`)
UPSERTS = (ConversationStarted, ConversationTagged)  # no first_delivery: idempotent writes
CAPTURES = (ConversationLeadMarked, EmailCaptured, OfflineMessageLeft)  # new leads or touches
Outcome = str  # "done", "duplicate", "skipped", "dead_lettered"


def utc_now() -> datetime:
    return datetime.now(UTC)


class CaptureHandler:
    """One record → its use case in one unit of work (or a dead letter)."""

    def __init__(
        self,
        uow: UnitsOfWork,
        states: VisitorStates | None = None,
        *,
        clock: Clock = utc_now,
        source: str = "leads:capture",
    ) -> None:
        self.uow = uow
        self.states = states
        self.clock = clock
        self.source = source
        self.outcomes: Counter[str] = Counter()

    async def handle(
        self,
        topic: str,
        value: bytes | None,
        *,
        partition: int | None = None,
        offset: int | None = None,
    ) -> Outcome:
        where: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
        try:
            event = decode(topic, value)
        except (orjson.JSONDecodeError, ValidationError) as error:
            letter = dead_letter_for(error, value or b"", source=self.source, **where)
            return await self._dead(letter)
        except NotTheContract as error:
            return await self._dead(
                dead_letter(
                    value or b"",
                    reason="schema_invalid",
                    detail=str(error),
                    errors=error.errors,
                    source=self.source,
                    **where,
                )
            )
        if event is None:
            self.outcomes["skipped"] += 1
            return "skipped"
        try:
            outcome = await self._apply(event)
        except Invalid as refusal:  # the record is readable, but a value in it is unusable
            errors = [{**problem, "type": refusal.code} for problem in refusal.errors or []]
            return await self._dead(
                dead_letter(
                    value or b"",
                    reason="schema_invalid",
                    detail=f"{refusal.code}: {refusal.detail}",
                    errors=errors,
                    source=self.source,
                    **where,
                )
            )
        except (Refusal, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
            return await self.dead_letter_failed(error, topic, value, partition, offset)
        self.outcomes[outcome] += 1
        return outcome

    async def dead_letter_failed(
        self,
        error: BaseException,
        topic: str,
        value: bytes | None,
        partition: int | None,
        offset: int | None,
    ) -> Outcome:
        """Dead-letter a record its use case failed on (`processing_failed`)."""
        detail = getattr(error, "detail", None) or str(error)
        code = getattr(error, "code", None)
        return await self._dead(
            dead_letter(
                value or b"",
                reason="processing_failed",
                detail=f"{code or type(error).__name__}: {detail}",
                source=self.source,
                topic=topic,
                partition=partition,
                offset=offset,
            )
        )

    async def _apply(self, event: Any) -> Outcome:
        async with self.uow(event.site_id) as tx:
            return await self._apply_in(tx, event, now=self.clock())

    async def _apply_in(
        self,
        tx: Any,
        event: Any,
        *,
        now: datetime,
        arrivals: Arrivals | None = None,
        first: set[UUID] | None = None,
    ) -> Outcome:
        """`event`'s use case in the unit `tx`. With `arrivals`, a new lead is only routed and
        queued, and noted there for the drain the batch ends with (`handle_batch`); with
        `first`, whether it is a first delivery is answered by that set (taken out of it)
        instead of a query of its own."""
        if isinstance(event, UPSERTS):  # idempotent by themselves
            if isinstance(event, ConversationStarted):
                await service.conversation_started(tx, event=event)
            else:
                await service.conversation_tagged(tx, event=event)
            return "done"
        if first is not None:
            if event.event_id not in first:
                return "duplicate"
            first.discard(event.event_id)  # a second copy in the same batch is a duplicate
        elif not await tx.first_delivery(service.CONSUMER, event.event_id):
            return "duplicate"
        if isinstance(event, CAPTURES):
            visitor = self.states.get(event.site_id, event.visitor_id) if self.states else None
            captured = await service.capture(
                tx,
                capture=capture_of(event),
                visitor=visitor,
                now=now,
                batched=arrivals is not None,
            )
            if arrivals is not None and captured is not None and captured.created:
                assert captured.lead.team is not None
                arrivals.setdefault(captured.lead.team, {})[captured.lead.lead_id] = (
                    captured.queued_due
                )
        elif isinstance(event, ConversationClosed):
            await service.conversation_closed(tx, event=event)
        elif isinstance(event, Identified):
            await service.identify(tx, event=event, now=now)
        elif isinstance(event, OrderCompleted):
            await service.order_completed(tx, event=event, now=now)
        return "done"

    async def handle_batch(
        self, records: list[ConsumerRecord[bytes, bytes]]
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """A batch of records (one partition's, or a lane of several, each partition's in
        order) in one unit of work per site: each record's use case in order, new leads
        queued as they come, then each team that got new leads drained once (its lock taken
        once, its agents' loads counted once) and one commit.
        Returns the records left for `handle` one at a time, in their order: the ones that
        do not decode (their dead letters), and all of a site whose unit failed (a lost race,
        a deadlock, an outage: nothing of that unit happened)."""
        left: list[int] = []  # positions in `records`
        by_site: dict[str, list[tuple[int, Any]]] = {}
        for position, record in enumerate(records):
            try:
                event = decode(record.topic, record.value)
            except (orjson.JSONDecodeError, ValidationError, NotTheContract):
                left.append(position)
                continue
            if event is None:  # a type capture does not use
                self.outcomes["skipped"] += 1
            else:
                by_site.setdefault(event.site_id, []).append((position, event))
        for site_id, pairs in by_site.items():
            outcomes: Counter[str] = Counter()
            try:
                async with self.uow(site_id) as tx:
                    arrivals: Arrivals = {}
                    first = await tx.first_deliveries(
                        service.CONSUMER,
                        [event.event_id for _, event in pairs if not isinstance(event, UPSERTS)],
                    )
                    await service.read_ahead(
                        tx,
                        [
                            capture_of(event)
                            for _, event in pairs
                            if isinstance(event, CAPTURES) and event.event_id in first
                        ],
                    )
                    for _, event in pairs:  # each at its own time: the queue's order
                        outcome = await self._apply_in(
                            tx, event, now=self.clock(), arrivals=arrivals, first=first
                        )
                        outcomes[outcome] += 1
                    await service.write_held(tx)  # the new leads, in the queues they wait in
                    await tx.lock_team(*arrivals)  # together, in sorted order
                    now = self.clock()
                    for team in sorted(arrivals):
                        await assignment.drain(tx, team=team, now=now, arrived=arrivals[team])
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.info(
                    "a batch of records failed; handling them one at a time",
                    extra={"site_id": site_id, "records": len(pairs), "error": repr(error)},
                )
                left.extend(position for position, _ in pairs)
                continue
            self.outcomes.update(outcomes)
        return [records[position] for position in sorted(left)]

    async def _dead(self, letter: DeadLettered) -> Outcome:
        payload = letter.payload
        topic = topic_named(payload.topic or CHAT_EVENTS.name)
        assert topic.dead_letter is not None
        async with self.uow(letter.site_id) as tx:
            tx.publish(OutboxRecord(topic.dead_letter, letter.site_id.encode(), encode(letter)))
            await tx.store(CaptureStore).record_dead_letter(
                site_id=None if letter.site_id == "unknown" else letter.site_id,
                topic=topic.name,
                partition=payload.partition,
                offset=payload.offset,
                reason=payload.reason,
                detail=payload.detail,
                value=payload.raw.encode(),
            )
        count_dead_letter(topic.dead_letter, letter)  # committed: the relay publishes it
        log.warning(
            "record dead-lettered",
            extra={"topic": topic.name, "reason": payload.reason, "detail": payload.detail[:200]},
        )
        self.outcomes["dead_lettered"] += 1
        return "dead_lettered"


async def handle_until_done(
    handler: CaptureHandler,
    record: ConsumerRecord[bytes, bytes],
    *,
    backoff: Backoff,
    sleep: Sleep = asyncio.sleep,
) -> Outcome:
    """Handle one record, retrying while the database or broker is away (never skipping it),
    and dead-lettering it after `backoff.max_attempts` unexpected failures."""

    async def handle(one: ConsumerRecord[bytes, bytes]) -> Outcome:
        return await handler.handle(
            one.topic, one.value, partition=one.partition, offset=one.offset
        )

    async def give_up(error: BaseException, one: ConsumerRecord[bytes, bytes]) -> Outcome:
        return await handler.dead_letter_failed(
            error, one.topic, one.value, one.partition, one.offset
        )

    return await shared_until_done(
        handle, give_up, record, transient=TRANSIENT, backoff=backoff, name="capture", sleep=sleep
    )


def in_lanes(partitions: list[list[Record]], *, per_lane: int) -> list[list[Record]]:
    """A poll's records (one list per partition) in lanes that run side by side: each
    partition's records in one lane, in their order, the partitions dealt out so that a lane
    holds about `per_lane` records. A quiet poll is one lane: one unit of work and one commit
    under its teams' locks, instead of one per partition waiting for each other's."""
    count = max(1, min(len(partitions), math.ceil(sum(map(len, partitions)) / per_lane)))
    lanes: list[list[Record]] = [[] for _ in range(count)]
    for records in sorted(partitions, key=len, reverse=True):
        min(lanes, key=len).extend(records)
    return [lane for lane in lanes if lane]


def _links(records: list[ConsumerRecord[bytes, bytes]]) -> list[trace.Link]:
    """The traces the records carry, as links of the span that handles them together."""
    links = []
    for record in records:
        context = trace.get_current_span(extract_context(record.headers)).get_span_context()
        if context.is_valid:
            links.append(trace.Link(context))
    return links


class CaptureConsumer:
    """The group consumer of `chat.events` and `tracking.events` for capture: each poll's
    partitions in lanes side by side (`in_lanes`), each lane in batches."""

    def __init__(
        self,
        handler: CaptureHandler,
        *,
        bootstrap: str,
        group_id: str,
        client_id: str,
        backoff: Backoff = Backoff(),
        before: Callable[[], Awaitable[object]] | None = None,
        session_timeout_ms: int = 10_000,
        security: KafkaSecurity = PLAINTEXT,
        batching: bool = True,
        batch_records: int = 500,
        lane_records: int = LANE_RECORDS,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.handler = handler
        self.backoff = backoff
        self.batching = batching  # a partition's records in one unit per site (handle_batch)
        self.batch_records = batch_records if batching else 1
        self.lane_records = lane_records
        self.group = GroupConsumer(
            TOPICS,
            self._process,
            bootstrap=bootstrap,
            group_id=group_id,
            client_id=client_id,
            name="leads-capture",
            backoff=backoff,
            before=before,
            session_timeout_ms=session_timeout_ms,
            security=security,
            progress=progress,
        )

    @property
    def committed(self) -> int:
        return self.group.committed

    async def start(self) -> None:
        """Start consuming in the background (returns at once, broker up or not)."""
        await self.group.start()

    async def stop(self) -> None:
        await self.group.stop()

    async def _process(
        self, polled: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        lanes = in_lanes(list(polled.values()), per_lane=self.lane_records)
        await asyncio.gather(*(self._lane(records) for records in lanes))

    async def _lane(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """One lane's records in order, `batch_records` to a unit of work."""
        for start in range(0, len(records), self.batch_records):
            await self._batch(records[start : start + self.batch_records])

    async def _batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        if self.batching and len(records) > 1:
            with tracer.start_as_current_span(
                "capture process",
                kind=SpanKind.CONSUMER,
                attributes={"messaging.batch.message_count": len(records)},
                links=_links(records),
            ):
                records = await self.handler.handle_batch(records)
        for record in records:
            with tracer.start_as_current_span(
                f"{record.topic} process",
                context=extract_context(record.headers),
                kind=SpanKind.CONSUMER,
            ):
                await handle_until_done(self.handler, record, backoff=self.backoff)


class Capturing:
    """Capture as it runs in an instance: the visitors.state follower and the consumer
    (started after the outbox relay, stopped before it: main.py's lifespan)."""

    def __init__(
        self, settings: Settings, uow: UnitsOfWork, watchdog: Watchdog | None = None
    ) -> None:
        self.settings = settings
        watchdog = watchdog or Watchdog()
        self.states = VisitorStates(settings.capture_visitor_states)
        self.follower = CompactedTopicFollower(
            settings.kafka_bootstrap,
            VISITORS_STATE,
            self.states.on_record,
            client_id=f"leads-{settings.instance_id}",
            security=settings.kafka_security,
            progress=watchdog.track(f"follow:{VISITORS_STATE.name}"),
        )
        self.handler = CaptureHandler(uow, self.states)
        self.consumer = CaptureConsumer(
            self.handler,
            bootstrap=settings.kafka_bootstrap,
            group_id=settings.consumer_group,
            client_id=f"leads-{settings.instance_id}-capture",
            backoff=Backoff(
                initial_s=settings.capture_retry_initial_s,
                max_s=settings.capture_retry_max_s,
                max_attempts=settings.capture_max_attempts,
            ),
            before=self._caught_up,
            security=settings.kafka_security,
            batching=settings.capture_batches,
            batch_records=settings.capture_batch_records,
            progress=watchdog.track(settings.consumer_group),
        )

    async def _caught_up(self) -> None:
        """Captures at start-up record the visitors' state: read what the topic holds first
        (for a while at most; a lead without a state beats a lead late)."""
        if not await self.follower.wait_caught_up(self.settings.capture_visitor_states_wait_s):
            log.warning("visitors.state not read to its end yet; capturing anyway")

    async def start(self) -> None:
        await self.follower.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.follower.stop()
