"""The notifier's `privacy.requests` consumer (`notifier.privacy.privacy_consumer`) on a fake
unit of work: it joins `<NOTIFIER_CONSUMER_GROUP>-privacy`; a command erases the conversations
and e-mails of its visitors and addresses and publishes the notifier's `privacy.erased`
(subjects as hashes); a redelivered command changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiokafka import ConsumerRecord
from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import (
    ErasureRequest,
    ErasureRequested,
    parse_privacy_erased,
    subject_hash,
)
from beckon_contracts.topics import PRIVACY_ERASED, PRIVACY_REQUESTS
from beckon_messaging.progress import Watchdog
from notifier.config import Settings
from notifier.privacy import privacy_consumer
from notifier.privacy.store import PrivacyStore

SITE = "shop"
EMAIL_HASH = subject_hash("Anna@Example.org")
CONVERSATION = uuid.UUID("019a0000-0000-7000-8000-0000000000c1")


class FakePrivacyStore:
    def __init__(self) -> None:
        self.erased: list[tuple[str, list[str], list[str], list[UUID]]] = []

    async def conversations_of(
        self, site_id: str, visitor_ids: list[str], email_hashes: list[str]
    ) -> list[UUID]:
        return [CONVERSATION] if EMAIL_HASH in email_hashes else []

    async def erase(
        self,
        site_id: str,
        visitor_ids: list[str],
        email_hashes: list[str],
        conversations: list[UUID],
    ) -> dict[str, int]:
        self.erased.append((site_id, list(visitor_ids), list(email_hashes), list(conversations)))
        return {"conversations": len(conversations), "emails": 2}


class FakeTx:
    def __init__(self, site_id: str, uow: FakeUnitsOfWork) -> None:
        self.site_id = site_id
        self.uow = uow
        self.records: list[Any] = []

    async def first_delivery(self, consumer: str, event_id: UUID) -> bool:
        if (consumer, event_id) in self.uow.processed:
            return False
        self.uow.processed.add((consumer, event_id))
        return True

    def store(self, kind: Any) -> Any:
        assert kind is PrivacyStore
        return self.uow.privacy

    def publish(self, *records: Any) -> None:
        self.records.extend(records)


class FakeUnitsOfWork:
    def __init__(self) -> None:
        self.privacy = FakePrivacyStore()
        self.processed: set[tuple[str, UUID]] = set()
        self.committed: list[FakeTx] = []

    @asynccontextmanager
    async def __call__(self, site_id: str) -> AsyncIterator[FakeTx]:
        tx = FakeTx(site_id, self)
        yield tx
        self.committed.append(tx)


def command(*visitors: str) -> ErasureRequested:
    return ErasureRequested(
        event_id=uuid7(),
        occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        site_id=SITE,
        payload=ErasureRequest(
            request_id=uuid.uuid4(),
            visitor_ids=list(visitors),
            email_hashes=[EMAIL_HASH],
            requested_by="shop-admin",
        ),
    )


def record(value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=PRIVACY_REQUESTS.name,
        partition=0,
        offset=5,
        timestamp=0,
        timestamp_type=0,
        key=SITE.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(SITE),
        serialized_value_size=len(value),
        headers=(),
    )


def test_the_consumer_reads_privacy_requests_in_a_group_of_its_own() -> None:
    privacy = privacy_consumer(
        Settings(consumer_group="notifier-test"),
        FakeUnitsOfWork(),
        object(),  # type: ignore[arg-type]
        Watchdog(),
    )
    assert privacy.group.topics == (PRIVACY_REQUESTS.name,)
    assert privacy.group._options["group_id"] == "notifier-test-privacy"
    assert privacy.source == "notifier:privacy.requests"


async def test_a_command_erases_the_conversations_and_emails_once() -> None:
    uow = FakeUnitsOfWork()
    privacy = privacy_consumer(Settings(), uow, object(), Watchdog())  # type: ignore[arg-type]
    sent = command("v-123")
    assert await privacy.handle(record(sent.model_dump_json().encode())) == "erased"

    assert uow.privacy.erased == [(SITE, ["v-123"], [EMAIL_HASH], [CONVERSATION])]
    [tx] = uow.committed
    [published] = tx.records
    assert published.topic == PRIVACY_ERASED.name
    fact = parse_privacy_erased(published.value)
    assert fact.payload.service == "notifier"
    assert fact.payload.request_id == sent.payload.request_id
    assert fact.payload.counts == {"conversations": 1, "emails": 2}
    assert fact.payload.visitor_hashes == [subject_hash("v-123")]
    assert fact.payload.email_hashes == [EMAIL_HASH]
    assert b"v-123" not in published.value

    assert await privacy.handle(record(sent.model_dump_json().encode())) == "erased"
    assert len(uow.privacy.erased) == 1
    assert [len(tx.records) for tx in uow.committed] == [1, 0]
