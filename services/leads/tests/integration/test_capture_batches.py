"""Capture's batches on a real Postgres: a partition's fetched records handled in one unit of
work per site (`CaptureHandler.handle_batch`) give the same leads, touches, events and queue
as one record at a time, assign within the cap in arrival order, and a unit that fails
leaves nothing behind: its records are then handled one at a time, each effect once."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import replace
from typing import Any

import asyncpg
import orjson
import pytest
from assign_testing import holders, queue, set_cap, set_presence
from capture_testing import Ticking, at, conversation_started, lead_marked, record
from leads.capture import service
from leads.capture.consumer import Backoff, CaptureHandler, handle_until_done
from leads.capture.model import VisitorView, capture_of
from leads.capture.visitors import VisitorStates
from leads.domain.routing import parse_routing
from leads.lead import LeadStore
from leads.routing.store import RoutingStore
from leads.uow import UnitOfWorkFactory
from leads_testing import unique

pytestmark = pytest.mark.integration
FAST = Backoff(initial_s=0.01, max_s=0.2, max_attempts=3)
AGENTS = {"ann": "online", "bob": "online", "cid": "online"}


def handler_on(pool: asyncpg.Pool) -> CaptureHandler:
    return CaptureHandler(
        UnitOfWorkFactory(pool, on_commit=lambda: None), VisitorStates(100), clock=Ticking()
    )


async def site_with_agents(pool: asyncpg.Pool, cap: int) -> str:
    site = unique("site")
    await set_presence(pool, site, "sales", AGENTS, as_of=at(0))
    for agent in AGENTS:
        await set_cap(pool, site, agent, cap)
    return site


async def site_events(pool: asyncpg.Pool, site: str) -> list[dict[str, Any]]:
    """The site's `leads.events` records in the outbox, in order."""
    rows = await pool.fetch(
        "SELECT value FROM leads.outbox WHERE topic = 'leads.events' ORDER BY id"
    )
    events = [orjson.loads(row["value"]) for row in rows]
    return [event for event in events if event["site_id"] == site]


