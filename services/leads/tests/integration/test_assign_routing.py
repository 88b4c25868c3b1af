"""Routing through the store and the admin's routes: the seeds' example (sales collects leads,
service books car servicing) routes as expected; bad documents, teams, leads and caps get a
422 naming the field; admins only, and only their own site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from assign_testing import events, factory, get_lead, new_lead, route, set_presence
from leads.api.deps import Caller, current_agent
from leads.config import Settings
from leads.main import create_app
from leads.runtime import Runtime
from leads_testing import unique

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# the demo store: one team collects sales leads while another books car servicing
SEEDS = {
    "default_team": "sales",
    "rules": [
        {
            "id": "car-service",
            "name": "Car servicing bookings",
            "conditions": [
                {
                    "any": [
                        {"categories_viewed": ["Car service", "Tyres"]},
                        {"tags": "service-booking"},
                    ]
                }
            ],
            "team": "service",
        }
    ],
}
TEAMS = {
    "teams": [
        {"team": "sales", "name": "Sales", "lead_agent_id": "lea"},
        {"team": "service", "name": "Car service"},
    ]
}


class Admin:
    """The app on the shared database, called as `caller` (no lifespan: no broker needed)."""

    def __init__(self, pool, site: str) -> None:
        self.site = site
        self.caller = Caller(site_id=site, agent_id="lea", role="admin")
        self.app = create_app(Settings(environment="test"))
        self.app.state.leads = Runtime(
            settings=Settings(environment="test"),
            pool=pool,
            uow=factory(pool),
            bus=None,  # type: ignore[arg-type]
            relay=None,  # type: ignore[arg-type]
            ready=True,
        )
        self.app.dependency_overrides[current_agent] = lambda: self.caller

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://leads")


@pytest.fixture
async def admin(leads_pool) -> AsyncIterator[tuple[Admin, httpx.AsyncClient]]:
    site = unique("site")
    # lea (the team lead) and the agents are known from presence
    await set_presence(leads_pool, site, "sales", {"lea": "online", "ann": "online"}, as_of=T0)
    await set_presence(leads_pool, site, "service", {"sam": "online"}, as_of=T0)
    made = Admin(leads_pool, site)
    async with made.client() as client:
        yield made, client


def _locs(answer: httpx.Response) -> list[str]:
    return [error["loc"] for error in answer.json()["errors"]]


async def test_the_seeds_example_routes_through_the_store(leads_pool, admin):
    made, client = admin
    site = made.site
    assert (await client.put("/v1/leads/teams", json=TEAMS)).status_code == 200
    saved = await client.put("/v1/leads/routing", json=SEEDS)
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 1
    got = (await client.get("/v1/leads/routing")).json()
    assert (got["version"], got["document"]["rules"][0]["team"]) == (1, "service")
    assert got["created_by"] == "lea"

    uow = factory(leads_pool)
    car = await new_lead(leads_pool, site, created_at=T0)
    tyres = await new_lead(leads_pool, site, created_at=T0)
    booked = await new_lead(leads_pool, site, created_at=T0)
    sale = await new_lead(leads_pool, site, created_at=T0)
    routed = {
        car: await route(uow, site, car, now=T0, categories_viewed=["car service"]),
        tyres: await route(uow, site, tyres, now=T0, categories_viewed=["Shoes", "Tyres"]),
        booked: await route(uow, site, booked, now=T0, tags=["Service-Booking"]),
        sale: await route(uow, site, sale, now=T0, categories_viewed=["Shoes"], cart_value=90),
    }
    assert {lead_id: lead.team for lead_id, lead in routed.items()} == {
        car: "service",
        tyres: "service",
        booked: "service",
        sale: "sales",
    }
    assert routed[car].assignee == "sam"
    assert routed[sale].assignee in {"lea", "ann"}
    assert (await get_lead(leads_pool, site, car)).routing_version == 1
    first = (await events(leads_pool, car))[0]
    assert (first["type"], first["payload"]["routing_rule_id"]) == ("lead.routed", "car-service")
    assert (await events(leads_pool, sale))[0]["payload"]["routing_rule_id"] is None

    # a new version is in force at once
    changed = {**SEEDS, "default_team": "service"}
    assert (await client.put("/v1/leads/routing", json=changed)).json()["version"] == 2
    later = await new_lead(leads_pool, site, created_at=T0)
    after = await route(uow, site, later, now=T0, categories_viewed=["Shoes"])
    assert (after.team, after.routing_version) == ("service", 2)


async def test_without_rules_the_sites_default_team_or_sales_gets_the_lead(leads_pool, admin):
    made, client = admin
    got = (await client.get("/v1/leads/routing")).json()
    assert got["version"] is None
    assert got["document"] == {"default_team": "sales", "rules": []}
    await leads_pool.execute(
        "INSERT INTO leads.sites (site_id, default_team) VALUES ($1, 'service')", made.site
    )
    lead_id = await new_lead(leads_pool, made.site, created_at=T0)
    lead = await route(factory(leads_pool), made.site, lead_id, now=T0)
    assert (lead.team, lead.routing_version, lead.assignee) == ("service", None, "sam")


async def test_the_tester_says_which_team_would_get_a_lead_and_why(admin):
    _, client = admin
    await client.put("/v1/leads/teams", json=TEAMS)
    await client.put("/v1/leads/routing", json=SEEDS)
    tried = await client.post(
        "/v1/leads/routing/test",
        json={"lead": {"validation": "qualified", "categories_viewed": ["Tyres"]}},
    )
    assert tried.status_code == 200, tried.text
    body = tried.json()
    assert body["version"] == 1
    assert body["decision"]["team"] == "service"
    assert body["rules"][0]["outcome"] == "chosen"
    # a draft is tried before it is saved
    draft = {"default_team": "sales", "rules": []}
    tried = await client.post(
        "/v1/leads/routing/test",
        json={
            "lead": {"validation": "qualified", "categories_viewed": ["Tyres"]},
            "document": draft,
        },
    )
    assert (tried.json()["version"], tried.json()["decision"]["team"]) == (None, "sales")


@pytest.mark.parametrize(
    ("document", "locs"),
    [
        ({**SEEDS, "default_team": "salez"}, ["default_team"]),
        (
            {
                "default_team": "sales",
                "rules": [
                    {
                        "id": "big",
                        "name": "Big carts",
                        "conditions": [{"cart_value": {"gte": -5}}],
                        "team": "key-accounts",
                    }
                ],
            },
            ["rules[0].conditions[0].cart_value.gte", "rules[0].team"],
        ),
        (
            {"default_team": "sales", "rules": [{"id": "x", "name": "X", "team": "sales"}]},
            ["rules[0].conditions"],
        ),
        (
            {
                "default_team": "sales",
                "rules": [
                    {"id": "x", "name": "X", "conditions": [{"colour": "red"}], "team": "sales"}
                ],
            },
            ["rules[0].conditions[0]"],
        ),
        ([1, 2], [""]),
    ],
)
async def test_bad_documents_get_a_422_naming_each_field(admin, document, locs):
    _, client = admin
    await client.put("/v1/leads/teams", json=TEAMS)
    answer = await client.put("/v1/leads/routing", json=document)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_routing_rules"
    assert _locs(answer) == locs
    assert (await client.get("/v1/leads/routing")).json()["version"] is None  # nothing saved


async def test_the_tester_locates_problems_of_the_lead_and_of_a_draft(admin):
    _, client = admin
    await client.put("/v1/leads/teams", json=TEAMS)
    answer = await client.post(
        "/v1/leads/routing/test",
        json={
            "lead": {"validation": "hot", "country": "Finland"},
            "document": {"default_team": "nobody", "rules": []},
        },
    )
    assert answer.status_code == 422
    assert _locs(answer) == ["lead.validation", "lead.country", "document.default_team"]
    missing = await client.post("/v1/leads/routing/test", json={"document": None})
    assert missing.status_code == 422
    assert _locs(missing) == ["lead"]
    not_json = await client.put(
        "/v1/leads/routing", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["error"]) == (400, "malformed_json")


async def test_teams_are_replaced_but_a_team_in_use_stays(admin):
    _, client = admin
    assert (await client.put("/v1/leads/teams", json=TEAMS)).json()["teams"] == [
        {"team": "sales", "name": "Sales", "lead_agent_id": "lea"},
        {"team": "service", "name": "Car service", "lead_agent_id": None},
    ]
    await client.put("/v1/leads/routing", json=SEEDS)
    dropped = await client.put("/v1/leads/teams", json={"teams": TEAMS["teams"][:1]})
    assert dropped.status_code == 422
    assert _locs(dropped) == ["teams"]
    assert "'service' is named by the routing rules" in dropped.json()["detail"]
    twice = await client.put(
        "/v1/leads/teams",
        json={"teams": [*TEAMS["teams"], {"team": "sales"}, {"team": "x", "lead_agent_id": "zed"}]},
    )
    assert _locs(twice) == ["teams[2].team", "teams[3].lead_agent_id"]
    odd = await client.put("/v1/leads/teams", json={"teams": [{"team": "a b", "colour": 1}]})
    assert odd.status_code == 422
    assert _locs(odd) == ["teams.0.team", "teams.0.colour"]
    assert len((await client.get("/v1/leads/teams")).json()["teams"]) == 2


async def test_agents_caps_and_deactivation(admin):
    _, client = admin
    answer = await client.put("/v1/leads/agents/ann", json={"max_open_leads": 3})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "agent_id": "ann",
        "max_open_leads": 3,
        "deactivated": False,
        "assigned": [],
    }
    off = await client.put("/v1/leads/agents/sam", json={"deactivated": True})
    assert off.json()["deactivated"] is True
    listed = {a["agent_id"]: a for a in (await client.get("/v1/leads/agents")).json()["agents"]}
    assert (listed["ann"]["cap"], listed["ann"]["teams"]) == (3, ["sales"])
    assert listed["sam"]["deactivated"] is True
    assert listed["lea"]["online_in"] == ["sales"]
    bad = await client.put("/v1/leads/agents/ann", json={"max_open_leads": -1})
    assert (bad.status_code, _locs(bad)) == (422, ["max_open_leads"])
    typo = await client.put("/v1/leads/agents/ann", json={"max_open_lead": 4})
    assert _locs(typo) == ["max_open_lead"]


async def test_only_admins_and_only_their_own_site(leads_pool, admin):
    made, client = admin
    await client.put("/v1/leads/teams", json=TEAMS)
    await client.put("/v1/leads/routing", json=SEEDS)
    # another site's admin sees none of it and cannot touch this site's agents
    other = Admin(leads_pool, unique("site"))
    async with other.client() as theirs:
        assert (await theirs.get("/v1/leads/routing")).json()["version"] is None
        assert (await theirs.get("/v1/leads/teams")).json()["teams"] == []
        assert (await theirs.get("/v1/leads/agents")).json()["agents"] == []
        gone = await theirs.put("/v1/leads/agents/ann", json={"max_open_leads": 0})
        assert (gone.status_code, gone.json()["error"]) == (404, "agent_not_found")
        # and saving routing checks against their (empty) teams
        refused = await theirs.put("/v1/leads/routing", json=SEEDS)
        assert "this site has no teams yet" in refused.json()["errors"][0]["msg"]
    # an agent's session on an admin call
    made.caller = Caller(site_id=made.site, agent_id="ann", role="agent")
    for method, path, body in [
        ("GET", "/v1/leads/routing", None),
        ("PUT", "/v1/leads/routing", SEEDS),
        ("POST", "/v1/leads/routing/test", {"lead": {"validation": "qualified"}}),
        ("GET", "/v1/leads/teams", None),
        ("PUT", "/v1/leads/teams", TEAMS),
        ("GET", "/v1/leads/agents", None),
        ("PUT", "/v1/leads/agents/ann", {"max_open_leads": 9}),
    ]:
        answer = await client.request(method, path, json=body)
        assert (answer.status_code, answer.json()["error"]) == (403, "admin_only"), path
    made.caller = Caller(site_id=made.site, agent_id="lea", role="admin")
    listed = {a["agent_id"]: a for a in (await client.get("/v1/leads/agents")).json()["agents"]}
    assert listed["ann"]["max_open_leads"] is None
