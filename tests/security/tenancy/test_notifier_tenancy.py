"""Every operation of the notifier's OpenAPI spec, attacked: without a session, with a forged,
an expired and a revoked (chat says ended) session, with an agent's session on admin
operations, from another page (CSRF), with an admin of site B on site A's e-mail, suppressed
address and visitor, and the inbound mail webhook without its secret, with a console session
or a wrong secret in its place. Each is refused and site A's rows are the same afterwards.

The notifier runs over ASGI with its real lifespan (migrations, the session's Postgres and
broker; intake and sender off); chat's `/v1/console/me` is the house stub
(`api_testing.chat_stub`), which checks cookies with chat's token code."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from api_testing import SECRET, Agent, ChatStub, chat_stub
from beckon_devstack.testing import create_database, drop_database, unique
from beckon_edge.tokens import Signer
from notifier.config import Settings
from notifier.emails.store import address_hash
from notifier.main import create_app
from pydantic import SecretStr
from security_surface import NOTIFIER, app_of, operations

pytestmark = pytest.mark.integration

SITE_A, SITE_B = "sec-notifier-a", "sec-notifier-b"
REFUSED = {401, 403, 404}
ADDRESS = "ann.victim@example.com"
OFFLINE_TEXT = "Please call me about the invoice"
FROM_NAME = "Shop A Mailroom"
VISITOR = "v-notifier-a"
BODIES: dict[str, Any] = {
    "/v1/admin/email/settings": {"from_name": "Mallory", "transcripts": False},
    "/v1/privacy/export": {"visitor_ids": [VISITOR], "emails": [ADDRESS]},
}
# operations that answer about the caller's own site whatever the body names: another
# site's admin gets an answer of its own site, with nothing of site A in it
OWN_SITE_ANSWERS = {("POST", "/v1/privacy/export")}


@dataclass
class NotifierApi:
    app: Any
    pool: asyncpg.Pool
    chat: ChatStub

    def client(
        self, agent: Agent | None = None, *, cookie: str | None = None, **headers: str
    ) -> httpx.AsyncClient:
        cookies = {}
        if agent is not None or cookie is not None:
            cookies["beckon_agent"] = cookie if cookie is not None else agent.cookie()  # type: ignore[union-attr]
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://notifier.test",
            cookies=cookies,
            headers=headers,
        )


@pytest.fixture(scope="module")
async def api(database_url: str, kafka_bootstrap: str) -> AsyncIterator[NotifierApi]:
    name, url = await create_database(database_url, "notifier_security")
    try:
        async with chat_stub() as chat:
            settings = Settings(
                environment="test",
                api_docs=True,
                database_url=url,
                kafka_bootstrap=kafka_bootstrap,
                consumer_group=unique("notifier-security"),
                migrate_on_start=True,
                intake=False,
                sender=False,
                chat_url=chat.url,
                session_cache_s=0,  # every call asks chat: the test ends a session
                agent_session_secret=SecretStr(SECRET),
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
                try:
                    yield NotifierApi(app, pool, chat)
                finally:
                    await pool.close()
    finally:
        await drop_database(database_url, name)


async def _site_rows(pool: asyncpg.Pool, site_id: str) -> list[tuple[str, list[str]]]:
    tables = await pool.fetch(
        """SELECT c.table_name FROM information_schema.columns c
           JOIN information_schema.tables t USING (table_schema, table_name)
           WHERE c.table_schema = 'notifier' AND c.column_name = 'site_id'
             AND t.table_type = 'BASE TABLE'
           ORDER BY c.table_name"""
    )
    rows = []
    for (table,) in tables:
        found = await pool.fetch(
            f"SELECT t::text AS row FROM notifier.{table} t WHERE site_id = $1", site_id
        )
        rows.append((table, sorted(record["row"] for record in found)))
    return rows


async def _site_a(pool: asyncpg.Pool) -> dict[str, str]:
    """Site A's objects: an offline conversation with the visitor's address, an e-mail to
    them in the delivery log, and their address on the suppression list."""
    conversation_id, email_id = uuid.uuid4(), uuid.uuid4()
    await pool.execute(
        """INSERT INTO notifier.conversations
               (conversation_id, site_id, visitor_id, team, email, visitor_name, offline,
                offline_text)
           VALUES ($1, $2, $3, 'sales', $4, 'Ann Victim', true, $5)""",
        conversation_id,
        SITE_A,
        VISITOR,
        ADDRESS,
        OFFLINE_TEXT,
    )
    await pool.execute(
        """INSERT INTO notifier.emails
               (email_id, idempotency_key, site_id, template, recipient, recipient_kind,
                language, conversation_id, visitor_id, source_event_id, context, message_id,
                status, subject)
           VALUES ($1, $2, $3, 'offline_receipt', $4, 'visitor', 'en', $5, $6, $7, $8,
                   '<m1@notifier.test>', 'sent', 'We got your message')""",
        email_id,
        f"security:{email_id}",
        SITE_A,
        ADDRESS,
        conversation_id,
        VISITOR,
        uuid.uuid4(),
        orjson.dumps({"text": OFFLINE_TEXT}).decode(),
    )
    await pool.execute(
        """INSERT INTO notifier.suppressions (site_id, address_hash, reason)
           VALUES ($1, $2, 'bounce')""",
        SITE_A,
        address_hash(ADDRESS),
    )
    return {"email_id": str(email_id), "address": ADDRESS, "name": "offline_receipt"}


def _body(method: str, template: str) -> Any:
    if method in ("GET", "DELETE"):
        return None
    return BODIES.get(template, {})


def test_the_table_is_the_spec() -> None:
    assert operations(app_of("notifier")) == set(NOTIFIER)


async def test_every_operation_refuses_strangers_ended_sessions_agents_and_other_sites(
    api: NotifierApi,
) -> None:
    admin_a = api.chat.add(Agent(SITE_A, "a-admin", role="admin", teams=("sales",)))
    agent_a = api.chat.add(Agent(SITE_A, "a-agent", teams=("sales",)))
    ended_a = api.chat.add(Agent(SITE_A, "a-ended", role="admin"))
    revoked = ended_a.cookie()
    ended_a.session_version += 1  # logged out: chat now says the session has ended
    admin_b = api.chat.add(Agent(SITE_B, "b-admin", role="admin", teams=("sales",)))
    ids = await _site_a(api.pool)
    async with api.client(admin_a) as http:
        saved = await http.put("/v1/admin/email/settings", json={"from_name": FROM_NAME})
        assert saved.status_code == 200, saved.text
        # what the attacks must not reach is there for site A's own admin
        exported = await http.post("/v1/privacy/export", json=BODIES["/v1/privacy/export"])
        assert exported.status_code == 200, exported.text
        assert ADDRESS in exported.text
        entry = await http.get(f"/v1/admin/email/log/{ids['email_id']}")
        assert entry.status_code == 200, entry.text
    async with api.client(agent_a) as http:
        inbox = await http.get("/v1/email/offline")
        assert OFFLINE_TEXT in inbox.text, inbox.text
    secrets = [ADDRESS, OFFLINE_TEXT, FROM_NAME, "Ann Victim"]
    expired = admin_a.cookie(ttl_s=-60)
    forged = Signer("another-secret-0123456789abcdef").agent_token(
        site_id=SITE_A, agent_id="a-admin", session_version=1, ttl_s=600, now=time.time()
    )

    before = await _site_rows(api.pool, SITE_A)
    tried: list[tuple[str, str, str, int]] = []
    wrong: list[str] = []
    for (method, template), access in sorted(NOTIFIER.items()):
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
            names_site_a = any("{" + name + "}" in template for name in ("email_id", "address"))
            if names_site_a or template in BODIES or access == "agent":
                attacks.append(("another site's admin", {"agent": admin_b}))
        elif access == "server":
            attacks += [
                ("no secret", {}),
                ("a console session as secret", {"bearer": admin_a.cookie()}),
                ("a wrong secret", {"bearer": "not-the-inbound-secret-0123456789"}),
            ]
        for attack, how in attacks:
            headers = {"origin": how["origin"]} if "origin" in how else {}
            if "bearer" in how:
                headers["authorization"] = f"Bearer {how['bearer']}"
            async with api.client(how.get("agent"), cookie=how.get("cookie"), **headers) as http:
                body = _body(method, template)
                if template == "/v1/inbound/mail":  # a raw e-mail: a reply to site A's visitor
                    answer = await http.post(
                        path,
                        content=f"From: {ADDRESS}\r\nTo: reply@notifier.test\r\n\r\nhi\r\n",
                    )
                else:
                    answer = await http.request(method, path, json=body)
            tried.append((method, template, attack, answer.status_code))
            own_site = attack == "another site's admin" and (
                (method, template) in OWN_SITE_ANSWERS or "{" not in template
            )
            refused = answer.status_code in REFUSED | {422} or (
                own_site and answer.status_code == 200
            )
            if not refused or any(secret in answer.text for secret in secrets):
                wrong.append(
                    f"{attack}: {method} {path} -> {answer.status_code} {answer.text[:200]}"
                )
    assert not wrong, "\n".join(wrong)
    assert await _site_rows(api.pool, SITE_A) == before, "an attack changed site A's rows"
    attacked = {(method, template) for method, template, _, _ in tried}
    print(
        f"notifier: {len(attacked)} operations x attacks = {len(tried)} calls, 0 succeeded "
        f"({len(NOTIFIER) - len(attacked)} public)"
    )
