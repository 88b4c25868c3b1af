"""The `privacy.requests` consumer every service that holds a visitor's data runs (chat, leads,
the notifier), each in a group of its own (`<CONSUMER_GROUP>-privacy`).

Each command goes to the service's `erase` (one unit of work that deletes or anonymises what
the service holds and stores its `privacy.erased` for its outbox, or sends it); `erase` must be
idempotent on the request id, since delivery is at least once. A record that is not a command
goes to the topic's dead letter with the reason; an outage is waited out (never skipping a
request); any other error is tried `Backoff.max_attempts` times, then dead-lettered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaProducer, TopicPartition
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.privacy import ErasureRequested, parse_privacy_command
from beckon_contracts.topics import Topic
from beckon_observability import inject_headers
from pydantic import ValidationError

from beckon_messaging.consumer import TRANSIENT, Backoff, GroupConsumer, Record, handle_until_done
from beckon_messaging.dead_letters import dead_letter, dead_letter_for, encode_dead_letter
from beckon_messaging.metrics import count_dead_letter
from beckon_messaging.progress import ConsumerProgress
from beckon_messaging.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger("beckon.privacy")
Erase = Callable[[ErasureRequested], Awaitable[object]]


class PrivacyConsumer:
    """Hands each erasure command of `topic` (the registry's `privacy.requests`) to `erase`."""

    def __init__(
        self,
        erase: Erase,
        producer: AIOKafkaProducer,
        *,
        topic: Topic,
        service: str,
        bootstrap: str,
        group_id: str,
        client_id: str,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
        backoff: Backoff = Backoff(),
    ) -> None:
        if topic.dead_letter is None:
            raise ValueError(f"{topic.name} needs a dead-letter topic")
        self.erase = erase
        self.producer = producer
        self.topic = topic
        self.dead_letter_topic = topic.dead_letter
        self.source = f"{service}:{topic.name}"
        self.backoff = backoff
        self.handled = 0  # commands erased (tests)
        self.group = GroupConsumer(
            (topic.name,),
            self._process,
            bootstrap=bootstrap,
            group_id=group_id,
            client_id=client_id,
            name="privacy",
            security=security,
            progress=progress,
        )

    async def start(self) -> None:
        await self.group.start()

    async def stop(self) -> None:
        await self.group.stop()

    async def handle(self, record: Record) -> str:
        raw = record.value or b""
        try:
            command = parse_privacy_command(raw)
        except ValidationError as error:
            where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
            await self._dead(dead_letter_for(error, raw, source=self.source, **where))
            return "dead_lettered"
        await self.erase(command)
        self.handled += 1
        log.info(
            "privacy request erased",
            extra={"request_id": str(command.payload.request_id), "site_id": command.site_id},
        )
        return "erased"

    async def failed(self, error: BaseException, record: Record) -> str:
        await self._dead(
            dead_letter(
                record.value or b"",
                reason="processing_failed",
                detail=f"{type(error).__name__}: {error}",
                source=self.source,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
        )
        return "dead_lettered"

    async def _dead(self, letter: DeadLettered) -> None:
        await self.producer.send_and_wait(
            self.dead_letter_topic,
            encode_dead_letter(letter),
            key=letter.site_id.encode(),
            headers=inject_headers(),
        )
        count_dead_letter(self.dead_letter_topic, letter)
        log.warning("privacy request dead-lettered", extra={"reason": letter.payload.reason})

    async def _process(self, polled: dict[TopicPartition, list[Record]]) -> None:
        for records in polled.values():
            for record in records:
                await handle_until_done(
                    self.handle,
                    self.failed,
                    record,
                    transient=TRANSIENT,
                    backoff=self.backoff,
                    name="privacy",
                )
