"""Who may call the leads API, on the real Postgres: the console's session ("one login",
confirmed by a real local HTTP server answering like chat's /v1/console/me), admin routes
refused to agents, per-site API keys (shown once, hashed, revoked at once), cross-site
changes refused, and every route in the OpenAPI document."""

from __future__ import annotations

import hashlib

import pytest
from api_testing import Agent, LeadsApi, insert_lead, leads_api
from beckon_edge.tokens import Signer
from leads_testing import unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(leads_pool, leads_database):
    async with leads_api(leads_pool, leads_database) as running:
        yield running


def _people(api: LeadsApi) -> tuple[str, Agent, Agent]:
    site = unique("site")
    anna = api.chat.add(Agent(site, "anna", "agent", ("sales",)))
    boss = api.chat.add(Agent(site, "boss", "admin", ()))
    return site, anna, boss


async def test_the_consoles_session_is_accepted_once_chat_confirms_it(api):
    site, anna, _ = _people(api)
    lead = await insert_lead(api.pool, site)
    async with api.client(anna) as http:
        answer = await http.get(f"/v1/leads/{lead}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["assignee"] == "anna"
    assert api.chat.calls == 1


@pytest.mark.parametrize(
    ("make_cookie", "code"),
    [
        (lambda agent: None, "not_logged_in"),
        (lambda agent: agent.cookie(signer=Signer("not-chats-secret-at-all-x")), "session_forged"),
        (lambda agent: agent.cookie(ttl_s=-1), "session_expired"),
        (lambda agent: agent.cookie()[:-3] + "AAA", "session_forged"),
        (lambda agent: "no.such-cookie", "session_forged"),
    ],
)
async def test_a_missing_forged_or_expired_cookie_is_401_without_asking_chat(
    api, make_cookie, code
):
    site, anna, _ = _people(api)
    lead = await insert_lead(api.pool, site)
    cookie = make_cookie(anna)
    async with api.client(cookie=cookie) if cookie else api.client() as http:
        answer = await http.get(f"/v1/leads/{lead}")
    assert answer.status_code == 401
    assert answer.json()["error"] == code
    assert api.chat.calls == 0


async def test_a_session_chat_has_ended_is_401_with_chats_code(api):
    _site, anna, _ = _people(api)
    cookie = anna.cookie()
    anna.session_version += 1  # logged out (or a new password) in chat
    async with api.client(cookie=cookie) as http:
        answer = await http.get("/v1/leads")
    assert answer.status_code == 401
    assert answer.json()["error"] == "session_ended"


async def test_chat_away_is_503(api):
    agent = api.chat.add(Agent(unique("site"), "anna", "agent", ("sales",)))
    await api.chat.stop()
    async with api.client(agent) as http:
        answer = await http.get("/v1/leads")
    assert answer.status_code == 503
    assert answer.json()["error"] == "chat_unavailable"


async def test_every_admin_route_refuses_an_agents_session(api):
    _site, anna, boss = _people(api)
    async with api.client(boss) as http:
        made = await http.post("/v1/admin/api-keys", json={"name": "CRM"})
    key_id = made.json()["api_key"]["key_id"]
    admin_calls = [
        ("GET", "/v1/leads/export.csv", None),
        ("GET", "/v1/leads?scope=all", None),
        ("GET", "/v1/admin/api-keys", None),
        ("POST", "/v1/admin/api-keys", {"name": "mine now"}),
        ("DELETE", f"/v1/admin/api-keys/{key_id}", None),
    ]
    async with api.client(anna) as http:
        for method, path, body in admin_calls:
            answer = await http.request(method, path, json=body)
            assert answer.status_code == 403, (method, path, answer.text)
            assert answer.json()["error"] == "admin_only"
    async with api.client(boss) as http:
        for method, path, body in admin_calls:
            answer = await http.request(method, path, json=body)
            assert answer.status_code in (200, 201), (method, path, answer.text)


async def test_an_api_key_is_shown_once_stored_as_a_hash_and_revoked_at_once(api):
    site, _, boss = _people(api)
    lead = await insert_lead(api.pool, site)
    async with api.client(boss) as http:
        made = await http.post("/v1/admin/api-keys", json={"name": "  HubSpot   sync "})
        assert made.status_code == 201, made.text
        key, shown = made.json()["key"], made.json()["api_key"]
        listed = (await http.get("/v1/admin/api-keys")).json()["api_keys"]
    assert key.startswith("bk_")
    assert len(key) > 40
    assert shown["name"] == "HubSpot sync"
    assert listed == [shown]
    assert key not in str(listed)
    assert key.startswith(shown["hint"])
    stored = await api.pool.fetchval(
        "SELECT key_hash FROM leads.api_keys WHERE key_id = $1::uuid", shown["key_id"]
    )
    assert stored == hashlib.sha256(key.encode()).digest()

    async with api.api(key) as client:
        assert (await client.get(f"/v1/api/leads/{lead}")).status_code == 200
        async with api.client(boss) as http:
            revoked = await http.delete(f"/v1/admin/api-keys/{shown['key_id']}")
        assert revoked.status_code == 200
        assert revoked.json()["revoked_at"] is not None
        answer = await client.get(f"/v1/api/leads/{lead}")
    assert answer.status_code == 401
    assert answer.json()["error"] == "api_key_revoked"


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "api_key_required"),
        ("Basic Ym9iOnNlY3JldA==", "api_key_required"),
        ("Bearer not-a-key", "api_key_malformed"),
        ("Bearer bk_" + "x" * 43, "api_key_unknown"),
    ],
)
async def test_a_missing_or_unknown_api_key_is_401(api, authorization, code):
    headers = {"authorization": authorization} if authorization else {}
    async with api.client(**headers) as http:
        answer = await http.get("/v1/api/leads")
    assert answer.status_code == 401
    assert answer.json()["error"] == code


