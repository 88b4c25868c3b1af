"""The notifier's part of a visitor's erasure (the `<NOTIFIER_CONSUMER_GROUP>-privacy`
consumer) and export. One unit deletes what it holds of the visitors and addresses and
publishes the notifier's `privacy.erased` through its outbox; a replay changes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import (
    Erased,
    ErasureRequested,
    PrivacyErased,
    privacy_key,
    subject_hash,
)
from beckon_contracts.topics import PRIVACY_ERASED
from beckon_messaging.outbox import OutboxRecord

from notifier.privacy.store import PrivacyStore
from notifier.uow import UnitsOfWork

CONSUMER = "privacy"


async def erase(*, uow: UnitsOfWork, command: ErasureRequested) -> dict[str, int] | None:
    """The notifier's part (None: a redelivered command)."""
    payload = command.payload
    async with uow(command.site_id) as tx:
        if not await tx.first_delivery(CONSUMER, command.event_id):
            return None
        store = tx.store(PrivacyStore)
        conversations = await store.conversations_of(
            command.site_id, payload.visitor_ids, payload.email_hashes
        )
        counts: dict[str, int] = await store.erase(
            command.site_id, payload.visitor_ids, payload.email_hashes, conversations
        )
        fact = PrivacyErased(
            event_id=uuid7(),
            occurred_at=datetime.now(UTC),
            site_id=command.site_id,
            payload=Erased(
                request_id=payload.request_id,
                service="notifier",
                counts=counts,
                visitor_hashes=[subject_hash(visitor) for visitor in payload.visitor_ids],
                email_hashes=list(payload.email_hashes),
            ),
        )
        tx.publish(
            OutboxRecord(
                PRIVACY_ERASED.name,
                privacy_key(command.site_id),
                fact.model_dump_json().encode(),
            )
        )
    return counts


async def export(
    *, uow: UnitsOfWork, site_id: str, visitor_ids: Sequence[str], emails: Sequence[str]
) -> dict[str, Any]:
    async with uow.read(site_id) as tx:
        store = tx.store(PrivacyStore)
        conversations = await store.conversations_of(
            site_id, list(visitor_ids), [subject_hash(email) for email in emails]
        )
        data: dict[str, Any] = await store.export(site_id, conversations)
    return {"site_id": site_id, "service": "notifier", **data}
