"""Leads' part of a visitor's erasure (the `<LEADS_CONSUMER_GROUP>-privacy` consumer) and
export: the leads of the visitors and addresses, with their touches, conversations, timers,
merges, logged webhook payloads, published outbox rows and dead letters, are deleted in one
unit, which publishes leads' `privacy.erased` (with the erased lead ids, for CRMs) and queues
it for the site's webhooks that subscribe to `privacy.erased`. A replay (same event id)
changes nothing."""

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

from leads.privacy.store import PrivacyStore
from leads.uow import UnitsOfWork
from leads.webhooks.store import WebhookStore

CONSUMER = "privacy"


def erased_record(
    command: ErasureRequested,
    *,
    visitor_ids: Sequence[str],
    lead_ids: Sequence[Any],
    counts: dict[str, int],
) -> tuple[PrivacyErased, OutboxRecord]:
    fact = PrivacyErased(
        event_id=uuid7(),
        occurred_at=datetime.now(UTC),
        site_id=command.site_id,
        payload=Erased(
            request_id=command.payload.request_id,
            service="leads",
            counts=counts,
            visitor_hashes=sorted({subject_hash(visitor) for visitor in visitor_ids}),
            email_hashes=list(command.payload.email_hashes),
            lead_ids=list(lead_ids),
        ),
    )
    record = OutboxRecord(
        PRIVACY_ERASED.name, privacy_key(command.site_id), fact.model_dump_json().encode()
    )
    return fact, record


async def erase(*, uow: UnitsOfWork, command: ErasureRequested) -> dict[str, int] | None:
    """Leads' part of the erasure (None: a redelivered command)."""
    payload = command.payload
    async with uow(command.site_id) as tx:
        if not await tx.first_delivery(CONSUMER, command.event_id):
            return None
        store = tx.store(PrivacyStore)
        lead_ids = await store.leads_of(command.site_id, payload.visitor_ids, payload.email_hashes)
        visitors = sorted(
            {*payload.visitor_ids, *await store.visitors_of_leads(command.site_id, lead_ids)}
        )
        counts: dict[str, int] = await store.erase(command.site_id, lead_ids, visitors)
        fact, record = erased_record(
            command, visitor_ids=visitors, lead_ids=lead_ids, counts=counts
        )
        tx.publish(record)
        tx.store(WebhookStore).queue(
            site_id=command.site_id,
            event_type=fact.type,
            event_id=fact.event_id,
            body=record.value,
        )
    return counts


async def export(
    *, uow: UnitsOfWork, site_id: str, visitor_ids: Sequence[str], emails: Sequence[str]
) -> dict[str, Any]:
    async with uow.read(site_id) as tx:
        store = tx.store(PrivacyStore)
        lead_ids = await store.leads_of(
            site_id, list(visitor_ids), [subject_hash(email) for email in emails]
        )
        leads = await store.export(site_id, lead_ids)
    return {"site_id": site_id, "service": "leads", "leads": leads}
