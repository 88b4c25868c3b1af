"""Capture on a real Postgres: dedup under concurrency, idempotent redelivery, the site's
contact-only switch, identify traits, order wins, merges and their undo. The records go
through the consumer's own handler (`handle_until_done`), without a broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest
from beckon_contracts.leads import parse_lead_event
from beckon_edge.refusals import Conflict, NotFound
from capture_testing import (
    Ticking,
    at,
    conversation_closed,
    conversation_started,
    email_captured,
    identified,
    lead_marked,
    offline_message,
    order_completed,
    record,
)
from leads import changes
from leads.capture import service
from leads.capture.consumer import Backoff, CaptureHandler, handle_until_done
from leads.capture.model import VisitorView
from leads.capture.visitors import VisitorStates
from leads.uow import UnitOfWorkFactory
from leads_testing import unique

pytestmark = pytest.mark.integration
FAST = Backoff(initial_s=0.01, max_s=0.2, max_attempts=3)


@pytest.fixture
async def pool(leads_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(leads_database, min_size=2, max_size=20)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def uow(pool: asyncpg.Pool) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(pool, on_commit=lambda: None)


@pytest.fixture
def handler(uow: UnitOfWorkFactory) -> CaptureHandler:
    return CaptureHandler(uow, VisitorStates(1000), clock=Ticking())


async def feed(handler: CaptureHandler, *events: Any) -> list[str]:
    return [await handle_until_done(handler, record(e), backoff=FAST) for e in events]  # type: ignore[arg-type]


async def open_leads(pool: asyncpg.Pool, site: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        """SELECT * FROM leads.leads WHERE site_id = $1 AND merged_into IS NULL
           AND status IN ('new', 'assigned', 'contacted', 'qualified') ORDER BY created_at""",
        site,
    )


async def touches(pool: asyncpg.Pool, lead_id: uuid.UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM leads.touches WHERE lead_id = $1 ORDER BY occurred_at, touch_id", lead_id
    )


async def lead_events(pool: asyncpg.Pool, site: str) -> list[Any]:
    rows = await pool.fetch(
        "SELECT value FROM leads.outbox WHERE topic = 'leads.events' ORDER BY id"
    )
    events = [parse_lead_event(row["value"]) for row in rows]
    return [event for event in events if event.site_id == site]


# --- dedup ---


async def test_200_concurrent_captures_of_50_people_give_50_leads_with_all_their_touches(
    pool, handler
):
    site = unique("site")
    people = range(50)

    def variants(i: int) -> list[str]:
        return [
            f"Person.{i}@Example.com",
            f"pErSoN.{i}@EXAMPLE.COM",
            f"PERSON.{i}@example.COM",
            f"person.{i}@example.com",
        ]

    captures = []
    for i in people:
        one, two, three, four = variants(i)
        captures += [
            lead_marked(site, f"v{i}-a", email=one, when=at(i)),
            email_captured(site, f"v{i}-b", two, when=at(i + 0.1)),
            offline_message(site, f"v{i}-c", three, name=f"Person {i}", when=at(i + 0.2)),
            lead_marked(site, f"v{i}-a", email=four, validation="ready_to_buy", when=at(i + 0.3)),
        ]
    outcomes = await asyncio.gather(
        *(handle_until_done(handler, record(c), backoff=FAST) for c in captures)  # type: ignore[arg-type]
    )
    assert outcomes == ["done"] * 200

    leads = await open_leads(pool, site)
    assert len(leads) == 50
    assert sorted(lead["email_key"] for lead in leads) == sorted(
        f"person.{i}@example.com" for i in people
    )
    total = await pool.fetchval("SELECT count(*) FROM leads.leads WHERE site_id = $1", site)
    assert total == 50  # nobody's second lead was made and merged away: they met on the index
    for lead in leads:
        kinds = sorted(t["kind"] for t in await touches(pool, lead["lead_id"]))
        assert kinds == ["email_captured", "lead_marked", "lead_marked", "offline_message"]
        assert lead["validation"] == "ready_to_buy"  # the highest of its captures

    # then each person's phone, in two formats, from two of their browsers at once
    identifies = []
    for i in people:
        identifies += [
            identified(site, f"v{i}-b", {"phone": f"+358 40 123 45{i:02d}"}, when=at(100 + i)),
            identified(
                site, f"v{i}-c", {"phone": f"040 123 45{i:02d}"}, locale="fi-FI", when=at(101 + i)
            ),
        ]
    outcomes = await asyncio.gather(
        *(handle_until_done(handler, record(e), backoff=FAST) for e in identifies)  # type: ignore[arg-type]
    )
    assert outcomes == ["done"] * 100
    leads = await open_leads(pool, site)
    assert len(leads) == 50
    by_email = {lead["email_key"]: lead for lead in leads}
    for i in people:
        lead = by_email[f"person.{i}@example.com"]
        assert lead["phone_key"] == f"+3584012345{i:02d}"
        assert len(await touches(pool, lead["lead_id"])) == 6
    created = [e for e in await lead_events(pool, site) if e.type == "lead.created"]
    assert len(created) == 50


async def test_a_redelivered_event_adds_nothing(pool, handler):
    site = unique("site")
    mark = lead_marked(site, "v-1", email="ann@example.com")
    assert await feed(handler, mark) == ["done"]
    (lead,) = await open_leads(pool, site)
    before = len(await lead_events(pool, site))

    assert await feed(handler, mark) == ["duplicate"]
    assert len(await open_leads(pool, site)) == 1
    assert len(await touches(pool, lead["lead_id"])) == 1
    assert len(await lead_events(pool, site)) == before


async def test_a_capture_records_rule_campaign_score_and_segment_at_capture(pool, uow):
    site = unique("site")
    states = VisitorStates(10)
    states.put(
        site,
        "v-1",
        VisitorView(
            as_of=at(-5),
            score=71.6,
            segment="hot",
            source="google",
            campaign="spring",
            cart_value=129.5,
            currency="EUR",
        ),
    )
    handler = CaptureHandler(uow, states, clock=lambda: at(60))
    conversation = uuid.uuid4()
    await feed(
        handler,
        conversation_started(site, "v-1", conversation, rule_id="cart-rescue"),
        lead_marked(site, "v-1", email="ann@example.com", conversation_id=conversation),
    )
    (lead,) = await open_leads(pool, site)
    assert (lead["rule_id"], lead["campaign"], lead["score"], lead["segment"]) == (
        "cart-rescue",
        "spring",
        72,
        "hot",
    )
    facts = orjson.loads(lead["capture"])["facts"]
    assert (facts["cart_value"], facts["currency"], facts["score_segment"]) == (
        129.5,
        "EUR",
        "hot",
    )
    (created,) = [e for e in await lead_events(pool, site) if e.type == "lead.created"]
    assert created.payload.attribution.rule_id == "cart-rescue"
    assert created.payload.attribution.campaign == "spring"
    assert created.payload.touch.kind == "lead_marked"
    conversations = await pool.fetch(
        "SELECT conversation_id FROM leads.lead_conversations WHERE lead_id = $1", lead["lead_id"]
    )
    assert [row["conversation_id"] for row in conversations] == [conversation]


async def test_a_new_lead_is_routed_once_by_its_facts_and_inserted_with_its_team(
    pool, handler, monkeypatch
):
    site = unique("site")
    asked: list[Any] = []
    routing_for = service.assignment.routing_for

    async def routing_spy(tx: Any, facts: Any) -> Any:
        asked.append(facts)
        return await routing_for(tx, facts)

    monkeypatch.setattr(service.assignment, "routing_for", routing_spy)
    await feed(handler, lead_marked(site, "v-1", email="ann@example.com", validation="interested"))
    await feed(handler, email_captured(site, "v-1", "ann@example.com"))  # joins: not routed again
    (facts,) = asked
    assert facts.validation == "interested"
    (lead,) = await open_leads(pool, site)
    # the site's default team; nobody is online: created, routed, then the e-mail's touch
    assert (lead["team"], lead["event_seq"]) == ("sales", 3)
    created, routed = (await lead_events(pool, site))[:2]
    assert (created.type, created.payload.lead.team) == ("lead.created", None)
    assert (routed.type, routed.payload.lead.team) == ("lead.routed", "sales")


async def test_closing_a_conversation_adds_its_final_context_to_its_lead(pool, handler):
    site = unique("site")
    conversation = uuid.uuid4()
    await feed(
        handler,
        lead_marked(site, "v-1", email="ann@example.com", conversation_id=conversation),
        conversation_closed(site, "v-1", conversation, when=at(30)),
    )
    (lead,) = await open_leads(pool, site)
    closed = [t for t in await touches(pool, lead["lead_id"]) if t["kind"] == "conversation_closed"]
    assert len(closed) == 1
    assert orjson.loads(closed[0]["details"])["messages"] == 7


# --- the site's switch ---


async def test_contact_only_captures_follow_the_sites_switch(pool, handler):
    site, other = unique("site"), unique("site")
    await pool.execute(
        "INSERT INTO leads.sites (site_id, capture_contact_only) VALUES ($1, false)", site
    )
    await feed(
        handler,
        email_captured(site, "v-1", "ann@example.com"),
        offline_message(site, "v-2", "bob@example.com"),
        email_captured(other, "v-1", "ann@example.com"),  # no row: on by default
    )
    assert await open_leads(pool, site) == []
    assert len(await open_leads(pool, other)) == 1

    await feed(handler, lead_marked(site, "v-3", email="cid@example.com"))  # agents' marks are on
    assert [lead["email_key"] for lead in await open_leads(pool, site)] == ["cid@example.com"]


# --- identify ---


async def test_an_unverified_identify_changes_no_lead(pool, handler):
    """The page's own claim (no valid identity hash): no e-mail, name or merge from it."""
    site = unique("site")
    await feed(handler, lead_marked(site, "v-1", email="ann@example.com"))
    (before,) = await open_leads(pool, site)
    await feed(
        handler,
        identified(site, "v-1", {"name": "Mallory", "email": "boss@example.com"}, verified=False),
    )
    (after,) = await open_leads(pool, site)
    assert (after["name"], after["email"]) == (before["name"], "ann@example.com")


