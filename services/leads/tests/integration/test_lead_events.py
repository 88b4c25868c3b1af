"""The lead row and its events: `emit` numbers one lead's events 1, 2, 3 in the transaction
that changes it (a rolled-back change takes its number back), validates them against the
contract and stores them in the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from beckon_contracts.leads import LeadAssigned, LeadCreated, parse_lead_event
from leads.events import emit
from leads.lead import LeadStore
from leads.uow import UnitOfWorkFactory
from leads_testing import unique
from pydantic import ValidationError

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


async def _new_lead(pool, site: str) -> uuid.UUID:
    lead_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, email, email_key,
                                    capture)
           VALUES ($1, $2, 'v-1', 'qualified', 'Ann@Example.com', 'ann@example.com',
                   '{"cart_value": "12.50"}')""",
        lead_id,
        site,
    )
    return lead_id


def _touch() -> dict[str, object]:
    return {
        "kind": "lead_marked",
        "source_event_id": uuid.uuid4(),
        "validation": "qualified",
        "at": NOW,
    }


async def test_a_leads_events_are_numbered_in_order_and_stored_in_the_outbox(leads_pool):
    site = unique("site")
    lead_id = await _new_lead(leads_pool, site)
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    async with uow(site) as tx:
        lead = await tx.store(LeadStore).lock(site, lead_id)
        assert lead is not None
        assert lead.capture == {"cart_value": "12.50"}
        created = await emit(tx, LeadCreated, lead, now=NOW, touch=_touch())
        assigned = await emit(
            tx, LeadAssigned, lead, now=NOW, team="sales", agent_id="a-1", how="auto"
        )
    assert (created.payload.seq, assigned.payload.seq) == (1, 2)
    assert created.payload.lead.contact.email == "ann@example.com"
    rows = await leads_pool.fetch(
        "SELECT topic, key, value FROM leads.outbox WHERE key = $1 ORDER BY id",
        str(lead_id).encode(),
    )
    assert [r["topic"] for r in rows] == ["leads.events", "leads.events"]
    stored = [parse_lead_event(r["value"]) for r in rows]
    assert [(e.type, e.payload.seq) for e in stored] == [("lead.created", 1), ("lead.assigned", 2)]
    assert stored[0].event_id == created.event_id


async def test_a_rolled_back_change_gives_its_number_back(leads_pool):
    site = unique("site")
    lead_id = await _new_lead(leads_pool, site)
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)

    async def assign_without_an_agent() -> None:
        async with uow(site) as tx:
            lead = await tx.store(LeadStore).get(site, lead_id)
            assert lead is not None
            await emit(tx, LeadAssigned, lead, now=NOW, team="sales", how="auto")

    with pytest.raises(ValidationError):  # no agent_id: the contract refuses it in the unit
        await assign_without_an_agent()
    async with uow(site) as tx:
        lead = await tx.store(LeadStore).get(site, lead_id)
        assert lead is not None
        event = await emit(tx, LeadCreated, lead, now=NOW, touch=_touch())
    assert event.payload.seq == 1
    value = await leads_pool.fetchval(
        "SELECT value FROM leads.outbox WHERE key = $1", str(lead_id).encode()
    )
    assert orjson.loads(value)["payload"]["seq"] == 1


async def test_another_sites_lead_is_not_found(leads_pool):
    site = unique("site")
    lead_id = await _new_lead(leads_pool, site)
    async with UnitOfWorkFactory(leads_pool, on_commit=lambda: None).read("other") as tx:
        assert await tx.store(LeadStore).get(unique("site"), lead_id) is None
        assert await tx.store(LeadStore).get(site, lead_id) is not None
