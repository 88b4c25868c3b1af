"""`apply_change` on a fake unit of work: the row it writes, the event it publishes (built from
the contract, numbered per lead) and the SLA timers it stops or starts."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from beckon_edge.refusals import Conflict, Forbidden, Invalid
from leads.changes import ChangeStore, apply_change
from leads.domain import lifecycle
from leads.lead import Lead, LeadStore
from leads.webhooks.store import WebhookStore

NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def _lead(**values: Any) -> Lead:
    base = {
        "lead_id": uuid.uuid4(),
        "site_id": "shop-a",
        "visitor_id": "v-1",
        "status": "assigned",
        "validation": "qualified",
        "team": "sales",
        "assignee": "anna",
        "name": "Ann",
        "company": None,
        "email": "ann@example.com",
        "email_key": "ann@example.com",
        "phone": None,
        "phone_key": None,
        "country": None,
        "language": None,
        "source": "chat",
        "rule_id": None,
        "campaign": None,
        "score": None,
        "segment": None,
        "capture": {},
        "order_id": None,
        "order_value": None,
        "currency": None,
        "lost_reason": None,
        "merged_into": None,
        "routing_version": None,
        "created_at": NOW - timedelta(minutes=3),
        "updated_at": NOW - timedelta(minutes=3),
        "queued_at": None,
        "assigned_at": NOW - timedelta(minutes=3),
        "first_contact_at": None,
        "closed_at": None,
        "event_seq": 2,
    }
    base.update(values)
    return Lead(**base)


class FakeChanges:
    def __init__(self, deadline: datetime | None) -> None:
        self.deadline = deadline
        self.touches: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    async def update(self, lead: Lead, values: dict[str, Any]) -> Lead:
        self.updates.append(values)
        return dataclasses.replace(lead, **values)

    async def add_touch(self, lead: Lead, **touch: Any) -> None:
        self.touches.append(touch)

    async def first_contact_deadline(self, site_id: str, lead_id: uuid.UUID) -> datetime | None:
        return self.deadline


class FakeLeads:
    def __init__(self, seq: int) -> None:
        self.seq = seq

    async def next_seq(self, site_id: str, lead_id: uuid.UUID) -> int:
        self.seq += 1
        return self.seq


class FakeWebhooks:
    """No endpoint subscribes: emitting queues nothing."""

    def queue(self, **_: Any) -> None:
        pass


class FakeTx:
    """A unit of work without a database: the stores above, and what it would publish."""

    def __init__(self, lead: Lead, deadline: datetime | None = None) -> None:
        self.site_id = lead.site_id
        self.records: list[Any] = []
        self.stores = {
            ChangeStore: FakeChanges(deadline),
            LeadStore: FakeLeads(lead.event_seq),
            WebhookStore: FakeWebhooks(),
        }

    def store(self, kind: Any) -> Any:
        return self.stores[kind]

    def publish(self, *records: Any) -> None:
        self.records.extend(records)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [orjson.loads(record.value) for record in self.records]


class FakeTimers:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Lead]] = []

    async def start_first_contact(self, tx: Any, *, lead: Lead, now: datetime) -> datetime | None:
        self.calls.append(("start", lead))
        return now + timedelta(minutes=30)

    async def stop(self, tx: Any, *, lead: Lead, now: datetime) -> int:
        self.calls.append(("stop", lead))
        return 3


async def _apply(tx: FakeTx, lead: Lead, change: lifecycle.Change, **kw: Any) -> Lead:
    return await apply_change(tx, lead=lead, change=change, now=NOW, **kw)  # type: ignore[arg-type]


async def test_a_contacted_lead_stops_its_sla_timers_and_says_it_was_within_the_sla():
    lead = _lead()
    tx, timers = FakeTx(lead, deadline=NOW + timedelta(minutes=2)), FakeTimers()
    after = await _apply(
        tx, lead, lifecycle.contact("anna"), by_agent_id="anna", timers=timers, channel="phone"
    )
    assert after.status == "contacted"
    assert after.first_contact_at == NOW
    assert [(call, seen.status) for call, seen in timers.calls] == [("stop", "contacted")]
    (event,) = tx.events
    assert event["type"] == "lead.contacted"
    assert event["payload"]["seq"] == 3  # the lead had 2 events
    assert event["payload"]["channel"] == "phone"
    assert event["payload"]["first"] is True
    assert event["payload"]["within_sla"] is True
    assert event["payload"]["lead"]["status"] == "contacted"
    touch = tx.stores[ChangeStore].touches[0]
    assert (touch["kind"], touch["agent_id"], touch["details"]) == (
        "contacted",
        "anna",
        {"channel": "phone"},
    )


async def test_a_contact_after_the_deadline_is_not_within_the_sla_and_without_timers_unknown():
    late = _lead()
    tx = FakeTx(late, deadline=NOW - timedelta(seconds=1))
    await _apply(tx, late, lifecycle.contact("anna"), timers=FakeTimers(), channel="email")
    assert tx.events[0]["payload"]["within_sla"] is False
    tx = FakeTx(late, deadline=None)
    await _apply(tx, late, lifecycle.contact("anna"), timers=FakeTimers(), channel="email")
    assert tx.events[0]["payload"]["within_sla"] is None


async def test_contacting_a_queued_lead_makes_the_contacter_its_holder():
    queued = _lead(status="new", assignee=None, assigned_at=None, queued_at=NOW)
    tx = FakeTx(queued)
    after = await _apply(tx, queued, lifecycle.contact("ben"), timers=FakeTimers(), channel="chat")
    assert (after.assignee, after.assigned_at, after.queued_at) == ("ben", NOW, None)


async def test_a_contact_needs_its_channel_named():
    lead = _lead()
    tx, timers = FakeTx(lead), FakeTimers()
    with pytest.raises(Invalid) as refused:
        await _apply(tx, lead, lifecycle.contact("anna"), timers=timers)
    assert refused.value.errors == [{"loc": "channel", "msg": "required for a contact"}]
    assert (tx.records, timers.calls) == ([], [])


async def test_qualifying_publishes_the_status_change_and_leaves_the_timers_alone():
    lead = _lead(status="contacted", first_contact_at=NOW)
    tx, timers = FakeTx(lead), FakeTimers()
    await _apply(tx, lead, lifecycle.qualify(), by_agent_id="anna", timers=timers, note="budget ok")
    (event,) = tx.events
    assert event["type"] == "lead.status_changed"
    assert {
        k: event["payload"][k] for k in ("from_status", "to_status", "by_agent_id", "note")
    } == {
        "from_status": "contacted",
        "to_status": "qualified",
        "by_agent_id": "anna",
        "note": "budget ok",
    }
    assert timers.calls == []


async def test_losing_an_uncontacted_lead_closes_it_with_its_reason_and_stops_the_timers():
    lead = _lead()
    tx, timers = FakeTx(lead), FakeTimers()
    after = await _apply(
        tx, lead, lifecycle.lose("price", "too dear"), by_agent_id="anna", timers=timers
    )
    assert (after.status, after.lost_reason, after.closed_at) == ("lost", "price", NOW)
    (event,) = tx.events
    assert (event["type"], event["payload"]["reason"], event["payload"]["note"]) == (
        "lead.lost",
        "price",
        "too dear",
    )
    assert [call for call, _ in timers.calls] == ["stop"]


async def test_an_admin_reopens_a_lost_lead_into_its_teams_queue_with_new_timers():
    lost = _lead(status="lost", lost_reason="price", closed_at=NOW, first_contact_at=NOW)
    tx, timers = FakeTx(lost), FakeTimers()
    with pytest.raises(Forbidden):
        await _apply(tx, lost, lifecycle.reopen(), by_agent_id="anna", timers=timers)
    after = await _apply(
        tx, lost, lifecycle.reopen(), by_agent_id="boss", admin=True, timers=timers
    )
    assert (after.status, after.assignee, after.lost_reason, after.closed_at) == (
        "new",
        None,
        None,
        None,
    )
    assert after.queued_at == NOW
    assert [(call, seen.status) for call, seen in timers.calls] == [("start", "new")]
    assert tx.events[0]["payload"]["to_status"] == "new"


async def test_a_win_by_an_order_records_its_value():
    lead = _lead(status="qualified", first_contact_at=NOW)
    tx = FakeTx(lead)
    order_event = uuid.uuid4()
    after = await _apply(
        tx,
        lead,
        lifecycle.win(),
        timers=FakeTimers(),
        how="order",
        order_id="o-7",
        order_event_id=order_event,
        value=Decimal("129.90"),
        currency="eur",
    )
    assert (after.order_id, after.order_value, after.currency, after.closed_at) == (
        "o-7",
        Decimal("129.90"),
        "EUR",
        NOW,
    )
    payload = tx.events[0]["payload"]
    assert (payload["how"], payload["value"], payload["currency"], payload["agent_id"]) == (
        "order",
        129.9,
        "EUR",
        "anna",
    )


async def test_a_merged_or_won_lead_refuses_changes():
    merged = _lead(merged_into=uuid.uuid4())
    with pytest.raises(Conflict, match="merged into"):
        await _apply(FakeTx(merged), merged, lifecycle.qualify(), timers=FakeTimers())
    won = _lead(status="won", closed_at=NOW)
    with pytest.raises(Conflict) as refused:
        await _apply(FakeTx(won), won, lifecycle.lose("price"), timers=FakeTimers())
    assert refused.value.code == "lead_won"
