"""The records the leads service writes to its outbox: `leads.events` facts, built from the
contract (`beckon_contracts.leads`) so a wrong field fails in the transaction, not in a
consumer, and numbered per lead (`seq`) in the same transaction.

    await emit(tx, LeadAssigned, lead, now=now, team=..., agent_id=..., how="auto")

`lead` is the lead *after* the change (re-read it, or build it with `dataclasses.replace`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from beckon_contracts.ids import uuid7
from beckon_contracts.leads import LeadCreated, _LeadEvent, lead_key
from beckon_contracts.topics import LEADS_EVENTS
from beckon_messaging.outbox import OutboxRecord

from leads.lead import Lead, LeadStore
from leads.uow import UnitOfWork
from leads.webhooks.store import WebhookStore

E = TypeVar("E", bound=_LeadEvent)


def lead_event(model: type[E], lead: Lead, *, seq: int, now: datetime, **payload: Any) -> E:
    """The event `model` about `lead` (as it is after the change), validated."""
    return model.model_validate(
        {
            "event_id": uuid7(),
            "occurred_at": now,
            "site_id": lead.site_id,
            "lead_id": lead.lead_id,
            "visitor_id": lead.visitor_id,
            "payload": {"seq": seq, "lead": lead.state(), **payload},
        }
    )


def record_of(event: _LeadEvent) -> OutboxRecord:
    return OutboxRecord(
        LEADS_EVENTS.name, lead_key(event.lead_id), event.model_dump_json().encode()
    )


async def emit(
    tx: UnitOfWork,
    model: type[E],
    lead: Lead,
    *,
    now: datetime,
    seq: int | None = None,
    **payload: Any,
) -> E:
    """Number, validate and publish (once `tx` commits) one event about `lead`. `seq`: its
    number, taken before (`LeadStore.next_seq`) by a caller that writes it on the row."""
    leads = tx.store(LeadStore)
    if seq is None and model is LeadCreated:  # the lead's row was inserted in this unit
        seq = leads.first_seq(lead.lead_id)
    elif seq is None:
        seq = await leads.next_seq(lead.site_id, lead.lead_id)
    event = lead_event(model, lead, seq=seq, now=now, **payload)
    publish(tx, event)
    return event


def publish(tx: UnitOfWork, event: _LeadEvent) -> None:
    """Publish a numbered event once `tx` commits, and queue exactly its bytes for the site's
    CRM webhooks in the same transaction (`emit`, and the SLA scheduler, which numbers a
    batch's events itself)."""
    record = record_of(event)
    tx.publish(record)
    tx.store(WebhookStore).queue(
        site_id=event.site_id, event_type=event.type, event_id=event.event_id, body=record.value
    )
