"""Test support for the notifier: chat and leads facts built from their contracts, records as
the consumer reads them, an in-process notifier (intake, sender, inbound) on a real Postgres
and a real SMTP server (the dev stack's sink), and `python -m notifier` as a process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from beckon_contracts.chat_events import (
    ConversationClosed,
    ConversationClosedPayload,
    ConversationSeen,
    ConversationSeenPayload,
    ConversationStarted,
    ConversationStartedPayload,
    EmailCaptured,
    EmailCapturedPayload,
    MessageSent,
    MessageSentPayload,
    OfflineMessageLeft,
    OfflineMessagePayload,
)
from beckon_contracts.ids import uuid7
from beckon_devstack.smtp_sink import SmtpSink
from beckon_devstack.testing import HOST, ServiceProcess, wait_ready
from notifier.adapters.directory import Directory
from notifier.adapters.smtp import SmtpConfig, SmtpPool
from notifier.delivery.letters import Letters
from notifier.delivery.sender import DeliveryMetrics, Sender, SendPolicy
from notifier.domain.render import Renderer
from notifier.domain.tokens import ReplyTokens
from notifier.emails.service import Limits
from notifier.intake.consumer import IntakeHandler
from notifier.intake.service import Intake, Policy
from notifier.unsubscribe import UnsubscribeLinks
from notifier.uow import UnitOfWorkFactory
from prometheus_client import CollectorRegistry

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = "test-reply-secret-0123456789"
REPLY_DOMAIN = "reply.shop.test"
CHAT = "chat.events"
LEADS = "leads.events"


# --- facts ----------------------------------------------------------------------------------


@dataclass
class Talk:
    """One conversation's facts, numbered like chat numbers them."""

    site: str
    visitor: str = "v-1"
    conversation: UUID = field(default_factory=uuid7)
    seq: int = 0
    at: datetime = T0

    def _env(self, minutes: float = 0.0) -> dict[str, Any]:
        return {
            "event_id": uuid7(),
            "occurred_at": self.at + timedelta(minutes=minutes),
            "site_id": self.site,
            "visitor_id": self.visitor,
        }

    def started(self, language: str | None = "en", team: str = "sales") -> ConversationStarted:
        return ConversationStarted(
            **self._env(),
            payload=ConversationStartedPayload(
                conversation_id=self.conversation, team=team, language=language
            ),
        )

    def email(self, address: str) -> EmailCaptured:
        return EmailCaptured(
            **self._env(),
            payload=EmailCapturedPayload(conversation_id=self.conversation, email=address),
        )

    def says(
        self, author: str, text: str, *, agent: str = "Mikko", minutes: float = 0.0
    ) -> MessageSent:
        self.seq += 1
        return MessageSent(
            **self._env(minutes),
            payload=MessageSentPayload(
                conversation_id=self.conversation,
                message_id=uuid4(),
                seq=self.seq,
                author=author,  # type: ignore[arg-type]
                agent_id="a-1" if author == "agent" else None,
                agent_name=agent if author == "agent" else None,
                text=text,
                sent_at=self.at + timedelta(minutes=minutes),
            ),
        )

    def seen(self, up_to: int | None = None) -> ConversationSeen:
        return ConversationSeen(
            **self._env(),
            payload=ConversationSeenPayload(
                conversation_id=self.conversation, up_to_seq=up_to or self.seq, seen_at=self.at
            ),
        )

    def closed(self, email: str | None = None) -> ConversationClosed:
        return ConversationClosed(
            **self._env(5),
            payload=ConversationClosedPayload(
                conversation_id=self.conversation,
                closed_by="agent",
                agent_id="a-1",
                team="sales",
                messages=self.seq,
                email=email,
            ),
        )

    def offline(self, address: str, text: str, name: str | None = "Liisa") -> OfflineMessageLeft:
        return OfflineMessageLeft(
            **self._env(),
            payload=OfflineMessagePayload(
                conversation_id=self.conversation,
                team="sales",
                email=address,
                name=name,
                text=text,
                language="fi",
            ),
        )


def record(event: Any, *, topic: str = CHAT, offset: int = 0) -> SimpleNamespace:
    """A consumed record as the intake's handler reads it."""
    return SimpleNamespace(
        topic=topic, value=event.model_dump_json().encode(), partition=0, offset=offset, headers=()
    )