async def test_identify_updates_the_traits_of_a_visitors_open_lead(pool, handler):
    site = unique("site")
    await feed(handler, identified(site, "v-1", {"name": "Nobody Yet"}))  # no lead: nothing
    assert await open_leads(pool, site) == []

    await feed(
        handler,
        lead_marked(site, "v-1", email="ann@example.com"),
        identified(
            site,
            "v-1",
            {
                "firstName": "Ann",
                "lastName": "Lee",
                "phone": "040 123 4567",
                "company": {"name": "Acme"},
            },
            locale="fi-FI",
            when=at(10),
        ),
    )
    (lead,) = await open_leads(pool, site)
    assert (lead["name"], lead["phone"], lead["phone_key"], lead["company"]) == (
        "Ann Lee",
        "+358401234567",
        "+358401234567",
        "Acme",
    )
    assert orjson.loads(lead["traits"])["phone"]["source"] == "visitor"

    await feed(handler, identified(site, "v-1", {"name": "Old Name"}, when=at(5)))  # older
    (lead,) = await open_leads(pool, site)
    assert lead["name"] == "Ann Lee"


async def test_an_identify_naming_another_open_leads_phone_merges_them(pool, handler):
    site = unique("site")
    await feed(
        handler,
        lead_marked(site, "v-1", email="ann@example.com", when=at(0)),
        identified(site, "v-1", {"phone": "+358 40 123 4567"}, when=at(1)),
        lead_marked(site, "v-2", email="ann.work@example.com", when=at(2)),
        identified(site, "v-2", {"phone": "+358401234567"}, when=at(3)),
    )
    (survivor,) = await open_leads(pool, site)
    assert survivor["email_key"] == "ann@example.com"  # the oldest survives, with its contact
    merged = await pool.fetchrow(
        "SELECT * FROM leads.leads WHERE site_id = $1 AND merged_into IS NOT NULL", site
    )
    assert merged["merged_into"] == survivor["lead_id"]
    (merge,) = await pool.fetch("SELECT * FROM leads.merges WHERE site_id = $1", site)
    assert merge["reason"] == "phone"
    kinds = sorted(t["kind"] for t in await touches(pool, survivor["lead_id"]))
    assert kinds == ["identify", "identify", "lead_marked", "lead_marked"]
    (event,) = [e for e in await lead_events(pool, site) if e.type == "lead.merged"]
    assert event.lead_id == survivor["lead_id"]
    assert event.payload.merged_lead_ids == [merged["lead_id"]]
    assert event.payload.matched_on == ["phone", "visitor"]

    # the absorbed lead's e-mail still finds the person
    await feed(handler, email_captured(site, "v-9", "ANN.WORK@example.com"))
    assert [lead["lead_id"] for lead in await open_leads(pool, site)] == [survivor["lead_id"]]


