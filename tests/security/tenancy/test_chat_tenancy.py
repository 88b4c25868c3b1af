"""Every operation of chat's OpenAPI spec, attacked: without a session, with an expired and
a revoked (logged out) one, with an agent's session on admin operations, and with an admin
of shop-b on shop-a's objects (its conversation, visitor, canned reply, team, agents). Each
is refused (401/403/404, or 422 before anything is read) and shop-a's rows are the same
afterwards. The operations come from `app.openapi()` through `security_surface`, so a new
endpoint is attacked without a new test."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from beckon_edge.tokens import Signer
from chat_testing import SECRET, SHOP_A_SPEC, SHOP_B_SPEC
from security_surface import CHAT, app_of, operations

pytestmark = pytest.mark.integration

REFUSED = {401, 403, 404}
# a body shaped like the real one, so that a call that got past the session would reach the
# object it names (and not stop at validation)
BODIES: dict[str, Any] = {
    "/messages": {"client_id": "attack-1", "text": "attack"},
    "/transfer": {"team": "sales"},
    "/tags": {"tags": ["attack"]},
    "/fill": {"text": "attack"},
    "/notes": {"text": "attack"},
    "/lead": {"validation": "qualified"},
    "/canned/{reply_id}": {"text": "attack"},
    "/teams/{team}": {"name": "Attack"},
    "/members": {"agent_id": "shop-b-dave"},
    "/agents/{agent_id}": {"role": "admin"},
    "/status": {"status": "away"},
    "/preferences": {"locale": "fi"},
    "/canned": {"shortcut": "attack", "text": "attack", "scope": "site"},
    "/admin/teams": {"team": "attack", "name": "Attack"},
    "/admin/agents": {"name": "Mallory", "email": "mallory@evil.test"},
}


def _body(path: str) -> Any:
    for suffix, body in BODIES.items():
        if path.endswith(suffix):
            return body
    return {}


async def _site_rows(pool: Any, site_id: str, conversation_id: str) -> list[tuple[str, list[str]]]:
    """Every row of chat's tables that belongs to the site (and the messages of its
    conversation), as text: what an attack must leave as it was."""
    tables = await pool.fetch(
        """SELECT table_name FROM information_schema.columns
           WHERE table_schema = 'chat' AND column_name = 'site_id' ORDER BY table_name"""
    )
    rows: list[tuple[str, list[str]]] = []
    for (table,) in tables:
        found = await pool.fetch(
            f"SELECT t::text AS row FROM chat.{table} t WHERE site_id = $1", site_id
        )
        rows.append((table, sorted(record["row"] for record in found)))
    messages = await pool.fetch(
        "SELECT t::text AS row FROM chat.messages t WHERE conversation_id = $1::uuid",
        conversation_id,
    )
    rows.append(("messages", sorted(record["row"] for record in messages)))
    return rows


@pytest.fixture(scope="module")
async def shop_a(chat_under_attack: Any) -> dict[str, str]:
    """shop-a's real objects: a conversation with a message, its visitor, a canned reply."""
    base = chat_under_attack.instance.url
    visitor = "v-tenancy-a"
    async with httpx.AsyncClient(timeout=30.0) as http:
        headers = {"Origin": SHOP_A_SPEC.origin}
        session = await http.post(
            f"{base}/v1/widget/session",
            json={"site_key": SHOP_A_SPEC.site_key, "visitor_id": visitor},
            headers=headers,
        )
        assert session.status_code == 200, session.text
        started = await http.post(
            f"{base}/v1/widget/conversations",
            json={"text": "Where is my order?", "client_id": "a-1"},
            headers={**headers, "Authorization": f"Bearer {session.json()['token']}"},
        )
        assert started.status_code == 201, started.text
        admin = await chat_under_attack.login(SHOP_A_SPEC.agent("alice").email)
        canned = await http.post(
            f"{base}/v1/console/canned",
            json={"shortcut": "hello", "text": "Hello!", "scope": "site"},
            headers={"Origin": base, "Cookie": f"beckon_agent={admin}"},
        )
        assert canned.status_code == 201, canned.text
    return {
        "conversation_id": started.json()["conversation"]["id"],
        "visitor_id": visitor,
        "reply_id": canned.json()["reply"]["id"]
        if "reply" in canned.json()
        else canned.json()["id"],
        "team": "support",  # shop-a has it, shop-b does not
        "agent_id": SHOP_A_SPEC.agent("bob").agent_id,
        "invitation_id": "0190d9c2-0000-7000-8000-000000000000",
        "outcome": "accepted",
    }