# --- an in-process notifier -----------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Notifier:
    """The intake, the sender and what they share, wired like main.py does, on a pool and a
    sink; the clock is the test's."""

    pool: asyncpg.Pool
    sink: SmtpSink
    clock: Clock
    directory: Directory
    uow: UnitOfWorkFactory
    handler: IntakeHandler
    sender: Sender
    tokens: ReplyTokens
    smtp: SmtpPool

    async def feed(self, *events: Any, topic: str = CHAT) -> list[str]:
        return [await self.handler.handle(record(e, topic=topic)) for e in events]  # type: ignore[arg-type]

    async def send(self) -> int:
        """Send rounds until nothing is claimed; how many rounds claimed something."""
        rounds = 0
        while await self.sender.send_due():
            rounds += 1
        return rounds

    async def emails(self, site: str) -> list[asyncpg.Record]:
        return await self.pool.fetch(
            "SELECT * FROM notifier.emails WHERE site_id = $1 ORDER BY created_at, email_id",
            site,
        )

    def mail_to(self, address: str) -> list[Any]:
        return self.sink.store.all(to=address)


def make_notifier(
    pool: asyncpg.Pool,
    sink: SmtpSink,
    *,
    clock: Clock | None = None,
    limits: Limits | None = None,
    unread_after_s: float = 300.0,
    registry: CollectorRegistry | None = None,
) -> Notifier:
    clock = clock or Clock()
    directory = Directory()
    uow = UnitOfWorkFactory(pool)
    limits = limits or Limits()
    tokens = ReplyTokens([SECRET])
    intake = Intake(
        directory,
        Policy(
            reply_domain=REPLY_DOMAIN,
            console_url="http://console.test/console/",
            unread_after_s=unread_after_s,
            offline_answer_gather_s=30.0,
            limits=limits,
        ),
    )
    smtp = SmtpPool(SmtpConfig(host=sink.host, port=sink.smtp_port, timeout_s=5.0, connections=4))
    sender = Sender(
        uow,
        smtp,
        Letters(
            Renderer(),
            tokens,
            UnsubscribeLinks([SECRET], "http://notifier.test"),
            from_address="chat@shop.test",
            reply_domain=REPLY_DOMAIN,
            reply_local="reply",
        ),
        SendPolicy(instance="test", batch=50, lease_s=60.0, retry_initial_s=30.0, max_attempts=5),
        limits=limits,
        clock=clock,
        metrics=DeliveryMetrics(registry),
    )
    return Notifier(
        pool=pool,
        sink=sink,
        clock=clock,
        directory=directory,
        uow=uow,
        handler=IntakeHandler(uow, intake, clock=clock),
        sender=sender,
        tokens=tokens,
        smtp=smtp,
    )


# --- the process ----------------------------------------------------------------------------


def notifier_env(
    database_url: str, bootstrap: str, port: int, instance: str, *, smtp_port: int, **extra: str
) -> dict[str, str]:
    return {
        **os.environ,
        "NOTIFIER_DATABASE_URL": database_url,
        "NOTIFIER_KAFKA_BOOTSTRAP": bootstrap,
        "NOTIFIER_HOST": HOST,
        "NOTIFIER_PORT": str(port),
        "NOTIFIER_INSTANCE_ID": instance,
        "NOTIFIER_ENVIRONMENT": "test",
        "NOTIFIER_LOG_JSON": "false",
        "NOTIFIER_CREATE_TOPICS": "false",
        "NOTIFIER_MIGRATE_ON_START": "true",
        "NOTIFIER_CONSUMER_GROUP": instance,
        "NOTIFIER_SMTP_PORT": str(smtp_port),
        "NOTIFIER_REPLY_SECRETS": SECRET,
        "NOTIFIER_REPLY_DOMAIN": REPLY_DOMAIN,
        "NOTIFIER_DIRECTORY_WAIT_S": "5",
        **extra,
    }


def spawn_notifier(log_dir: Path, name: str, env: dict[str, str]) -> ServiceProcess:
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "notifier"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    return ServiceProcess(name, int(env["NOTIFIER_PORT"]), process, log_path)


async def start_notifier(log_dir: Path, name: str, env: dict[str, str]) -> ServiceProcess:
    instance = spawn_notifier(log_dir, name, env)
    await wait_ready(instance)
    return instance


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout_s: float = 30.0, what: str = "the condition"
) -> Any:
    """`check()` until it answers something true (its answer), else fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
