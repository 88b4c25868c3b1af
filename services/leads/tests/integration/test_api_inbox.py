"""The leads inbox and REST API on the real Postgres (sessions confirmed by a real local HTTP
server answering like chat): tenant isolation on every endpoint, who sees and changes what,
status changes publishing their events numbered per lead, filters and paging, the CSV export,
bad input answered with the field's name."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from api_testing import Agent, LeadsApi, insert_lead, leads_api, published
from capture_testing import lead_marked, record
from leads.api.deps import Caller
from leads.capture.consumer import Backoff, CaptureHandler, handle_until_done
from leads.capture.visitors import VisitorStates
from leads.inbox import service
from leads.uow import UnitOfWorkFactory
from leads_testing import unique

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
FAST = Backoff(initial_s=0.01, max_s=0.2, max_attempts=3)


@pytest.fixture
async def api(leads_pool, leads_database):
    async with leads_api(leads_pool, leads_database) as running:
        yield running


class Shop:
    """A site with an agent of sales (anna), one of service (carl) and an admin (boss)."""

    def __init__(self, api: LeadsApi) -> None:
        self.site = unique("site")
        self.anna = api.chat.add(Agent(self.site, "anna", "agent", ("sales",)))
        self.carl = api.chat.add(Agent(self.site, "carl", "agent", ("service",)))
        self.boss = api.chat.add(Agent(self.site, "boss", "admin", ()))


async def _key(api: LeadsApi, admin: Agent) -> str:
    async with api.client(admin) as http:
        made = await http.post("/v1/admin/api-keys", json={"name": "CRM"})
    key: str = made.json()["key"]
    return key


async def test_every_endpoint_answers_404_for_another_sites_ids(api):
    mine, theirs = Shop(api), Shop(api)
    lead = await insert_lead(api.pool, theirs.site, status="new", assignee=None)
    held = await insert_lead(api.pool, theirs.site, name="Their secret customer")
    their_key = await _key(api, theirs.boss)
    async with api.client(theirs.boss) as http:
        their_key_id = (await http.get("/v1/admin/api-keys")).json()["api_keys"][0]["key_id"]
    my_key = await _key(api, mine.boss)

    async with api.client(mine.boss) as http:
        calls = [
            await http.get(f"/v1/leads/{held}"),
            await http.post(f"/v1/leads/{held}/status", json={"change": "qualify"}),
            await http.post(f"/v1/leads/{lead}/claim"),
            await http.post(f"/v1/leads/{held}/reassign", json={"to_agent_id": "boss"}),
            await http.delete(f"/v1/admin/api-keys/{their_key_id}"),
        ]
        listed = (await http.get("/v1/leads?scope=all")).json()["leads"]
        exported = (await http.get("/v1/leads/export.csv")).text
    async with api.api(my_key) as client:
        calls += [
            await client.get(f"/v1/api/leads/{held}"),
            await client.post(f"/v1/api/leads/{held}/status", json={"change": "qualify"}),
        ]
        listed += (await client.get("/v1/api/leads")).json()["leads"]
        exported += (await client.get("/v1/api/leads/export.csv")).text
    for answer in calls:
        assert answer.status_code == 404, (answer.request.url, answer.text)
        assert answer.json()["error"] in ("lead_not_found", "api_key_not_found")
        assert "secret customer" not in answer.text
    assert listed == []
    assert "secret customer" not in exported
    assert str(held) not in exported
    # nothing of theirs changed
    row = await api.pool.fetchrow(
        "SELECT status, event_seq FROM leads.leads WHERE lead_id=$1", held
    )
    assert (row["status"], row["event_seq"]) == ("assigned", 0)
    async with api.api(their_key) as client:
        assert (await client.get(f"/v1/api/leads/{held}")).status_code == 200


async def test_status_changes_publish_their_events_numbered_per_lead(api):
    shop = Shop(api)
    lead = await insert_lead(api.pool, shop.site)
    other = await insert_lead(api.pool, shop.site)
    async with api.client(shop.anna) as http:
        contacted = await http.post(
            f"/v1/leads/{lead}/status",
            json={"change": "contact", "channel": "phone", "note": "called, keen"},
        )
        assert contacted.status_code == 200, contacted.text
        assert contacted.json()["status"] == "contacted"
        assert contacted.json()["first_contact_at"] is not None
        assert sorted(contacted.json()["allowed"]) == ["lose", "qualify", "recycle", "win"]
        qualified = await http.post(f"/v1/leads/{lead}/status", json={"change": "qualify"})
        assert qualified.json()["status"] == "qualified"
        won = await http.post(
            f"/v1/leads/{lead}/status",
            json={"change": "win", "value": "249.00", "currency": "eur", "note": "signed"},
        )
        assert won.status_code == 200, won.text
        lost = await http.post(
            f"/v1/leads/{other}/status", json={"change": "lose", "reason": "bought_elsewhere"}
        )
        assert lost.status_code == 200, lost.text
    body = won.json()
    assert (body["status"], body["order_value"], body["currency"]) == ("won", "249.00", "EUR")
    assert [t["kind"] for t in body["touches"]] == ["contacted", "qualified", "won"]
    assert body["touches"][0]["details"] == {"channel": "phone", "note": "called, keen"}

    events = await published(api.pool, lead)
    assert [(e["type"], e["payload"]["seq"]) for e in events] == [
        ("lead.contacted", 1),
        ("lead.status_changed", 2),
        ("lead.won", 3),
    ]
    contacted_event, qualified_event, won_event = (e["payload"] for e in events)
    assert (contacted_event["agent_id"], contacted_event["channel"]) == ("anna", "phone")
    assert contacted_event["first"] is True
    assert contacted_event["within_sla"] is None  # no timers were set for it
    assert (qualified_event["from_status"], qualified_event["to_status"]) == (
        "contacted",
        "qualified",
    )
    assert qualified_event["by_agent_id"] == "anna"
    assert (won_event["how"], won_event["value"], won_event["currency"]) == ("agent", 249.0, "EUR")
    (lost_event,) = await published(api.pool, other)
    assert (lost_event["type"], lost_event["payload"]["seq"]) == ("lead.lost", 1)
    assert lost_event["payload"]["reason"] == "bought_elsewhere"
    assert lost_event["payload"]["lead"]["status"] == "lost"


async def test_an_agent_changes_only_leads_they_hold_or_their_teams_queued_ones(api):
    shop = Shop(api)
    annas = await insert_lead(api.pool, shop.site)
    queued_sales = await insert_lead(api.pool, shop.site, status="new", assignee=None)
    bens = await insert_lead(api.pool, shop.site, assignee="ben")
    services = await insert_lead(api.pool, shop.site, team="service", assignee="carl")
    contact = {"change": "contact", "channel": "email"}
    async with api.client(shop.anna) as http:
        assert (await http.post(f"/v1/leads/{annas}/status", json=contact)).status_code == 200
        taken = await http.post(f"/v1/leads/{queued_sales}/status", json=contact)
        assert taken.json()["assignee"] == "anna"  # the contacter holds it now
        teammates = await http.post(f"/v1/leads/{bens}/status", json=contact)
        assert teammates.status_code == 403
        assert teammates.json()["error"] == "not_your_lead"
        seen = await http.get(f"/v1/leads/{bens}")  # a teammate's lead: seen, not changed
        assert seen.status_code == 200
        assert seen.json()["allowed"] == []
        other_team = await http.get(f"/v1/leads/{services}")
        assert other_team.status_code == 403
    async with api.client(shop.boss) as http:
        assert (await http.post(f"/v1/leads/{bens}/status", json=contact)).status_code == 200
    assert await published(api.pool, services) == []


async def test_reopening_a_lost_lead_is_an_admins(api):
    shop = Shop(api)
    lost = await insert_lead(api.pool, shop.site, status="lost", lost_reason="price")
    async with api.client(shop.anna) as http:
        refused = await http.post(f"/v1/leads/{lost}/status", json={"change": "reopen"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "reopen_needs_admin"
    async with api.client(shop.boss) as http:
        reopened = await http.post(f"/v1/leads/{lost}/status", json={"change": "reopen"})
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert (body["status"], body["assignee"], body["lost_reason"], body["closed_at"]) == (
        "new",
        None,
        None,
        None,
    )
    (event,) = await published(api.pool, lost)
    assert (event["type"], event["payload"]["to_status"], event["payload"]["by_agent_id"]) == (
        "lead.status_changed",
        "new",
        "boss",
    )


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"change": "contact"}, "channel_required", "channel"),
        ({"change": "contact", "channel": "pigeon"}, "invalid", "channel"),
        ({"change": "lose"}, "lost_reason_required", "reason"),
        ({"change": "lose", "reason": "other"}, "lost_note_required", "note"),
        ({"change": "lose", "reason": "meh"}, "invalid", "reason"),
        ({"change": "explode"}, "invalid", "change"),
        ({"change": "win", "value": "10"}, "invalid", "currency"),
        ({"change": "qualify", "note": "x" * 1001}, "invalid", "note"),
        ({"change": "qualify", "surprise": 1}, "invalid", "surprise"),
    ],
)
async def test_bad_input_is_4xx_naming_the_field(api, body, code, field):
    shop = Shop(api)
    lead = await insert_lead(api.pool, shop.site, status="assigned")
    async with api.client(shop.anna) as http:
        answer = await http.post(f"/v1/leads/{lead}/status", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == code
    assert field in [error["loc"] for error in answer.json()["errors"]]
    assert await published(api.pool, lead) == []


async def test_bad_query_input_names_the_parameter(api):
    shop = Shop(api)
    async with api.client(shop.anna) as http:
        for query, field in [
            ("status=bogus", "query.status.0"),
            ("limit=0", "query.limit"),
            ("sla=late", "query.sla"),
            ("cursor=not-a-cursor", "cursor"),
        ]:
            answer = await http.get(f"/v1/leads?{query}")
            assert answer.status_code == 422, (query, answer.text)
            assert answer.json()["errors"][0]["loc"] == field
        bad_id = await http.get("/v1/leads/not-a-uuid")
    assert bad_id.status_code == 422
    assert bad_id.json()["errors"][0]["loc"] == "path.lead_id"


async def test_the_list_is_the_agents_and_their_teams_newest_first_filtered_and_paged(api):
    shop = Shop(api)
    at = [T0 + timedelta(minutes=i) for i in range(6)]
    mine_old = await insert_lead(api.pool, shop.site, created_at=at[0])
    queued = await insert_lead(
        api.pool, shop.site, status="new", assignee=None, created_at=at[1], source="offline"
    )
    teammates = await insert_lead(api.pool, shop.site, assignee="ben", created_at=at[2])
    services = await insert_lead(
        api.pool, shop.site, team="service", assignee="carl", created_at=at[3]
    )
    mine_won = await insert_lead(
        api.pool, shop.site, status="won", created_at=at[4], validation="ready_to_buy"
    )
    elsewhere = await insert_lead(api.pool, unique("site"), created_at=at[5])

    async def ids(http, query: str = "") -> list[uuid.UUID]:
        answer = await http.get(f"/v1/leads?{query}")
        assert answer.status_code == 200, answer.text
        return [uuid.UUID(lead["lead_id"]) for lead in answer.json()["leads"]]

    async with api.client(shop.anna) as http:
        assert await ids(http) == [mine_won, teammates, queued, mine_old]
        assert await ids(http, "scope=mine") == [mine_won, mine_old]
        assert await ids(http, "status=new&status=won") == [mine_won, queued]
        assert await ids(http, "validation=ready_to_buy") == [mine_won]
        assert await ids(http, "source=offline") == [queued]
        assert await ids(http, "team=service") == []
        first = (await http.get("/v1/leads?limit=3")).json()
        assert [lead["lead_id"] for lead in first["leads"]] == [
            str(mine_won),
            str(teammates),
            str(queued),
        ]
        rest = await ids(http, f"limit=3&cursor={first['next_cursor']}")
        assert rest == [mine_old]
    async with api.client(shop.boss) as http:
        everything = await ids(http, "scope=all")
        assert everything == [mine_won, services, teammates, queued, mine_old]
        assert elsewhere not in everything
        assert await ids(http, "scope=all&team=service") == [services]


async def test_the_sla_state_shows_and_filters(api):
    shop = Shop(api)
    now = datetime.now(UTC)
    states = {}
    for state, deadline, warned in [
        ("running", now + timedelta(minutes=10), False),
        ("warning", now + timedelta(minutes=2), True),
        ("breached", now - timedelta(minutes=1), True),
    ]:
        lead = await insert_lead(api.pool, shop.site)
        states[state] = lead
        warning_due = now - timedelta(minutes=1) if warned else now + timedelta(minutes=1)
        for kind, percent, due in [("warning", 50, warning_due), ("breach", 100, deadline)]:
            await api.pool.execute(
                """INSERT INTO leads.timers (lead_id, site_id, kind, at_percent, assignee,
                                             deadline_at, due_at, fired_at)
                   VALUES ($1, $2, $3, $4, 'anna', $5, $6, $7)""",
                lead,
                shop.site,
                kind,
                percent,
                deadline,
                due,
                due if due <= now else None,
            )
    contacted = await insert_lead(api.pool, shop.site, status="contacted")
    async with api.client(shop.anna) as http:
        for state, lead in states.items():
            found = (await http.get(f"/v1/leads?sla={state}")).json()["leads"]
            assert [row["lead_id"] for row in found] == [str(lead)], state
        none = (await http.get("/v1/leads?sla=none")).json()["leads"]
        assert [row["lead_id"] for row in none] == [str(contacted)]
        running = (await http.get(f"/v1/leads/{states['running']}")).json()["sla"]
    assert running["state"] == "running"
    assert running["due_at"] is not None
    assert running["next_due_at"] is not None


async def test_claim_and_reassign_refuse_what_is_not_theirs_to_take(api):
    shop = Shop(api)
    held = await insert_lead(api.pool, shop.site, assignee="ben")
    queued_service = await insert_lead(
        api.pool, shop.site, team="service", status="new", assignee=None
    )
    async with api.client(shop.anna) as http:
        not_queued = await http.post(f"/v1/leads/{held}/claim")
        assert (not_queued.status_code, not_queued.json()["error"]) == (409, "not_queued")
        wrong_team = await http.post(f"/v1/leads/{queued_service}/claim")
        assert wrong_team.status_code == 403
        not_hers = await http.post(f"/v1/leads/{held}/reassign", json={"to_agent_id": "anna"})
        assert (not_hers.status_code, not_hers.json()["error"]) == (403, "not_your_lead")
        bad = await http.post(f"/v1/leads/{held}/reassign", json={"to_agent_id": "no spaces"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["loc"] == "to_agent_id"
    async with api.client(shop.carl) as http:
        unheld = await http.post(f"/v1/leads/{queued_service}/reassign", json={})
        assert (unheld.status_code, unheld.json()["error"]) == (409, "not_assigned")


async def test_the_csv_export_has_a_header_and_defuses_formulas(api):
    shop = Shop(api)
    await insert_lead(
        api.pool,
        shop.site,
        name="=cmd|' /C calc'!A0",
        company="@SUM(A1:A9)",
        created_at=T0,
    )
    await insert_lead(api.pool, shop.site, name="Plain, Name", created_at=T0 + timedelta(hours=1))
    async with api.client(shop.boss) as http:
        answer = await http.get("/v1/leads/export.csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text)))
    header, newest, oldest = rows
    assert header[:3] == ["lead_id", "created_at", "status"]
    assert newest[header.index("name")] == "Plain, Name"
    assert oldest[header.index("name")] == "'=cmd|' /C calc'!A0"
    assert oldest[header.index("company")] == "'@SUM(A1:A9)"
    async with api.api(await _key(api, shop.boss)) as client:
        by_key = await client.get("/v1/api/leads/export.csv?status=assigned")
    assert by_key.text == answer.text


async def test_an_empty_export_is_its_header_row(api):
    shop = Shop(api)
    async with api.client(shop.boss) as http:
        answer = await http.get("/v1/leads/export.csv")
    assert answer.status_code == 200
    assert answer.text.startswith("lead_id,created_at,status")
    assert answer.text.count("\r\n") == 1


async def test_an_api_client_reads_and_changes_the_sites_leads(api):
    shop = Shop(api)
    queued = await insert_lead(api.pool, shop.site, status="new", assignee=None)
    held = await insert_lead(api.pool, shop.site, assignee="anna", team="service")
    async with api.api(await _key(api, shop.boss)) as client:
        listed = (await client.get("/v1/api/leads")).json()["leads"]
        assert {lead["lead_id"] for lead in listed} == {str(queued), str(held)}
        nobody = await client.post(
            f"/v1/api/leads/{queued}/status", json={"change": "contact", "channel": "phone"}
        )
        assert nobody.status_code == 422
        assert nobody.json()["errors"][0]["loc"] == "agent_id"
        contacted = await client.post(
            f"/v1/api/leads/{held}/status", json={"change": "contact", "channel": "phone"}
        )
        assert contacted.status_code == 200, contacted.text
    (event,) = await published(api.pool, held)
    assert (event["type"], event["payload"]["agent_id"]) == ("lead.contacted", "anna")


class FakeAssignment:
    """The assignment feature's calls, recorded (its slice implements them)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    async def claim(self, tx, *, lead, agent_id, now):
        self.calls.append(("claim", {"lead": lead.lead_id, "agent_id": agent_id}))
        return lead

    async def reassign(self, tx, *, lead, reason, now, to_agent_id=None, by_agent_id=None):
        self.calls.append(
            ("reassign", {"lead": lead.lead_id, "to": to_agent_id, "by": by_agent_id})
        )
        return lead

    async def drain(self, tx, *, team, now):
        self.calls.append(("drain", {"team": team, "locked": team in tx.locked_teams}))
        return []


