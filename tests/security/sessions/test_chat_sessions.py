"""Tokens and sessions at chat's edge: forged, expired, wrong-kind and cross-site visitor
tokens; agent sessions that are forged, of the wrong kind or fixed before login; the session
cookie's flags; CSRF on every state-changing console call; rate limits on logins, widget
starts and offline forms."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from beckon_edge.tokens import Signer
from chat_testing import SECRET, SHOP_A_SPEC, SHOP_B_SPEC, tamper
from security_surface import CHAT

pytestmark = pytest.mark.integration

SIGNER = Signer(SECRET)
EVIL = "http://evil.test"


def _visitor(site: str, visitor: str, conversation: str | None = None, ttl_s: int = 600) -> str:
    return SIGNER.visitor_token(
        site_id=site, visitor_id=visitor, conversation_id=conversation, ttl_s=ttl_s, now=time.time()
    )


def _fill(template: str) -> str:
    ids = {
        "conversation_id": "0190d9c2-0000-7000-8000-000000000001",
        "visitor_id": "v-1",
        "reply_id": "0190d9c2-0000-7000-8000-000000000002",
        "team": "sales",
        "agent_id": "shop-a-bob",
        "invitation_id": "0190d9c2-0000-7000-8000-000000000003",
        "outcome": "accepted",
    }
    for name, value in ids.items():
        template = template.replace("{" + name + "}", value)
    assert "{" not in template, f"name a value for the parameter of {template}"
    return template


async def _start(http: httpx.AsyncClient, base: str, site: Any, visitor: str) -> dict[str, Any]:
    headers = {"Origin": site.origin}
    session = await http.post(
        f"{base}/v1/widget/session",
        json={"site_key": site.site_key, "visitor_id": visitor},
        headers=headers,
    )
    assert session.status_code == 200, session.text
    started = await http.post(
        f"{base}/v1/widget/conversations",
        json={"text": "Hello", "client_id": "s-1"},
        headers={**headers, "Authorization": f"Bearer {session.json()['token']}"},
    )
    assert started.status_code == 201, started.text
    return dict(started.json())


async def test_bad_visitor_tokens_are_refused_on_every_visitor_operation(
    chat_under_attack: Any,
) -> None:
    base = chat_under_attack.url
    async with httpx.AsyncClient(timeout=30.0) as http:
        mine = await _start(http, base, SHOP_A_SPEC, "v-sessions-a")
        good = mine["token"]
        conversation = mine["conversation"]["id"]
        agent_cookie = await chat_under_attack.login(SHOP_A_SPEC.agent("bob").email)
        other_site = _visitor("shop-b", "v-sessions-a", conversation)  # genuine, of shop-b
        bad = {
            "forged": good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
            "re-signed elsewhere": Signer("another-secret-0123456789").visitor_token(
                site_id="shop-a",
                visitor_id="v-sessions-a",
                conversation_id=conversation,
                ttl_s=600,
                now=time.time(),
            ),
            "claims changed": tamper(good, v="v-someone-else"),
            "expired": _visitor("shop-a", "v-sessions-a", conversation, ttl_s=-60),
            "wrong kind (an agent session)": agent_cookie,
        }
        tried = 0
        for (method, template), access in sorted(CHAT.items()):
            if access != "visitor":
                continue
            for name, token in bad.items():
                answer = await http.request(
                    method,
                    f"{base}{_fill(template)}",
                    json={} if method == "POST" else None,
                    headers={"Origin": SHOP_A_SPEC.origin, "Authorization": f"Bearer {token}"},
                )
                tried += 1
                assert answer.status_code == 401, f"{name}: {method} {template} {answer.text}"
            # a genuine token of shop-b, sent from shop-a's page, reads nothing of shop-a
            answer = await http.request(
                method,
                f"{base}{_fill(template)}",
                json={} if method == "POST" else None,
                headers={"Origin": SHOP_A_SPEC.origin, "Authorization": f"Bearer {other_site}"},
            )
            tried += 1
            assert answer.status_code in (401, 403, 404, 422), f"{method} {template} {answer.text}"
            assert "Hello" not in answer.text
        # the widget socket, too
        for name, token in {**bad, "another site's": other_site}.items():
            refused = await _socket_refused(base, token, SHOP_A_SPEC.origin)
            assert refused, f"the widget socket opened with a {name} token"
        print(f"chat widget: {tried} calls with bad visitor tokens, 0 succeeded")


async def _socket_refused(base: str, token: str, origin: str) -> bool:
    from chat_testing import close_code

    code = await close_code(
        f"{base.replace('http://', 'ws://')}/v1/widget/ws?token={token}", {"Origin": origin}
    )
    return code is not None and code >= 4000


async def test_a_visitor_token_is_no_console_session(chat_under_attack: Any) -> None:
    base = chat_under_attack.url
    token = _visitor("shop-a", "v-sessions-kind")
    async with httpx.AsyncClient(timeout=30.0) as http:
        for (method, template), access in sorted(CHAT.items()):
            if access not in ("agent", "admin"):
                continue
            answer = await http.request(
                method,
                f"{base}{_fill(template)}",
                json={} if method != "GET" else None,
                headers={"Origin": base, "Cookie": f"beckon_agent={token}"},
            )
            assert answer.status_code == 401, f"{method} {template}: {answer.text}"


async def test_a_session_fixed_before_login_is_not_the_one_after(chat_under_attack: Any) -> None:
    base = chat_under_attack.url
    planted = await chat_under_attack.login(SHOP_A_SPEC.agent("carol").email)
    async with httpx.AsyncClient(timeout=30.0) as http:
        for before in ("attacker-chosen-session-id", planted):
            answer = await http.post(
                f"{base}/v1/console/login",
                json={"email": SHOP_A_SPEC.agent("bob").email, "password": "test-password-123"},
                headers={"Origin": base, "Cookie": f"beckon_agent={before}"},
            )
            assert answer.status_code == 200, answer.text
            after = answer.cookies["beckon_agent"]
            assert after != before
            me = await http.get(
                f"{base}/v1/console/me", headers={"Cookie": f"beckon_agent={after}"}
            )
            assert me.json()["agent"]["id"] == "shop-a-bob"
        # the planted value stays what it was: nobody's session
        me = await http.get(
            f"{base}/v1/console/me", headers={"Cookie": "beckon_agent=attacker-chosen-session-id"}
        )
        assert me.status_code == 401


async def test_the_session_cookie_is_httponly_samesite_strict_and_host_wide(
    chat_under_attack: Any,
) -> None:
    base = chat_under_attack.url
    async with httpx.AsyncClient(timeout=30.0) as http:
        answer = await http.post(
            f"{base}/v1/console/login",
            json={"email": SHOP_A_SPEC.agent("bob").email, "password": "test-password-123"},
            headers={"Origin": base},
        )
        logout = await http.post(
            f"{base}/v1/console/logout",
            headers={"Origin": base, "Cookie": f"beckon_agent={answer.cookies['beckon_agent']}"},
        )
    for response in (answer, logout):
        jar: SimpleCookie = SimpleCookie()
        jar.load(response.headers["set-cookie"])
        cookie = jar["beckon_agent"]
        assert cookie["httponly"] is True
        assert cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/"
        assert not cookie["domain"]  # never shared with the store's other hosts
    # Secure in production: chat refuses to start there without it (see the unit test
    # test_production_refuses_insecure_cookies); this instance runs plain HTTP for the test


async def test_every_state_changing_console_call_from_another_page_is_refused(
    chat_under_attack: Any,
) -> None:
    base = chat_under_attack.url
    admin = await chat_under_attack.login(SHOP_A_SPEC.agent("alice").email)
    pool = chat_under_attack.pool
    before = await pool.fetch("SELECT t::text FROM chat.agents t WHERE site_id = 'shop-a'")
    tried = 0
    async with httpx.AsyncClient(timeout=30.0) as http:
        for method, template in sorted(CHAT):
            if method == "GET" or not template.startswith("/v1/console/"):
                continue
            for origin in (EVIL, "null", SHOP_A_SPEC.origin):
                answer = await http.request(
                    method,
                    f"{base}{_fill(template)}",
                    json={},
                    headers={"Origin": origin, "Cookie": f"beckon_agent={admin}"},
                )
                tried += 1
                assert answer.status_code == 403, f"{origin}: {method} {template} {answer.text}"
                assert answer.json()["error"] == "cross_site"
    after = await pool.fetch("SELECT t::text FROM chat.agents t WHERE site_id = 'shop-a'")
    assert after == before
    me = await httpx.AsyncClient().get(
        f"{base}/v1/console/me", headers={"Cookie": f"beckon_agent={admin}"}
    )
    assert me.status_code == 200  # the session still stands: logout from evil.test did nothing
    print(f"chat console: {tried} cross-site state-changing calls, 0 succeeded")


async def test_logins_widget_starts_and_offline_forms_are_rate_limited(
    chat_under_attack: Any,
) -> None:
    base = chat_under_attack.url
    async with httpx.AsyncClient(timeout=30.0) as http:
        statuses = []
        for _ in range(30):
            answer = await http.post(
                f"{base}/v1/console/login",
                json={"email": SHOP_B_SPEC.agent("erin").email, "password": "guess"},
                headers={"Origin": base},
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                break
        assert statuses[0] == 401, statuses
        assert statuses[-1] == 429, statuses

        # shop-b's widget: starts and offline messages share the (IP, site) bucket
        session = await http.post(
            f"{base}/v1/widget/session",
            json={"site_key": SHOP_B_SPEC.site_key, "visitor_id": "v-limits"},
            headers={"Origin": SHOP_B_SPEC.origin},
        )
        token = session.json()["token"]
        headers = {"Origin": SHOP_B_SPEC.origin, "Authorization": f"Bearer {token}"}
        for path, body in (
            ("/v1/widget/offline", {"email": "a@example.com", "text": "call me"}),
            ("/v1/widget/conversations", {"text": "hi"}),
        ):
            statuses = []
            for _ in range(60):
                answer = await http.post(f"{base}{path}", json=body, headers=headers)
                statuses.append(answer.status_code)
                if answer.status_code == 429:
                    break
            assert statuses[-1] == 429, f"{path}: {statuses}"
            assert answer.headers.get("retry-after")