async def leads_of(pool: asyncpg.Pool, site: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT lead_id, visitor_id, email_key, status, assignee, queued_at
           FROM leads.leads WHERE site_id = $1 ORDER BY visitor_id""",
        site,
    )


def batch_of(*events: Any) -> list[Any]:
    return [record(event, offset=n) for n, event in enumerate(events)]


async def test_a_batch_gives_the_same_leads_and_events_as_one_record_at_a_time(leads_pool):
    """Ten people, a second mark of one of them and a redelivery in one batch, over three
    agents with a cap of 2: six leads assigned (`auto`), four queued in arrival order, each
    lead's events numbered 1..n: the same leads, queue and events as when the records come
    one at a time."""
    results = {}
    for way in ("batch", "one at a time"):
        site = await site_with_agents(leads_pool, cap=2)
        marks = [
            lead_marked(site, f"v{n:02d}", email=f"p{n}@example.com", when=at(n)) for n in range(10)
        ]
        again = lead_marked(site, "v00-b", email="P0@Example.com", when=at(20))
        records = batch_of(*marks, again, marks[3])  # marks[3] delivered twice
        handler = handler_on(leads_pool)
        if way == "batch":
            left = await handler.handle_batch(records)  # type: ignore[arg-type]
            assert left == []
        else:
            for one in records:
                await handle_until_done(handler, one, backoff=FAST)  # type: ignore[arg-type]
        assert handler.outcomes == Counter(done=11, duplicate=1)

        leads = await leads_of(leads_pool, site)
        assert [lead["email_key"] for lead in leads] == [f"p{n}@example.com" for n in range(10)]
        by_visitor = {lead["visitor_id"]: lead for lead in leads}
        assigned = [v for v, lead in by_visitor.items() if lead["status"] == "assigned"]
        assert assigned == [f"v{n:02d}" for n in range(6)]  # the first six to arrive
        assert await holders(leads_pool, site) == {"ann": 2, "bob": 2, "cid": 2}
        waiting = await queue(leads_pool, site, "sales")
        assert waiting == [by_visitor[f"v{n:02d}"]["lead_id"] for n in range(6, 10)]

        events = await site_events(leads_pool, site)
        per_lead: dict[str, list[tuple[str, int]]] = {}
        for event in events:
            per_lead.setdefault(event["lead_id"], []).append(
                (event["type"], event["payload"]["seq"])
            )
        for numbered in per_lead.values():  # each lead's events numbered 1..n in order
            assert [seq for _, seq in numbered] == list(range(1, len(numbered) + 1))
        # and each row holds its last number: the next event of the lead follows on
        on_rows = await leads_pool.fetch(
            "SELECT lead_id, event_seq FROM leads.leads WHERE site_id = $1", site
        )
        assert {str(row["lead_id"]): row["event_seq"] for row in on_rows} == {
            lead_id: numbered[-1][1] for lead_id, numbered in per_lead.items()
        }
        first = [kind for kind, _ in per_lead[str(by_visitor["v00"]["lead_id"])]]
        # the second mark of the same person is a touch on the lead (`lead.merged`); a batch
        # assigns its new leads at its end, so there the touch comes before `lead.assigned`
        assert first == (
            ["lead.created", "lead.routed", "lead.merged", "lead.assigned"]
            if way == "batch"
            else ["lead.created", "lead.routed", "lead.assigned", "lead.merged"]
        )
        hows = Counter(
            event["payload"]["how"] for event in events if event["type"] == "lead.assigned"
        )
        assert hows == Counter(auto=6)
        touches = await leads_pool.fetchval(
            "SELECT count(*) FROM leads.touches t JOIN leads.leads l USING (lead_id)"
            " WHERE l.site_id = $1",
            site,
        )
        assert touches == 11
        results[way] = Counter(kind for lead in per_lead.values() for kind, _ in lead)
    assert results["batch"] == results["one at a time"]


async def test_a_failed_unit_leaves_nothing_and_its_records_go_one_at_a_time(
    leads_pool, monkeypatch
):
    """The fifth capture of a site's batch fails (a deadlock): its unit rolls back, the
    other site's unit of the same batch commits, and the failed site's records come back
    to be handled one at a time, with one lead, one touch and one `lead.created` each."""
    failing = await site_with_agents(leads_pool, cap=10)
    fine = await site_with_agents(leads_pool, cap=10)
    capture = service.capture
    calls = Counter[str]()

    async def capture_once_failing(tx: Any, **kwargs: Any) -> Any:
        calls[tx.site_id] += 1
        if tx.site_id == failing and calls[tx.site_id] == 5:
            raise asyncpg.DeadlockDetectedError("deadlock detected")
        return await capture(tx, **kwargs)

    monkeypatch.setattr(service, "capture", capture_once_failing)
    marks = [
        lead_marked(site, f"v{n}", email=f"p{n}@example.com", when=at(n))
        for n in range(6)
        for site in (failing, fine)
    ]
    handler = handler_on(leads_pool)
    left = await handler.handle_batch(batch_of(*marks))  # type: ignore[arg-type]
    assert [r.offset for r in left] == [
        n for n, mark in enumerate(marks) if mark.site_id == failing
    ]
    assert len(await leads_of(leads_pool, fine)) == 6
    assert await leads_of(leads_pool, failing) == []  # nothing of the failed unit happened
    assert await site_events(leads_pool, failing) == []

    for one in left:
        await handle_until_done(handler, one, backoff=FAST)
    leads = await leads_of(leads_pool, failing)
    assert len(leads) == 6
    assert {lead["status"] for lead in leads} == {"assigned"}
    events = await site_events(leads_pool, failing)
    assert Counter(event["type"] for event in events) == Counter(
        {"lead.created": 6, "lead.routed": 6, "lead.assigned": 6}
    )
    assert handler.outcomes == Counter(done=12)


async def test_records_that_do_not_decode_are_left_for_their_dead_letters(leads_pool):
    site = await site_with_agents(leads_pool, cap=10)
    good = lead_marked(site, "v1", email="ok@example.com")
    poison = record(good, offset=1)
    poison.value = b"not json " + uuid.uuid4().hex.encode()
    handler = handler_on(leads_pool)
    left = await handler.handle_batch([record(good, offset=0), poison])  # type: ignore[list-item]
    assert left == [poison]
    assert [lead["status"] for lead in await leads_of(leads_pool, site)] == ["assigned"]
    assert await handle_until_done(handler, poison, backoff=FAST) == "dead_lettered"  # type: ignore[arg-type]


async def test_a_unit_reads_the_routing_in_force_once_and_sees_its_own_save(leads_pool):
    site = unique("site")
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    rules = parse_routing({"default_team": "service", "rules": []})
    async with uow(site) as tx:
        routing = tx.store(RoutingStore)
        assert await routing.latest(site) is None
        await leads_pool.execute(  # another unit's save: this unit keeps what it read
            "INSERT INTO leads.routing_rules (site_id, version, document) VALUES ($1, 1, $2)",
            site,
            '{"default_team": "sales", "rules": []}',
        )
        assert await routing.latest(site) is None
        saved = await routing.save(site, rules, by="admin", now=at(0))
        found = await routing.latest(site)
        assert found is not None
        assert (found.version, found.rules.default_team) == (saved.version, "service")


async def test_what_a_unit_reads_ahead_follows_its_own_writes(leads_pool):
    """A unit reads its captures' conversations and unused person keys ahead; its own writes
    must still count: a conversation started earlier in the batch gives the mark its rule, a
    second visitor's touch on a lead makes that visitor's next capture (with a new e-mail)
    find the lead instead of opening a duplicate, and every held-back touch and conversation
    is written (the same rows as one record at a time)."""
    results = {}
    for way in ("batch", "one at a time"):
        site = await site_with_agents(leads_pool, cap=5)
        conversation = uuid.uuid4()
        records = batch_of(
            conversation_started(site, "v1", conversation, rule_id="rule-cart"),
            lead_marked(site, "v1", email="ann@example.com", conversation_id=conversation),
            lead_marked(site, "v2", email="ANN@example.com", when=at(1)),  # v2 touches ann
            lead_marked(site, "v2", email="ann.work@example.com", when=at(2)),  # v2: ann again
            lead_marked(site, "v3", email="bob@example.com", when=at(3)),
        )
        handler = handler_on(leads_pool)
        if way == "batch":
            assert await handler.handle_batch(records) == []  # type: ignore[arg-type]
        else:
            for one in records:
                await handle_until_done(handler, one, backoff=FAST)  # type: ignore[arg-type]
        leads = await leads_pool.fetch(
            """SELECT l.visitor_id, l.rule_id, count(DISTINCT t.touch_id) AS touches,
                      count(DISTINCT c.conversation_id) AS conversations
               FROM leads.leads l
               LEFT JOIN leads.touches t ON t.lead_id = l.lead_id
               LEFT JOIN leads.lead_conversations c ON c.lead_id = l.lead_id
               WHERE l.site_id = $1 GROUP BY 1, 2 ORDER BY 1""",
            site,
        )
        results[way] = [tuple(lead) for lead in leads]
        # ann: her mark (with the started conversation and its rule) and v2's two; bob: one
        assert results[way] == [("v1", "rule-cart", 3, 3), ("v3", None, 1, 1)], way


async def test_a_lead_a_unit_holds_back_is_the_row_its_insert_writes(leads_pool):
    """A batch's new lead is not inserted at once (`hold_lead`): the lead the rest of the
    unit works with (its events, its routing, its SLA) must be the row the held INSERT then
    writes, every column, with visitor state, conversation and attribution all set."""
    site = await site_with_agents(leads_pool, cap=5)
    states = VisitorStates(10)
    states.put(
        site,
        "v-held",
        VisitorView(
            as_of=at(-5),
            score=71.6,
            segment="hot",
            source="google",
            medium="cpc",
            campaign="spring",
            cart_value=129.5,
            currency="EUR",
        ),
    )
    conversation = uuid.uuid4()
    await handler_on(leads_pool).handle_batch(
        batch_of(conversation_started(site, "v-held", conversation, rule_id="cart-rescue"))  # type: ignore[arg-type]
    )
    mark = lead_marked(
        site, "v-held", email="Held.Person@Example.com", conversation_id=conversation, when=at(3)
    )
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    async with uow(site) as tx:
        await service.read_ahead(tx, [capture_of(mark)])
        captured = await service.capture(
            tx,
            capture=capture_of(mark),
            visitor=states.get(site, "v-held"),
            now=at(4),
            batched=True,
        )
        assert captured is not None
        assert captured.created
        held = captured.lead
        # not written yet: the other stores' queries would not see it until the drain's
        assert await tx.store(LeadStore).get(site, held.lead_id) is None
        await service.write_held(tx)
    async with uow.read(site) as tx:
        stored = await tx.store(LeadStore).get(site, held.lead_id)
    assert stored == replace(held, event_seq=stored.event_seq)  # numbered when the unit ends
    assert (stored.rule_id, stored.campaign, stored.score, stored.segment) == (
        "cart-rescue",
        "spring",
        72,
        "hot",
    )
    assert stored.capture["facts"]["cart_value"] == 129.5
