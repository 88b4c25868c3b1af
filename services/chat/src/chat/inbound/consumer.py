"""The `chat.inbound` consumer, in the `<consumer group>-inbound` group.

Each record is one command, applied in one unit of work (`conversations.add_email_reply`),
in partition order (the key is the conversation), and the offsets are committed only after
every record of the fetch was applied or dead-lettered:

- **Once in effect.** The command's `event_id` is stored with the message it added, so a
  redelivery (a crash before the commit, a rebalance) adds nothing.
- **A command chat cannot apply goes to `chat.inbound.dlq`** with the reason, and the
  partition goes on: not JSON (`malformed_json`), not the contract (`schema_invalid`, naming
  the field), no text left (`schema_invalid`, `empty_text`), a conversation that does not
  exist or is another site's (`processing_failed`, `unknown_conversation` / `wrong_site`:
  chat's code starts the detail and is the field error's type).
- **An outage loses nothing.** Postgres or the broker away, a deadlock: the same record is
  tried again with a growing pause, for as long as it takes. Any other error is tried
  `MAX_ATTEMPTS` times, then dead-lettered as `processing_failed`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.inbound import parse_inbound_command
from beckon_contracts.topics import CHAT_INBOUND, CHAT_INBOUND_DLQ
from beckon_messaging import (
    PLAINTEXT,
    KafkaSecurity,
    dead_letter,
    dead_letter_for,
    encode_dead_letter,
)
from beckon_messaging.consumer import TRANSIENT, Backoff, GroupConsumer
from beckon_messaging.consumer import handle_until_done as shared_until_done
from beckon_messaging.metrics import count_dead_letter
from beckon_messaging.progress import ConsumerProgress
from beckon_observability import extract_context, inject_headers
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from chat.errors import ChatError
from chat.inbound.domain import EmailReply, letter_of, reply_of

log = logging.getLogger("chat.inbound")
tracer = trace.get_tracer("chat")

SOURCE = f"chat:{CHAT_INBOUND.name}"
MAX_ATTEMPTS = 5  # an unexpected error on one record, before it is dead-lettered
Apply = Callable[[EmailReply], Awaitable[str]]
Sleep = Callable[[float], Awaitable[None]]


class InboundHandler:
    """One record → its command applied (or its dead letter); says what happened."""

    def __init__(self, apply: Apply, producer: AIOKafkaProducer, *, max_chars: int) -> None:
        self.apply = apply
        self.producer = producer
        self.max_chars = max_chars

    async def handle(self, message: ConsumerRecord[bytes, bytes]) -> str:
        raw = message.value or b""
        where: dict[str, Any] = {
            "source": SOURCE,
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
        }
        try:
            command = parse_inbound_command(raw)
        except ValidationError as error:
            return await self.dead(dead_letter_for(error, raw, **where))
        try:
            return await self.apply(reply_of(command, max_chars=self.max_chars))
        except ChatError as refusal:
            reason, detail, errors = letter_of(refusal)
            return await self.dead(
                dead_letter(raw, reason=reason, detail=detail, errors=errors, **where)
            )
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name == "messages_command_id":
                return "duplicate"  # applied meanwhile by another member of the group
            return await self.failed(error, message)
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as error:
            return await self.failed(error, message)

    async def failed(self, error: BaseException, message: ConsumerRecord[bytes, bytes]) -> str:
        """Dead-letter a record that could not be applied (`processing_failed`)."""
        return await self.dead(
            dead_letter(
                message.value or b"",
                reason="processing_failed",
                detail=f"{type(error).__name__}: {error}",
                source=SOURCE,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
        )

    async def dead(self, letter: DeadLettered) -> str:
        await self.producer.send_and_wait(
            CHAT_INBOUND_DLQ.name,
            encode_dead_letter(letter),
            key=letter.site_id.encode(),
            headers=inject_headers(),
        )
        count_dead_letter(CHAT_INBOUND_DLQ.name, letter)
        log.warning(
            "inbound command dead-lettered",
            extra={"reason": letter.payload.reason, "detail": letter.payload.detail[:200]},
        )
        return "dead_lettered"


async def handle_until_done(
    handler: InboundHandler,
    message: ConsumerRecord[bytes, bytes],
    *,
    sleep: Sleep = asyncio.sleep,
    max_attempts: int = MAX_ATTEMPTS,
) -> str:
    """Handle one record, retrying while the database or broker is away (never skipping it),
    and dead-lettering it after `max_attempts` unexpected failures."""
    return await shared_until_done(
        handler.handle,
        handler.failed,
        message,
        transient=TRANSIENT,
        backoff=Backoff(max_attempts=max_attempts),
        name="inbound",
        sleep=sleep,
    )


class InboundConsumer:
    """Reads `chat.inbound` in its group and hands each record to the handler, in order
    (beckon_messaging.consumer: offsets committed after the records were applied)."""

    def __init__(
        self,
        handler: InboundHandler,
        *,
        bootstrap: str,
        client_id: str,
        group_id: str,
        session_timeout_ms: int = 10_000,
        security: KafkaSecurity = PLAINTEXT,
        progress: ConsumerProgress | None = None,
    ) -> None:
        self.handler = handler
        self.group = GroupConsumer(
            (CHAT_INBOUND.name,),
            self._process,
            bootstrap=bootstrap,
            group_id=group_id,
            client_id=client_id,
            name="inbound",
            session_timeout_ms=session_timeout_ms,
            fetch_max_wait_ms=20,  # a reply on its way to an agent's screen
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
        for records in polled.values():
            for message in records:
                # the notifier's trace goes on: inbound mail → here → the agent's socket
                with tracer.start_as_current_span(
                    f"{CHAT_INBOUND.name} process",
                    context=extract_context(message.headers),
                    kind=SpanKind.CONSUMER,
                ):
                    await handle_until_done(self.handler, message)
