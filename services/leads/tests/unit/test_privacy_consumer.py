"""Leads' `privacy.requests` consumer (`leads.privacy.privacy_consumer`) on a fake unit of work:
it joins `<LEADS_CONSUMER_GROUP>-privacy`; a command erases the leads of its visitors and
addresses (with the visitors those leads name), publishes leads' `privacy.erased` with the erased
lead ids and queues it for the site's webhooks; a redelivered command changes nothing."""

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
from leads.config import Settings
from leads.privacy import privacy_consumer
from leads.privacy.store import PrivacyStore
from leads.webhooks.store import WebhookStore

SITE = "shop"
EMAIL_HASH = subject_hash("Anna@Example.org")
LEAD = uuid.UUID("019a0000-0000-7000-8000-00000000000a")


class FakePrivacyStore:
    def __init__(self) -> None:
        self.erased: list[tuple[str, list[UUID], list[str]]] = []

    async def leads_of(
        self, site_id: str, visitor_ids: list[str], email_hashes: list[str]
    ) -> list[UUID]:
        return [LEAD] if EMAIL_HASH in email_hashes else []

    async def visitors_of_leads(self, site_id: str, lead_ids: list[UUID]) -> list[str]:
        return ["v-anna"] if LEAD in lead_ids else []

    async def erase(
        self, site_id: str, lead_ids: list[UUID], visitors: list[str]
    ) -> dict[str, int]:
        self.erased.append((site_id, list(lead_ids), list(visitors)))
        return {"leads": len(lead_ids), "touches": 4}


class FakeWebhooks:
    def __init__(self) -> None:
        self.queued: list[dict[str, Any]] = []

    def queue(self, **event: Any) -> None:
        self.queued.append(event)


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
        return self.uow.stores[kind]

    def publish(self, *records: Any) -> None:
        self.records.extend(records)


class FakeUnitsOfWork:
    def __init__(self) -> None:
        self.privacy = FakePrivacyStore()
        self.webhooks = FakeWebhooks()
        self.stores: dict[Any, Any] = {PrivacyStore: self.privacy, WebhookStore: self.webhooks}
        self.processed: set[tuple[str, UUID]] = set()
        self.committed: list[FakeTx] = []

    @asynccontextmanager
    async def __call__(self, site_id: str, **_: Any) -> AsyncIterator[FakeTx]:
        tx = FakeTx(site_id, self)
        yield tx
        self.committed.append(tx)


class FakeBus:
    producer = object()


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
        Settings(environment="test", consumer_group="leads-test"),
        FakeUnitsOfWork(),
        FakeBus(),  # type: ignore[arg-type]
        Watchdog(),
    )
    assert privacy.group.topics == (PRIVACY_REQUESTS.name,)
    assert privacy.group._options["group_id"] == "leads-test-privacy"
    assert privacy.source == "leads:privacy.requests"


async def test_a_command_erases_the_leads_and_tells_the_crms_once() -> None:
    uow = FakeUnitsOfWork()
    privacy = privacy_consumer(Settings(environment="test"), uow, FakeBus(), Watchdog())  # type: ignore[arg-type]
    sent = command("v-123")
    assert await privacy.handle(record(sent.model_dump_json().encode())) == "erased"

    assert uow.privacy.erased == [(SITE, [LEAD], ["v-123", "v-anna"])]
    [tx] = uow.committed
    [published] = tx.records
    assert published.topic == PRIVACY_ERASED.name
    fact = parse_privacy_erased(published.value)
    assert fact.payload.service == "leads"
    assert fact.payload.lead_ids == [LEAD]
    assert fact.payload.counts == {"leads": 1, "touches": 4}
    assert fact.payload.visitor_hashes == sorted([subject_hash("v-123"), subject_hash("v-anna")])
    assert b"v-anna" not in published.value
    [queued] = uow.webhooks.queued
    assert queued["event_type"] == "privacy.erased"
    assert queued["body"] == published.value  # the CRMs get the fact's exact bytes

    assert await privacy.handle(record(sent.model_dump_json().encode())) == "erased"
    assert len(uow.privacy.erased) == 1
    assert len(uow.webhooks.queued) == 1