# --- orders ---


async def test_an_order_by_a_leads_visitor_wins_it_with_the_orders_value(
    pool, handler, monkeypatch
):
    site = unique("site")
    calls: list[dict[str, Any]] = []

    async def fake_apply_change(tx, *, lead, change, now, **details):  # the API slice's, faked
        calls.append({"lead": lead, "change": change, "now": now, **details})
        return lead

    monkeypatch.setattr(changes, "apply_change", fake_apply_change)
    await feed(handler, order_completed(site, "v-0", value="10.00"))  # no lead: nothing
    assert calls == []

    await feed(
        handler,
        lead_marked(site, "v-1", email="ann@example.com"),
        email_captured(site, "v-2", "ann@example.com"),  # her other browser
    )
    (lead,) = await open_leads(pool, site)
    order = order_completed(site, "v-2", value="249.90", currency="EUR", order_id="A-17")
    await feed(handler, order, order)  # redelivered: wins once
    (call,) = calls
    assert call["lead"].lead_id == lead["lead_id"]
    assert call["change"].kind == "win"
    assert (call["how"], call["order_id"], call["currency"]) == ("order", "A-17", "EUR")
    assert call["value"] == Decimal("249.90")
    assert call["order_event_id"] == order.event_id
    kinds = [t["kind"] for t in await touches(pool, lead["lead_id"])]
    assert kinds.count("order_completed") == 1