async def test_a_console_session_is_not_an_api_key_nor_the_other_way_round(api):
    _site, _, boss = _people(api)
    async with api.client(boss) as http:
        key = (await http.post("/v1/admin/api-keys", json={"name": "CRM"})).json()["key"]
        assert (await http.get("/v1/api/leads")).status_code == 401
    async with api.api(key) as client:
        assert (await client.get("/v1/leads")).status_code == 401


async def test_a_change_from_another_sites_page_is_refused(api):
    site, anna, _ = _people(api)
    lead = await insert_lead(api.pool, site)
    body = {"change": "contact", "channel": "phone"}
    async with api.client(anna, origin="https://evil.example") as http:
        answer = await http.post(f"/v1/leads/{lead}/status", json=body)
    assert answer.status_code == 403
    assert answer.json()["error"] == "cross_site"
    async with api.client(anna, origin="http://leads.test") as http:
        assert (await http.post(f"/v1/leads/{lead}/status", json=body)).status_code == 200


# actions that take no body: the path says it all
BODYLESS_ACTIONS = ("/claim", "/test", "/replay", "/undo")


def _routes(routes, prefix: str = "") -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, through included routers."""
    found: set[tuple[str, str]] = set()
    for route in routes:
        if hasattr(route, "original_router"):  # an included router
            found |= _routes(route.original_router.routes, prefix + route.include_context.prefix)
        elif getattr(route, "include_in_schema", False):
            found |= {(method.lower(), prefix + route.path) for method in route.methods}
    return found


async def test_openapi_lists_every_route_with_a_summary_and_its_answer(api):
    async with api.client() as http:
        document = (await http.get("/openapi.json")).json()
    served = _routes(api.app.routes)
    listed = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert served == listed
    ours = {
        (method, path)
        for method, path in served
        if path.startswith(("/v1/leads", "/v1/api/leads", "/v1/admin/api-keys", "/v1/privacy"))
    }
    assert ours == served  # every documented route is the API's, behind its auth
    for method, path in served:
        operation = document["paths"][path][method]
        assert operation.get("summary"), (method, path)
        answers = operation["responses"]
        success = [status for status in answers if status.startswith("2")]
        assert success, (method, path)
        for status in success:  # every success answer but "204 No Content" says its shape
            assert status == "204" or answers[status].get("content"), (method, path, status)
    for method, path in ours:
        operation = document["paths"][path][method]
        assert operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert operation["security"], (method, path)
        if method in ("post", "put", "patch") and not path.endswith(BODYLESS_ACTIONS):
            assert operation.get("requestBody", {}).get("content"), (method, path)
    detail = document["components"]["schemas"]["LeadDetail"]["properties"]
    assert {"touches", "conversations", "merges", "sla", "allowed"} <= set(detail)
    schemes = document["components"]["securitySchemes"]
    assert schemes["consoleSession"]["name"] == "beckon_agent"
    assert schemes["apiKey"]["scheme"] == "bearer"