async def test_claim_reassign_and_a_closed_lead_call_the_assignment_feature_under_the_lock(api):
    shop = Shop(api)
    queued = await insert_lead(api.pool, shop.site, status="new", assignee=None)
    held = await insert_lead(api.pool, shop.site, assignee="anna")
    anna = Caller(shop.site, "anna", "agent", ("sales",))
    assignment = FakeAssignment()
    features = service.Features(assignment=assignment)
    uow = UnitOfWorkFactory(api.pool, on_commit=lambda: None)
    now = datetime.now(UTC)
    await service.claim(uow=uow, caller=anna, lead_id=queued, now=now, features=features)
    await service.reassign(
        uow=uow, caller=anna, lead_id=held, to_agent_id="ben", now=now, features=features
    )
    lose = service.StatusChange(change="lose", reason="spam")
    await service.change_status(
        uow=uow, who=anna, lead_id=held, asked=lose, now=now, features=features
    )
    assert assignment.calls == [
        ("claim", {"lead": queued, "agent_id": "anna"}),
        ("reassign", {"lead": held, "to": "ben", "by": "anna"}),
        ("drain", {"team": "sales", "locked": True}),
    ]


async def test_an_admin_undoes_a_merge_and_an_agent_may_not(api):
    """Two people's leads merged by a capture that names both (one's e-mail from the other's
    browser) come apart again through the route; agents and other sites cannot."""
    site = Shop(api)
    handler = CaptureHandler(
        UnitOfWorkFactory(api.pool, on_commit=lambda: None), VisitorStates(10), clock=lambda: T0
    )
    people = [("v-1", "ann@example.com"), ("v-2", "bo@example.com"), ("v-2", "ann@example.com")]
    for visitor, email in people:
        mark = lead_marked(site.site, visitor, email=email)
        assert await handle_until_done(handler, record(mark), backoff=FAST) == "done"
    merge_id = await api.pool.fetchval(
        "SELECT merge_id FROM leads.merges WHERE site_id = $1", site.site
    )
    assert merge_id is not None
    path = f"/v1/leads/merges/{merge_id}/undo"
    async with api.client(site.anna) as http:
        assert (await http.post(path)).status_code == 403
    async with api.client(site.boss) as http:
        undone = await http.post(path)
        assert undone.status_code == 200, undone.text
        again = await http.post(path)
    assert (again.status_code, again.json()["error"]) == (409, "merge_undone")
    restored = undone.json()["restored_id"]
    merged_into = await api.pool.fetchval(
        "SELECT merged_into FROM leads.leads WHERE lead_id = $1", uuid.UUID(restored)
    )
    assert merged_into is None
    async with api.client(Shop(api).boss) as http:  # another site's admin
        assert (await http.post(path)).status_code == 404
