"""Tenancy and the edges' defences: another tenant's ids are simply not found, tokens can't
be forged or swapped between kinds, origins are enforced on HTTP and WebSockets, the console
is locked down, and the widget is rate-limited."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from beckon_contracts.ids import uuid7
from beckon_edge.tokens import Signer
from chat.adapters import store
from chat_testing import (
    SECRET,
    SHOP_A_ORIGIN,
    SHOP_A_SPEC,
    SHOP_B_ORIGIN,
    SHOP_B_SPEC,
    close_code,
    frame_is,
    tamper,
    unique,
)

pytestmark = pytest.mark.integration

EVIL_ORIGIN = "http://evil.test"


async def _snapshot(db, conversation_id: UUID) -> tuple:
    row = await db.fetchrow(
        """SELECT status, agent_id, team, tags, last_seq, email, closed_at
           FROM chat.conversations WHERE conversation_id = $1""",
        conversation_id,
    )
    messages = await db.fetch(
        "SELECT message_id, seq, text FROM chat.messages WHERE conversation_id = $1 ORDER BY seq",
        conversation_id,
    )
    outbox = await db.fetchval(
        "SELECT count(*) FROM chat.outbox WHERE key = $1", str(conversation_id).encode()
    )
    return tuple(row), [tuple(m) for m in messages], outbox


async def test_another_tenants_agent_finds_nothing_and_changes_nothing(chat, clients, db) -> None:
    alice = await clients.agent(chat.a.url, SHOP_A_SPEC.agent("alice"), online=True)
    dave = await clients.agent(chat.b.url, SHOP_B_SPEC.agent("dave"), online=True)
    dave_console = await dave.connect(chat.b.ws_url)
    alice_console = await alice.connect(chat.b.ws_url)  # both consoles on the same instance
    await dave_console.recv_until(frame_is("hello"))
    await alice_console.recv_until(frame_is("hello"))

    shopper = clients.visitor(SHOP_A_SPEC)
    assert (await shopper.session(chat.a.url)).status_code == 200
    started = await shopper.start(chat.a.url, text="Where is my order?", client_id="q-1")
    assert started.status_code == 201
    cid = started.json()["conversation"]["id"]
    # a second shop-a conversation that waits in the queue (support has its own agents)
    waiting = clients.visitor(SHOP_A_SPEC)
    await waiting.session(chat.a.url)
    await waiting.start(chat.a.url, team="support")
    before = await _snapshot(db, UUID(cid))

    calls = [
        ("GET", f"/conversations/{cid}", None),
        ("POST", f"/conversations/{cid}/pickup", None),
        ("POST", f"/conversations/{cid}/messages", {"client_id": "b-1", "text": "Hi from B"}),
        ("POST", f"/conversations/{cid}/transfer", {"agent_id": dave.agent_id}),
        ("POST", f"/conversations/{cid}/transfer", {"agent_id": alice.agent_id}),
        ("POST", f"/conversations/{cid}/transfer", {"team": "sales"}),
        ("POST", f"/conversations/{cid}/tags", {"tags": ["stolen"]}),
        ("POST", f"/conversations/{cid}/close", None),
    ]
    for instance in chat.instances:
        for method, path, body in calls:
            if method == "GET":
                answer = await dave.get(path, base=instance.url)
            else:
                answer = await dave.post(path, body, base=instance.url)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["error"] == "unknown_conversation", (method, path)
    assert await _snapshot(db, UUID(cid)) == before

    shop_a_ids = {
        str(r["conversation_id"])
        for r in await db.fetch(
            "SELECT conversation_id FROM chat.conversations WHERE site_id = $1", "shop-a"
        )
    }
    assert cid in shop_a_ids
    for scope in ("queue", "mine", "all"):
        listed = (await dave.get(f"/conversations?scope={scope}")).json()["conversations"]
        assert {c["site_id"] for c in listed} <= {"shop-b"}, scope
        assert not shop_a_ids & {c["id"] for c in listed}, scope

    # over the console socket too
    await dave_console.send(
        {"t": "message", "conversation_id": cid, "client_id": "b-2", "text": "Hi again"}
    )
    refused = await dave_console.recv_until(frame_is("error"))
    assert refused["error"] == "unknown_conversation"
    assert await _snapshot(db, UUID(cid)) == before

    # shop-a traffic never reaches shop-b's console: alice (same instance) hears the message,
    # then shop-b traffic that comes later reaches dave; nothing of shop-a's came before it
    await shopper.post(chat.a.url, "/messages", {"client_id": "q-2", "text": "Order 1234"})
    await alice_console.recv_until(frame_is("message", conversation_id=cid, message__seq=2))
    own = clients.visitor(SHOP_B_SPEC)
    await own.session(chat.a.url)
    mine = await own.start(chat.a.url, text="Hello shop B", client_id="b-3")
    await dave_console.recv_until(
        frame_is("message", conversation_id=mine.json()["conversation"]["id"])
    )
    leaked = [
        f
        for f in dave_console.frames
        if f.get("conversation_id") in shop_a_ids
        or (f.get("conversation") or {}).get("id") in shop_a_ids
        or (f.get("message") or {}).get("conversation_id") in shop_a_ids
    ]
    assert leaked == []


async def test_a_visitor_cannot_answer_or_use_another_tenants_invitations(
    chat, clients, db
) -> None:
    foreign = uuid7()
    neighbours = uuid7()  # same site, another visitor
    expires = datetime.now(UTC) + timedelta(hours=1)
    async with db.acquire() as conn:
        for invitation_id, site_id in ((foreign, "shop-b"), (neighbours, "shop-a")):
            await store.insert_invitation(
                conn,
                {
                    "invitation_id": invitation_id,
                    "site_id": site_id,
                    "visitor_id": unique("v"),
                    "rule_id": "size-help",
                    "team": "sales",
                    "message": "Can I help?",
                    "agent": None,
                    "personal": False,
                    "expires_at": expires,
                },
            )
    visitor = clients.visitor(SHOP_A_SPEC)
    assert (await visitor.session(chat.b.url)).status_code == 200
    for invitation_id in (foreign, neighbours):
        for outcome in ("shown", "accepted", "declined"):
            answer = await visitor.post(chat.b.url, f"/invitations/{invitation_id}/{outcome}")
            assert answer.status_code == 404, (outcome, answer.text)
            assert answer.json()["error"] == "unknown_invitation"
        answer = await visitor.start(chat.a.url, invitation_id=str(invitation_id))
        assert answer.status_code == 404, answer.text
        status = await db.fetchval(
            "SELECT status FROM chat.invitations WHERE invitation_id = $1", invitation_id
        )
        assert status == "issued"
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.conversations WHERE site_id = 'shop-a' AND visitor_id = $1",
            visitor.visitor_id,
        )
        == 0
    )


async def test_forged_tampered_expired_and_wrong_kind_tokens_are_refused(
    chat, clients, http
) -> None:
    visitor = clients.visitor(SHOP_A_SPEC)
    assert (await visitor.session(chat.a.url)).status_code == 200
    assert (await visitor.start(chat.a.url, text="Hi", client_id="t-1")).status_code == 201
    token = visitor.token
    assert token is not None
    dave = await clients.agent(chat.b.url, SHOP_B_SPEC.agent("dave"))
    assert dave.cookie is not None
    now = time.time()

    forged = {
        "another visitor": tamper(token, v="someone-else"),
        "another site": tamper(token, s="shop-b"),
        "another kind": tamper(token, k="agent"),
        "later expiry": tamper(token, exp=int(now) + 10**8),
        "another secret": Signer("a-completely-different-secret").visitor_token(
            site_id="shop-a",
            visitor_id=visitor.visitor_id,
            conversation_id=None,
            ttl_s=600,
            now=now,
        ),
        "expired": Signer(SECRET).visitor_token(
            site_id="shop-a",
            visitor_id=visitor.visitor_id,
            conversation_id=None,
            ttl_s=60,
            now=now - 3600,
        ),
        "an agent cookie": dave.cookie,
        "garbage": "not-a-token",
    }
    origin = {"Origin": SHOP_A_ORIGIN}
    for what, bad in forged.items():
        answer = await http.get(
            f"{chat.a.url}/v1/widget/messages",
            headers={**origin, "Authorization": f"Bearer {bad}"},
        )
        assert answer.status_code == 401, (what, answer.text)
        assert answer.json()["error"] == "invalid_token", what
        code = await close_code(f"{chat.b.ws_url}/v1/widget/ws?token={bad}", origin)
        assert code == 4401, what
    missing = await http.get(f"{chat.a.url}/v1/widget/messages", headers=origin)
    assert missing.status_code == 401
    assert missing.json()["error"] == "missing_token"

    # a visitor token is no agent session, on HTTP or the console socket
    for cookie in (token, tamper(dave.cookie, s="shop-a", a="shop-a-alice"), None):
        headers = {"Origin": chat.a.url}
        if cookie:
            headers["Cookie"] = f"beckon_agent={cookie}"
        answer = await http.get(f"{chat.a.url}/v1/console/me", headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "not_logged_in"
        assert await close_code(f"{chat.a.ws_url}/v1/console/ws", headers) == 4401
    # while the genuine ones work
    assert (await visitor.get(chat.b.url, "/messages")).status_code == 200
    assert (await dave.get("/me", base=chat.a.url)).status_code == 200


async def test_origins_are_enforced_on_every_edge(chat, clients, http, db) -> None:
    for origin in (EVIL_ORIGIN, SHOP_B_ORIGIN, "null"):
        answer = await http.post(
            f"{chat.a.url}/v1/widget/session",
            json={"site_key": SHOP_A_SPEC.site_key, "visitor_id": unique("v")},
            headers={"Origin": origin},
        )
        assert answer.status_code == 403, (origin, answer.text)
        assert answer.json()["error"] == "origin_not_allowed"

    visitor = clients.visitor(SHOP_A_SPEC)
    assert (await visitor.session(chat.a.url)).status_code == 200
    answer = await visitor.post(chat.b.url, "/conversations", {}, headers={"Origin": EVIL_ORIGIN})
    assert answer.status_code == 403
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.conversations WHERE site_id = 'shop-a' AND visitor_id = $1",
            visitor.visitor_id,
        )
        == 0
    )
    for origin in (EVIL_ORIGIN, SHOP_B_ORIGIN):
        code = await close_code(
            f"{chat.b.ws_url}/v1/widget/ws?token={visitor.token}", {"Origin": origin}
        )
        assert code == 4403, origin

    carol = await clients.agent(chat.a.url, SHOP_A_SPEC.agent("carol"))
    assert carol.cookie is not None
    cookie = {"Cookie": f"beckon_agent={carol.cookie}"}
    for origin in (EVIL_ORIGIN, SHOP_A_SPEC.origin, chat.b.url):  # B is another origin for A
        code = await close_code(f"{chat.a.ws_url}/v1/console/ws", {**cookie, "Origin": origin})
        assert code == 4403, origin

    status_before = await db.fetchval(
        "SELECT status FROM chat.agents WHERE agent_id = $1", carol.agent_id
    )
    for path, body in (
        ("/status", {"status": "online"}),
        (f"/conversations/{uuid7()}/pickup", None),
        (f"/conversations/{uuid7()}/messages", {"client_id": "x", "text": "hi"}),
        (f"/conversations/{uuid7()}/transfer", {"team": "sales"}),
        (f"/conversations/{uuid7()}/tags", {"tags": ["a"]}),
        (f"/conversations/{uuid7()}/close", None),
    ):
        answer = await carol.post(path, body, headers={"Origin": EVIL_ORIGIN})
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"] == "cross_site"
    assert (
        await db.fetchval("SELECT status FROM chat.agents WHERE agent_id = $1", carol.agent_id)
        == status_before
    )

    for path in ("/console/", "/console"):
        page = await http.get(f"{chat.a.url}{path}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = {
            d.strip().split(" ", 1)[0]: d.strip()
            for d in page.headers["content-security-policy"].split(";")
            if d.strip()
        }
        assert policy["script-src"] == "script-src 'self'"
        assert "'unsafe-inline'" not in policy.get("style-src", "")
        assert policy["frame-ancestors"] == "frame-ancestors 'none'"
        assert page.headers["x-content-type-options"] == "nosniff"


async def test_widget_calls_are_rate_limited_per_site(chat, make_site, clients, http) -> None:
    site = await make_site()
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200

    async def sessions() -> list:
        return await asyncio.gather(
            *(
                http.post(
                    f"{chat.a.url}/v1/widget/session",
                    json={"site_key": site.site_key, "visitor_id": unique("v")},
                    headers={"Origin": site.origin},
                )
                for _ in range(120)
            )
        )

    async def reads() -> list:
        return await asyncio.gather(*(visitor.get(chat.a.url, "/messages") for _ in range(120)))

    for answers in (await sessions(), await reads()):
        statuses = Counter(a.status_code for a in answers)
        assert set(statuses) == {200, 429}, statuses
        assert statuses[200] >= 59  # the burst (60, one was the first session) is honoured
        for answer in answers:
            if answer.status_code == 429:
                assert answer.json()["error"] == "rate_limited"
                assert int(answer.headers["retry-after"]) >= 1
    # another site from the same address is not affected
    other = clients.visitor(SHOP_B_SPEC)
    assert (await other.session(chat.a.url)).status_code == 200


async def test_password_guessing_on_one_agent_is_rate_limited(chat, make_site, http) -> None:
    site = await make_site(agents=[("guarded", ["sales"], 5), ("colleague", ["sales"], 5)])
    agent = site.agent("guarded")
    answers: list = []
    # the burst (10) gets honest answers, then the account is throttled (a few more may be
    # answered first: tokens refill while argon2 checks each guess)
    while len(answers) < 40 and (not answers or answers[-1].status_code != 429):
        answers.append(
            await http.post(
                f"{chat.a.url}/v1/console/login",
                json={"email": agent.email, "password": f"guess-{len(answers)}"},
            )
        )
    statuses = [answer.status_code for answer in answers]
    assert statuses[:10] == [401] * 10, statuses
    assert statuses[-1] == 429, statuses
    assert int(answers[-1].headers["retry-after"]) >= 1
    # even the right password waits (from this address): the throttle is per account
    right = await http.post(
        f"{chat.a.url}/v1/console/login", json={"email": agent.email, "password": agent.password}
    )
    assert right.status_code == 429
    # a colleague on the same instance, from the same address, logs in normally
    colleague = site.agent("colleague")
    other = await http.post(
        f"{chat.a.url}/v1/console/login",
        json={"email": colleague.email, "password": colleague.password},
    )
    assert other.status_code == 200, other.text