def _path(template: str, ids: dict[str, str]) -> str:
    path = template
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no shop-a object for a parameter of {template}: name one in shop_a"
    return path


def test_the_table_is_the_spec() -> None:
    assert operations(app_of("chat")) == set(CHAT)


async def test_every_operation_refuses_strangers_ended_sessions_agents_and_other_sites(
    chat_under_attack: Any, shop_a: dict[str, str]
) -> None:
    base = chat_under_attack.instance.url
    pool = chat_under_attack.pool
    signer = Signer(SECRET)
    expired = signer.agent_token(
        site_id="shop-a", agent_id="shop-a-alice", session_version=1, ttl_s=-60, now=time.time()
    )
    revoked = await chat_under_attack.login(SHOP_A_SPEC.agent("carol").email)
    async with httpx.AsyncClient(timeout=30.0) as http:
        ended = await http.post(
            f"{base}/v1/console/logout",
            headers={"Origin": base, "Cookie": f"beckon_agent={revoked}"},
        )
        assert ended.status_code == 204
    agent = await chat_under_attack.login(SHOP_A_SPEC.agent("bob").email)
    other_admin = await chat_under_attack.login(SHOP_B_SPEC.agent("dave").email)
    expired_visitor = signer.visitor_token(
        site_id="shop-a",
        visitor_id=shop_a["visitor_id"],
        conversation_id=shop_a["conversation_id"],
        ttl_s=-60,
        now=time.time(),
    )
    other_visitor = signer.visitor_token(
        site_id="shop-b", visitor_id="v-tenancy-b", conversation_id=None, ttl_s=600, now=time.time()
    )

    before = await _site_rows(pool, "shop-a", shop_a["conversation_id"])
    tried: list[tuple[str, str, str, int]] = []
    wrong: list[str] = []
    async with httpx.AsyncClient(timeout=30.0, base_url=base) as http:

        async def call(method: str, template: str, attack: str, headers: dict[str, str]) -> int:
            path = _path(template, shop_a)
            kwargs: dict[str, Any] = {"headers": {"Origin": base, **headers}}
            if method not in ("GET", "DELETE"):
                kwargs["json"] = _body(template)
            answer = await http.request(method, path, **kwargs)
            tried.append((method, template, attack, answer.status_code))
            text = answer.text
            leaked = [
                value
                for value in (shop_a["conversation_id"], "Where is my order?", "Hello!")
                if value in text
            ]
            if answer.status_code not in REFUSED | {422} or leaked:
                wrong.append(f"{attack}: {method} {path} -> {answer.status_code} {text[:200]}")
            return answer.status_code

        for (method, template), access in sorted(CHAT.items()):
            if access == "public":
                continue
            if access == "visitor":
                await call(method, template, "no token", {})
                await call(
                    method,
                    template,
                    "expired token",
                    {"Authorization": f"Bearer {expired_visitor}"},
                )
                await call(
                    method,
                    template,
                    "another site's token",
                    {"Authorization": f"Bearer {other_visitor}"},
                )
                continue
            await call(method, template, "no session", {})
            await call(method, template, "expired session", {"Cookie": f"beckon_agent={expired}"})
            await call(method, template, "revoked session", {"Cookie": f"beckon_agent={revoked}"})
            if access == "admin":
                status = await call(
                    method, template, "agent on admin", {"Cookie": f"beckon_agent={agent}"}
                )
                assert status == 403, f"{method} {template}: an agent's session got {status}"
            if "{" in template:  # names a shop-a object: another site's admin must not reach it
                await call(
                    method,
                    template,
                    "another site's admin",
                    {"Cookie": f"beckon_agent={other_admin}"},
                )

    after = await _site_rows(pool, "shop-a", shop_a["conversation_id"])
    assert not wrong, "\n".join(wrong)
    assert after == before, "an attack changed shop-a's rows"
    # the figures for docs/security.md
    print(
        f"chat: {len({(m, p) for m, p, _, _ in tried})} operations x attacks = "
        f"{len(tried)} calls, 0 succeeded"
    )
    print(f"chat: stopped at validation (422): {sum(1 for *_, s in tried if s == 422)}")
