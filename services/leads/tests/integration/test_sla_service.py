"""Planning a lead's first contact on real Postgres, and the SLA admin routes: policies and
business hours as an admin sets them (422s that name the field, 403 for an agent, one site's
settings invisible to another), a Friday-evening lead due on Monday morning."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from leads.api.deps import Caller, current_agent
from leads.config import Settings
from leads.main import create_app
from leads.runtime import Runtime
from leads.sla import service
from leads.sla.scheduler import ManualClock
from leads_testing import unique
from sla_testing import (
    add_team,
    lead_events,
    make_pool_fixture,  # noqa: F401  (the fixture make_pool)
    new_lead,
    scheduler_on,
    settle,
    sla_database_fixture,  # noqa: F401  (the fixture sla_database)
    timers_of,
    uow_of,
)

pytestmark = pytest.mark.integration
HEL = ZoneInfo("Europe/Helsinki")
T0 = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
OFFICE = {
    "timezone": "Europe/Helsinki",
    "hours": {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [],
}


def _app(pool, caller: Caller | None):
    app = create_app(Settings(environment="test"))
    app.state.leads = Runtime(
        settings=Settings(environment="test"),
        pool=pool,
        uow=uow_of(pool),
        bus=None,  # type: ignore[arg-type]
        relay=None,  # type: ignore[arg-type]
        ready=True,
    )
    if caller is not None:

        async def as_caller() -> Caller:
            return caller

        app.dependency_overrides[current_agent] = as_caller
    return app


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://leads")


def _admin(site: str) -> Caller:
    return Caller(site_id=site, agent_id="root", role="admin")


async def _plan(pool, lead, now, **options):
    async with uow_of(pool)(lead.site_id) as tx:
        return await service.start_first_contact(tx, lead=lead, now=now, **options)


async def test_a_friday_evening_lead_is_due_on_monday_morning(make_pool):
    pool = await make_pool()
    site = unique("site")
    async with _client(_app(pool, _admin(site))) as client:
        answer = await client.put("/v1/leads/business-hours", json=OFFICE)
    assert answer.status_code == 200, answer.text
    friday_evening = datetime(2026, 3, 6, 16, 58, tzinfo=HEL)  # a Friday, 2 min before closing
    lead = await new_lead(pool, site)  # ready_to_buy: 5 min of business time
    deadline = await _plan(pool, lead, friday_evening)
    assert deadline == datetime(2026, 3, 9, 9, 3, tzinfo=HEL)  # Monday: 2 min + 3 min
    assert [(t["kind"], t["due_at"]) for t in await timers_of(pool, lead.lead_id)] == [
        ("warning", datetime(2026, 3, 9, 9, 0, 30, tzinfo=HEL)),  # 50 %: 2.5 min
        ("warning", datetime(2026, 3, 9, 9, 2, tzinfo=HEL)),  # 80 %: 4 min
        ("breach", datetime(2026, 3, 9, 9, 3, tzinfo=HEL)),
    ]

    clock = ManualClock(friday_evening)
    scheduler = scheduler_on(pool, clock, "leads-a")
    await scheduler.start()
    try:
        clock.set(datetime(2026, 3, 7, 12, 0, tzinfo=HEL))  # Saturday noon: nothing is due
        await settle(clock, scheduler)
        assert await lead_events(pool, site) == []
        clock.set(datetime(2026, 3, 9, 9, 2, 30, tzinfo=HEL))  # Monday: both warnings
        await settle(clock, scheduler)
        clock.set(datetime(2026, 3, 9, 9, 3, tzinfo=HEL))
        await settle(clock, scheduler)
    finally:
        await scheduler.stop()
    assert [e.type for e in await lead_events(pool, site)] == [
        "lead.sla_warning",
        "lead.sla_warning",
        "lead.sla_breached",
        "lead.escalated",
    ]


async def test_planning_twice_stores_the_timers_once_and_a_running_plan_is_kept(make_pool):
    pool = await make_pool()
    site = unique("site")
    lead = await new_lead(pool, site, validation="qualified")
    assert await _plan(pool, lead, T0) == T0 + timedelta(minutes=30)
    assert await _plan(pool, lead, T0) == T0 + timedelta(minutes=30)
    # later (e.g. assigned after a while in the queue): the running deadline stands
    assert await _plan(pool, lead, T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=30)
    assert len(await timers_of(pool, lead.lead_id)) == 3
    async with uow_of(pool)(site) as tx:
        assert await service.first_contact_deadline(tx, lead=lead) == T0 + timedelta(minutes=30)
        assert await service.stop(tx, lead=lead, now=T0) == 3
        assert await service.first_contact_deadline(tx, lead=lead) is None


async def test_no_team_a_closed_lead_or_a_policy_of_no_sla_plan_nothing(make_pool):
    pool = await make_pool()
    site = unique("site")
    await add_team(pool, site, "sales", None)
    async with _client(_app(pool, _admin(site))) as client:
        answer = await client.put(
            "/v1/leads/sla-policies",
            json={
                "policies": [{"team": "sales", "validation": "interested", "first_contact": None}]
            },
        )
    assert answer.status_code == 200, answer.text
    unrouted = await new_lead(pool, site, team=None, assignee=None)
    contacted = await new_lead(pool, site, status="contacted")
    no_sla = await new_lead(pool, site, validation="interested")
    for lead in (unrouted, contacted, no_sla):
        assert await _plan(pool, lead, T0) is None
        assert await timers_of(pool, lead.lead_id) == []


async def test_a_policy_around_the_clock_ignores_the_sites_hours(make_pool):
    pool = await make_pool()
    site = unique("site")
    await add_team(pool, site, "sales", None)
    policy = {"team": "sales", "validation": "ready_to_buy", "first_contact": "10m"}
    async with _client(_app(pool, _admin(site))) as client:
        assert (await client.put("/v1/leads/business-hours", json=OFFICE)).status_code == 200
        answer = await client.put(
            "/v1/leads/sla-policies",
            json={"policies": [{**policy, "business_hours_only": False, "warn_at": [0.25]}]},
        )
    assert answer.status_code == 200, answer.text
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=HEL)
    lead = await new_lead(pool, site)
    assert await _plan(pool, lead, saturday) == saturday + timedelta(minutes=10)
    assert [t["at_percent"] for t in await timers_of(pool, lead.lead_id)] == [25, 100]


# ---- the admin routes -----------------------------------------------------------------------
async def test_an_admin_sets_and_reads_the_sites_policies(make_pool):
    pool = await make_pool()
    site = unique("site")
    await add_team(pool, site, "sales", "boss")
    await add_team(pool, site, "service", None)
    body = {
        "policies": [
            {
                "team": "sales",
                "validation": "ready_to_buy",
                "first_contact": "2m",
                "reassign": True,
            },
            {
                "team": "service",
                "validation": "qualified",
                "first_contact": 3600,
                "warn_at": [0.9],
                "escalate": False,
            },
        ]
    }
    async with _client(_app(pool, _admin(site))) as client:
        put = await client.put("/v1/leads/sla-policies", json=body)
        got = await client.get("/v1/leads/sla-policies")
    assert put.status_code == 200, put.text
    assert got.json() == put.json()
    view = got.json()
    assert view["defaults"] == {
        "ready_to_buy": 300.0,
        "qualified": 1800.0,
        "interested": 14400.0,
        "contact_only": 86400.0,
    }
    assert [
        (p["team"], p["first_contact"], p["warn_at"], p["escalate"], p["reassign"])
        for p in view["policies"]
    ] == [("sales", 120.0, [0.5, 0.8], True, True), ("service", 3600.0, [0.9], False, False)]
    # another site's admin sees none of it
    async with _client(_app(pool, _admin(unique("site")))) as client:
        assert (await client.get("/v1/leads/sla-policies")).json()["policies"] == []


@pytest.mark.parametrize(
    ("policies", "loc", "words"),
    [
        (
            [{"team": "sales", "validation": "hot", "first_contact": 60}],
            "policies.0.validation",
            "ready_to_buy",
        ),
        (
            [{"team": "sales", "validation": "qualified", "first_contact": "soon"}],
            "policies.0.first_contact",
            "soon",
        ),
        (
            [{"team": "sales", "validation": "qualified", "first_contact": 60, "warn_at": [0.333]}],
            "policies.0.warn_at",
            "whole percent",
        ),
        (
            [
                {
                    "team": "sales",
                    "validation": "qualified",
                    "first_contact": 60,
                    "warn_at": [0.8, 0.5],
                }
            ],
            "policies.0.warn_at",
            "increasing",
        ),
        (
            [{"team": "sales", "validation": "qualified", "first_contact": 60, "colour": "red"}],
            "policies.0.colour",
            "xtra",
        ),
        (
            [
                {"team": "sales", "validation": "qualified", "first_contact": 60},
                {"team": "sales", "validation": "qualified", "first_contact": 90},
            ],
            "policies.1",
            "already has a qualified policy at [0]",
        ),
        (
            [
                {"team": "sales", "validation": "qualified", "first_contact": 60},
                {"team": "salse", "validation": "qualified", "first_contact": 90},
            ],
            "policies.1.team",
            "no team 'salse' on this site (teams: sales)",
        ),
    ],
)
async def test_bad_policies_get_a_422_naming_the_field(make_pool, policies, loc, words):
    pool = await make_pool()
    site = unique("site")
    await add_team(pool, site, "sales", None)
    async with _client(_app(pool, _admin(site))) as client:
        answer = await client.put("/v1/leads/sla-policies", json={"policies": policies})
        assert (await client.get("/v1/leads/sla-policies")).json()["policies"] == []
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["loc"] == loc
    assert words in answer.json()["detail"]


async def test_business_hours_round_trip_and_bad_ones_get_a_422(make_pool):
    pool = await make_pool()
    site = unique("site")
    office = {**OFFICE, "holidays": ["2026-12-25", "2026-12-24", "2026-12-25"]}
    async with _client(_app(pool, _admin(site))) as client:
        assert (await client.get("/v1/leads/business-hours")).json() == {
            "timezone": "UTC",
            "hours": None,
            "holidays": [],
        }
        put = await client.put("/v1/leads/business-hours", json=office)
        got = await client.get("/v1/leads/business-hours")
        bad = {
            "timezone": await client.put(
                "/v1/leads/business-hours", json={**OFFICE, "timezone": "Mars/Olympus"}
            ),
            "hours.mon.0": await client.put(
                "/v1/leads/business-hours", json={**OFFICE, "hours": {"mon": ["17:00-09:00"]}}
            ),
            "hours": await client.put(
                "/v1/leads/business-hours",
                json={**OFFICE, "hours": {**OFFICE["hours"], "closed_dates": ["2026-12-25"]}},
            ),
            "holidays": await client.put(
                "/v1/leads/business-hours",
                json={"timezone": "UTC", "hours": None, "holidays": ["2026-12-25"]},
            ),
        }
        after_bad = await client.get("/v1/leads/business-hours")
    assert put.status_code == 200, put.text
    assert got.json() == put.json() == after_bad.json()
    assert got.json()["holidays"] == ["2026-12-24", "2026-12-25"]
    assert got.json()["hours"]["mon"] == ["09:00-17:00"]
    assert got.json()["hours"]["sat"] == []
    for loc, answer in bad.items():
        assert answer.status_code == 422, (loc, answer.text)
        assert answer.json()["errors"][0]["loc"] == loc, answer.json()


async def test_only_an_admin_of_the_site_may(make_pool):
    pool = await make_pool()
    site = unique("site")
    agent = Caller(site_id=site, agent_id="ann", role="agent", teams=("sales",))
    calls = [
        ("GET", "/v1/leads/sla-policies", None),
        ("PUT", "/v1/leads/sla-policies", {"policies": []}),
        ("GET", "/v1/leads/business-hours", None),
        ("PUT", "/v1/leads/business-hours", OFFICE),
    ]
    for caller, status in ((agent, 403), (None, 401)):
        async with _client(_app(pool, caller)) as client:
            for method, path, body in calls:
                answer = await client.request(method, path, json=body)
                assert answer.status_code == status, (method, path, answer.text)
    assert await pool.fetchval("SELECT count(*) FROM leads.sites") == 0


async def test_a_running_instance_fires_a_timer_stored_by_someone_else(
    make_pool, sla_database, start_leads
):
    """The scheduler is wired into the service: a timer committed by another process wakes it
    (NOTIFY) and fires on the real clock."""
    pool = await make_pool()
    site = unique("site")
    await add_team(pool, site, "sales", "boss")
    await pool.execute(
        """INSERT INTO leads.sla_policies (site_id, team, validation, first_contact_s,
               warn_at_percent) VALUES ($1, 'sales', 'ready_to_buy', 1, '{}')""",
        site,
    )
    name = unique("leads-sla")
    await start_leads(sla_database, LEADS_INSTANCE_ID=name)
    lead = await new_lead(pool, site)
    assert await _plan(pool, lead, datetime.now(UTC)) is not None
    async with asyncio.timeout(60):  # a bound for a broken service, not a speed requirement
        while not await lead_events(pool, site, "lead.escalated"):
            await asyncio.sleep(0.05)
    [breach] = await timers_of(pool, lead.lead_id)
    assert breach["claimed_by"] == name
