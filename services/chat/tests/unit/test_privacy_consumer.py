"""Chat's `privacy.requests` consumer (`chat.privacy.privacy_consumer`) on a fake unit of work:
it joins `<CHAT_CONSUMER_GROUP>-privacy`, hands each command to chat's erasure, which claims the
request, erases the visitors the command names (and those chat knows by the addresses' hashes),
marks the request done and publishes chat's `privacy.erased` (subjects as hashes); a redelivered
command changes nothing."""

from __future__ import annotations

import uuid
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
from chat.config import Settings
from chat.privacy import privacy_consumer
from chat.privacy.store import PrivacyStore
from fake_uow import FakeUnitsOfWork

SITE = "shop"
EMAIL_HASH = subject_hash("Anna@Example.org")


class FakePrivacyStore:
    """chat's PrivacyStore in memory: requests claimed once; who the addresses name."""

    def __init__(self) -> None:
        self.claimed: set[UUID] = set()
        self.by_email: dict[str, list[str]] = {EMAIL_HASH: ["v-anna"]}
        self.erased: list[tuple[str, list[str], list[str], UUID]] = []
        self.marked: list[tuple[UUID, dict[str, int]]] = []

    async def claim_request(self, request_id: UUID, site_id: str, requested_by: str) -> bool:
        if request_id in self.claimed:
            return False
        self.claimed.add(request_id)
        return True

    async def visitors_of(
        self, site_id: str, visitor_ids: list[str], email_hashes: list[str]
    ) -> list[str]:
        known = [v for h in email_hashes for v in self.by_email.get(h, [])]
        return sorted({*visitor_ids, *known})

    async def erase(
        self, site_id: str, visitors: list[str], email_hashes: list[str], request_id: UUID
    ) -> dict[str, int]:
        self.erased.append((site_id, list(visitors), list(email_hashes), request_id))
        return {"visitors": len(visitors), "messages": 3}

    async def mark_erased(self, request_id: UUID, counts: dict[str, int], at: datetime) -> None:
        self.marked.append((request_id, counts))


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
        offset=3,
        timestamp=0,
        timestamp_type=0,
        key=SITE.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(SITE),
        serialized_value_size=len(value),
        headers=(),
    )


def consumer() -> tuple[Any, FakeUnitsOfWork, FakePrivacyStore]:
    store = FakePrivacyStore()
    uow = FakeUnitsOfWork({PrivacyStore: store})
    settings = Settings(consumer_group="chat-test")
    return privacy_consumer(settings, uow, object(), Watchdog()), uow, store  # type: ignore[arg-type]


def test_the_consumer_reads_privacy_requests_in_a_group_of_its_own() -> None:
    privacy, _, _ = consumer()
    assert privacy.group.topics == (PRIVACY_REQUESTS.name,)
    assert privacy.group._options["group_id"] == "chat-test-privacy"
    assert privacy.source == "chat:privacy.requests"
    assert privacy.dead_letter_topic == PRIVACY_REQUESTS.dead_letter


async def test_a_command_erases_its_visitors_and_those_of_its_addresses_once() -> None:
    privacy, uow, store = consumer()
    sent = command("v-123")
    assert await privacy.handle(record(sent.model_dump_json().encode())) == "erased"

    [(site, visitors, hashes, request_id)] = store.erased
    assert (site, visitors, hashes) == (SITE, ["v-123", "v-anna"], [EMAIL_HASH])
    assert request_id == sent.payload.request_id
    assert store.marked == [(sent.payload.request_id, {"visitors": 2, "messages": 3})]
    [tx] = uow.committed
    assert tx.site_id == SITE
    [published] = tx.records
    assert published.topic == PRIVACY_ERASED.name
    fact = parse_privacy_erased(published.value)
    assert fact.payload.service == "chat"
    assert fact.payload.request_id == sent.payload.request_id
    assert fact.payload.counts == {"visitors": 2, "messages": 3}
    assert fact.payload.visitor_hashes == [subject_hash("v-123"), subject_hash("v-anna")]
    assert b"v-123" not in published.value  # the subjects by hash only

    # at least once: the same command again changes nothing and publishes nothing
    assert await privacy.handle(record(sent.model_dump_json().encode())) == "erased"
    assert len(store.erased) == 1
    assert [tx.records for tx in uow.committed] == [[published], []]
