"""Every operation of the leads API's OpenAPI spec, attacked: without a session, with a
forged, an expired and a revoked (chat says ended) session, with an agent's session on admin
operations, with an admin of site B on site A's lead, webhook and API key, and from another
page (CSRF). Each is refused and site A's rows are the same afterwards.

The leads app runs over ASGI on the session's Postgres; chat's `/v1/console/me` is the house
stub (`api_testing.chat_stub`), which checks cookies with chat's token code."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from api_testing import Agent, LeadsApi, insert_lead, leads_api
from beckon_devstack.testing import create_database, drop_database
from beckon_edge.tokens import Signer
from leads.adapters import migrations
from leads.webhooks.sender import Sender
from security_surface import LEADS, app_of, operations

pytestmark = pytest.mark.integration

SITE_A, SITE_B = "sec-leads-a", "sec-leads-b"
REFUSED = {401, 403, 404}
BODIES: dict[str, Any] = {
    "/status": {"status": "won"},
    "/reassign": {"assignee": "b-admin"},
    "/webhooks/{endpoint_id}": {"enabled": False},
    "/api-keys": {"name": "attack"},
}


@pytest.fixture(scope="module")
async def api(database_url: str) -> AsyncIterator[LeadsApi]:
    name, url = await create_database(database_url, "leads_security")
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            async with leads_api(pool, url) as running:
                # the webhook routes need the sender (nothing is delivered in this test)
                sender = Sender(
                    pool, instance="security", timeout_s=5.0, allow_http=True, allow_private=True
                )
                running.app.state.webhooks = sender
                try:
                    yield running
                finally:
                    await sender.close()
        finally:
            await pool.close()
    finally:
        await drop_database(database_url, name)


async def _site_rows(pool: asyncpg.Pool, site_id: str) -> list[tuple[str, list[str]]]:
    tables = await pool.fetch(
        """SELECT table_name FROM information_schema.columns
           WHERE table_schema = 'leads' AND column_name = 'site_id' ORDER BY table_name"""
    )
    rows = []
    for (table,) in tables:
        found = await pool.fetch(
            f"SELECT t::text AS row FROM leads.{table} t WHERE site_id = $1",
            site_id,
        )
        rows.append((table, sorted(record["row"] for record in found)))
    return rows


def _body(template: str) -> Any:
    for suffix, body in BODIES.items():
        if template.endswith(suffix):
            return body
    return {}


def test_the_table_is_the_spec() -> None:
    assert operations(app_of("leads")) == set(LEADS)


async def test_every_operation_refuses_strangers_ended_sessions_agents_and_other_sites(
    api: LeadsApi,
) -> None:
    admin_a = api.chat.add(Agent(SITE_A, "a-admin", role="admin", teams=("sales",)))
    agent_a = api.chat.add(Agent(SITE_A, "a-agent", teams=("sales",)))
    ended_a = api.chat.add(Agent(SITE_A, "a-ended", role="admin"))
    revoked = ended_a.cookie()
    ended_a.session_version += 1  # logged out: chat now says the session has ended
    admin_b = api.chat.add(Agent(SITE_B, "b-admin", role="admin", teams=("sales",)))
    lead_id = await insert_lead(api.pool, SITE_A, assignee="a-agent")
    async with api.client(admin_a) as http:
        hook = await http.post(
            "/v1/leads/webhooks",
            json={"url": "http://127.0.0.1:9/hooks", "event_types": ["lead.created"]},
        )
        assert hook.status_code == 201, hook.text
        key = await http.post("/v1/admin/api-keys", json={"name": "CRM"})
        assert key.status_code == 201, key.text
    ids = {
        "lead_id": str(lead_id),
        "endpoint_id": hook.json()["endpoint_id"],
        "key_id": key.json()["api_key"]["key_id"],
        "agent_id": "a-agent",
        "merge_id": "0190d9c2-0000-7000-8000-000000000009",
        "delivery_id": "1",
    }
    # what site A holds (an answer naming an id the caller sent leaks nothing)
    secrets = ["Ann Lee", f"{lead_id.hex[:8]}@example.com", "127.0.0.1:9/hooks", "a-admin"]
    expired = admin_a.cookie(ttl_s=-60)
    forged = Signer("another-secret-0123456789abcdef").agent_token(
        site_id=SITE_A, agent_id="a-admin", session_version=1, ttl_s=600, now=time.time()
    )
    site_b_key = None
    async with api.client(admin_b) as http:
        made = await http.post("/v1/admin/api-keys", json={"name": "B's CRM"})
        site_b_key = made.json()["key"] if made.status_code == 201 else None
    assert site_b_key, made.text

    before = await _site_rows(api.pool, SITE_A)
    tried, wrong = 0, []
    for (method, template), access in sorted(LEADS.items()):
        path = template
        for name, value in ids.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"name a site A object for {template}"
        attacks: list[tuple[str, dict[str, Any]]] = []
        if access in ("agent", "admin"):
            attacks += [
                ("no session", {}),
                ("forged session", {"cookie": forged}),
                ("expired session", {"cookie": expired}),
                ("revoked session", {"cookie": revoked}),
            ]
            if method != "GET":  # CSRF: a change with the admin's cookie from another page
                attacks.append(
                    ("from another page", {"agent": admin_a, "origin": "http://evil.test"})
                )
            if access == "admin":
                attacks.append(("agent on admin", {"agent": agent_a}))
            if "{" in template:
                attacks.append(("another site's admin", {"agent": admin_b}))
        elif access == "server":
            attacks += [
                ("no key", {}),
                ("a console session as key", {"bearer": admin_a.cookie()}),
                ("another site's key", {"bearer": site_b_key}),
            ]
        for attack, how in attacks:
            headers = {"origin": how["origin"]} if "origin" in how else {}
            if "bearer" in how:
                headers["authorization"] = f"Bearer {how['bearer']}"
            client = api.client(how.get("agent"), cookie=how.get("cookie"), **headers)
            async with client as http:
                answer = await http.request(
                    method, path, json=None if method in ("GET", "DELETE") else _body(template)
                )
            tried += 1
            ok_elsewhere = attack == "another site's key" and "{" not in template
            if (answer.status_code not in REFUSED | {422} and not ok_elsewhere) or any(
                secret in answer.text for secret in secrets
            ):
                wrong.append(
                    f"{attack}: {method} {path} -> {answer.status_code} {answer.text[:200]}"
                )
    assert not wrong, "\n".join(wrong)
    assert await _site_rows(api.pool, SITE_A) == before, "an attack changed site A's rows"
    print(f"leads: {len(LEADS)} operations, {tried} attack calls, 0 succeeded")