async def test_an_order_the_browser_reported_is_a_touch_on_the_lead_and_wins_nothing(
    pool, handler, monkeypatch
):
    site = unique("site")
    calls: list[dict[str, Any]] = []

    async def fake_apply_change(tx, *, lead, change, now, **details):
        calls.append({"lead": lead, "change": change, **details})
        return lead

    monkeypatch.setattr(changes, "apply_change", fake_apply_change)
    await feed(handler, lead_marked(site, "v-1", email="ann@example.com"))
    (lead,) = await open_leads(pool, site)
    # the probe's claim through the public snippet endpoint, with Ann's visitor id
    claim = order_completed(site, "v-1", value="999999999", reported_by="browser")
    await feed(handler, claim)
    assert calls == []  # not won, no value
    (touch,) = [t for t in await touches(pool, lead["lead_id"]) if t["kind"] == "order_completed"]
    details = touch["details"]
    details = orjson.loads(details) if isinstance(details, str) else details
    assert (details["reported_by"], Decimal(details["value"])) == ("browser", 999_999_999)


# --- merge and undo ---


async def test_a_capture_matching_two_open_leads_merges_them_and_an_admin_undoes_it(
    pool, uow, handler
):
    site = unique("site")
    await feed(
        handler,
        lead_marked(site, "v-1", email="ann@example.com", validation="interested", when=at(0)),
        lead_marked(site, "v-2", validation="qualified", when=at(1)),  # no e-mail: her visitor
    )
    first, second = await open_leads(pool, site)
    second_touches = {t["touch_id"] for t in await touches(pool, second["lead_id"])}

    # the second browser gives the first one's e-mail: one person, two open leads
    await feed(handler, email_captured(site, "v-2", "Ann@Example.com", when=at(2)))
    (survivor,) = await open_leads(pool, site)
    assert survivor["lead_id"] == first["lead_id"]
    assert survivor["validation"] == "qualified"  # the higher of the two
    absorbed = await pool.fetchrow(
        "SELECT * FROM leads.leads WHERE lead_id = $1", second["lead_id"]
    )
    assert absorbed["merged_into"] == first["lead_id"]
    merge = await pool.fetchrow("SELECT * FROM leads.merges WHERE site_id = $1", site)
    assert (merge["survivor_id"], merge["merged_id"], merge["reason"]) == (
        first["lead_id"],
        second["lead_id"],
        "email",
    )
    assert set(merge["moved_touches"]) == second_touches
    assert orjson.loads(merge["snapshot"])["absorbed"]["validation"] == "qualified"
    assert len(await touches(pool, first["lead_id"])) == 3
    (merged_event,) = [e for e in await lead_events(pool, site) if e.type == "lead.merged"]
    assert merged_event.payload.merge_id == merge["merge_id"]
    assert merged_event.payload.merged_lead_ids == [second["lead_id"]]
    assert [t.kind for t in merged_event.payload.touches] == ["email_captured"]

    # an admin undoes it
    async with uow(site) as tx:
        undone = await service.unmerge(
            tx, merge_id=merge["merge_id"], by_agent_id="admin-1", now=at(100)
        )
    assert undone.restored.lead_id == second["lead_id"]
    assert undone.restored.merged_into is None
    assert undone.survivor.validation == "interested"
    assert len(await open_leads(pool, site)) == 2
    assert {t["touch_id"] for t in await touches(pool, second["lead_id"])} == second_touches
    # the survivor keeps its own touch and the capture that joined it
    assert sorted(t["kind"] for t in await touches(pool, first["lead_id"])) == [
        "email_captured",
        "lead_marked",
    ]
    row = await pool.fetchrow("SELECT * FROM leads.merges WHERE merge_id = $1", merge["merge_id"])
    assert (row["undone_by"], row["undone_at"]) == ("admin-1", at(100))
    unmerged = [e for e in await lead_events(pool, site) if e.type == "lead.unmerged"]
    assert {e.lead_id for e in unmerged} == {first["lead_id"], second["lead_id"]}
    assert all(e.payload.restored_lead_ids == [second["lead_id"]] for e in unmerged)

    async with uow(site) as tx:  # twice: refused
        with pytest.raises(Conflict) as twice:
            await service.unmerge(
                tx, merge_id=merge["merge_id"], by_agent_id="admin-1", now=at(101)
            )
    assert twice.value.code == "merge_undone"
    async with uow(unique("site")) as tx:  # another site's merge: not found
        with pytest.raises(NotFound):
            await service.unmerge(
                tx, merge_id=merge["merge_id"], by_agent_id="admin-1", now=at(101)
            )
