"""The probe of issue 19: `POST /v1/widget/session` with a site key and someone's visitor id
(a cookie any script on the store reads) used to hand out a token that read that visitor's
whole chat and posted as them, over HTTP and the widget socket. A visitor's conversations now
belong to the credential the server issued to their browser: the id alone opens a new, empty
session. And the widget's edges answer browsers only: no Origin, no answer."""

from __future__ import annotations

import pytest
from beckon_edge.identity import user_hash
from chat_testing import SHOP_A_SPEC, close_code, frame_is, unique

pytestmark = pytest.mark.integration


async def test_knowing_a_visitor_id_reaches_none_of_their_conversation(chat, clients, db) -> None:
    victim = clients.visitor(SHOP_A_SPEC)
    assert (await victim.session(chat.a.url)).status_code == 200
    assert victim.credential is not None
    assert len(victim.credential) >= 43
    started = await victim.start(chat.a.url, text="My address is Main St 1", client_id="v-1")
    assert started.status_code == 201
    cid = started.json()["conversation"]["id"]
    for n in range(2, 6):
        assert (
            await victim.post(chat.a.url, "/messages", {"client_id": f"v-{n}", "text": f"#{n}"})
        ).status_code == 201
    victim_socket = await victim.connect(chat.b.ws_url)
    await victim_socket.recv_until(frame_is("hello"))

    # another browser, from the store's own origin, that knows the id (and guesses at a credential)
    # a near miss differs in its first character: the last of 43 holds only 4 bits of 256,
    # so a fixed last character would be the victim's own credential once in 16 runs
    near_miss = ("B" if victim.credential[0] == "A" else "A") + victim.credential[1:]
    for credential in (None, "x" * 43, near_miss):
        thief = clients.visitor(SHOP_A_SPEC, visitor_id=victim.visitor_id)
        thief.credential = credential
        session = await thief.session(chat.b.url)
        assert session.status_code == 200, session.text
        assert session.json()["conversation"] is None
        assert session.json()["credential"] not in (None, victim.credential, credential)
        answer = await thief.get(chat.a.url, "/messages")
        assert answer.status_code == 200
        assert answer.json()["messages"] == []
        answer = await thief.post(chat.a.url, "/messages", {"client_id": "t-1", "text": "It's me"})
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "no_conversation"

        socket = await thief.connect(chat.a.ws_url)
        hello = await socket.recv_until(frame_is("hello"))
        assert hello["conversation"] is None
        await socket.send({"t": "sync", "after": 0})
        synced = await socket.recv_until(frame_is("messages"))
        assert synced["messages"] == []
        await socket.send({"t": "message", "client_id": "t-2", "text": "It's me"})
        refused = await socket.recv_until(frame_is("error"))
        assert refused["error"] == "no_conversation"
        await socket.send({"t": "seen", "conversation_id": cid, "seq": 5})
        assert (await socket.recv_until(frame_is("error")))["error"] == "unknown_conversation"

    # the victim's conversation is untouched, and a new message of theirs reaches them only
    texts = await db.fetch(
        "SELECT text FROM chat.messages WHERE conversation_id = $1 ORDER BY seq", cid
    )
    assert [row["text"] for row in texts] == ["My address is Main St 1", "#2", "#3", "#4", "#5"]
    await victim.post(chat.a.url, "/messages", {"client_id": "v-6", "text": "still mine"})
    await victim_socket.recv_until(frame_is("message", message__client_id="v-6"))

    # the victim's own browser, with its credential, still has it all
    again = await victim.session(chat.b.url)
    assert again.json()["conversation"]["id"] == cid
    assert "credential" not in again.json()
    assert len((await victim.get(chat.b.url, "/messages")).json()["messages"]) == 6


async def test_the_widget_answers_browsers_only(chat, clients, http) -> None:
    body = {"site_key": SHOP_A_SPEC.site_key, "visitor_id": unique("v")}
    answer = await http.post(f"{chat.a.url}/v1/widget/session", json=body)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "origin_required"

    visitor = clients.visitor(SHOP_A_SPEC)
    assert (await visitor.session(chat.a.url)).status_code == 200
    answer = await http.get(
        f"{chat.a.url}/v1/widget/messages", headers={"Authorization": f"Bearer {visitor.token}"}
    )
    assert answer.status_code == 403
    assert answer.json()["error"] == "origin_required"
    assert await close_code(f"{chat.a.ws_url}/v1/widget/ws?token={visitor.token}", {}) == 4403


async def test_identity_secrets_rotate_and_a_verified_user_reaches_their_chat_anywhere(
    chat, make_site, clients, db
) -> None:
    site = await make_site(teams=("sales",), agents=[("ada", ["sales"], 5)])
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", site.agent("ada").agent_id
        )
        assert await conn.fetchval(
            "SELECT identity_verification FROM chat.sites WHERE site_id = $1", site.site_id
        )  # a new site enforces it
    admin = await clients.agent(chat.a.url, site.agent("ada"))
    first = (await admin.post("/admin/site/identity", {"action": "generate"})).json()["identity"]
    second = (await admin.post("/admin/site/identity", {"action": "generate"})).json()["identity"]
    third = await admin.post("/admin/site/identity", {"action": "generate"})
    assert third.status_code == 409, third.text
    assert third.json()["error"] == "too_many_secrets"
    old, new = first["new_secret"], second["new_secret"]
    assert [s["ends"] for s in second["secrets"]] == [new[-4:], old[-4:]]
    shown = (await admin.get("/admin/site")).json()["site"]["identity"]
    assert old not in str(shown)
    assert new not in str(shown)

    laptop = clients.visitor(site)
    answer = await laptop.session(chat.a.url, user_id="u-7", user_hash=user_hash("u-7", old))
    assert answer.json()["identity"] == "verified"
    cid = (await laptop.start(chat.a.url, text="order 1234?")).json()["conversation"]["id"]

    phone = clients.visitor(site)
    answer = await phone.session(chat.b.url, user_id="u-7", user_hash=user_hash("u-7", new))
    assert answer.json()["conversation"]["id"] == cid
    assert len((await phone.get(chat.b.url, "/messages")).json()["messages"]) == 1

    claimer = clients.visitor(site)
    answer = await claimer.session(chat.a.url, user_id="u-7", user_hash=user_hash("u-8", new))
    assert answer.json()["identity"] == "unverified"
    assert answer.json()["conversation"] is None

    # the old secret removed: its hashes no longer verify
    removed = await admin.post(
        "/admin/site/identity", {"action": "remove", "secret_id": first["secrets"][0]["secret_id"]}
    )
    assert removed.status_code == 200, removed.text
    late = clients.visitor(site)
    answer = await late.session(chat.a.url, user_id="u-7", user_hash=user_hash("u-7", old))
    assert answer.json()["identity"] == "unverified"
    assert answer.json()["conversation"] is None


async def test_the_agent_sees_the_e_mail_and_name_the_store_vouched_for_and_no_claim(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    secret = "v" * 64
    async with db.acquire() as conn:
        await conn.execute(
            """UPDATE chat.sites SET identity_secrets = $2::jsonb WHERE site_id = $1""",
            site.site_id,
            f'[{{"secret_id": "s1", "secret": "{secret}", "created_at": "2025-05-01"}}]',
        )
    ann = await clients.agent(chat.a.url, site.agent("ann"))
    vouched = {"email": "ann.customer@example.fi", "name": "Ann Customer"}

    customer = clients.visitor(site)
    answer = await customer.session(
        chat.a.url, user_id="c-42", user_hash=user_hash("c-42", secret), **vouched
    )
    assert answer.json()["identity"] == "verified"
    await customer.start(chat.a.url, text="Where is my order?")
    for _ in range(2):  # the widget starts on every page: one identify is recorded
        await customer.session(
            chat.b.url, user_id="c-42", user_hash=user_hash("c-42", secret), **vouched
        )
    card = (await ann.get(f"/visitors/{customer.visitor_id}/card")).json()["identity"]
    assert (card["verified"], card["verified_user_id"]) == (True, "c-42")
    assert (card["verified_email"], card["verified_name"]) == (vouched["email"], vouched["name"])
    assert (card["email"], card["name"]) == (vouched["email"], vouched["name"])
    rows = await db.fetchval(
        "SELECT count(*) FROM chat.activity WHERE site_id = $1 AND visitor_id = $2",
        site.site_id,
        customer.visitor_id,
    )
    assert rows == 1

    # the same id, e-mail and name with a forged hash: nothing kept, nothing verified
    forger = clients.visitor(site)
    answer = await forger.session(
        chat.a.url, user_id="c-42", user_hash=user_hash("c-42", "w" * 64), **vouched
    )
    assert answer.json()["identity"] == "unverified"
    await forger.start(chat.a.url, text="Where is my order?")
    card = (await ann.get(f"/visitors/{forger.visitor_id}/card")).json()["identity"]
    assert (card["verified"], card["verified_email"], card["verified_name"]) == (False, None, None)
    assert vouched["email"] not in str(card)
    assert vouched["name"] not in str(card)
    assert not await db.fetchval(
        "SELECT count(*) FROM chat.activity WHERE site_id = $1 AND visitor_id = $2",
        site.site_id,
        forger.visitor_id,
    )

    # an e-mail the store got wrong never stops the widget: the user is still verified
    odd = clients.visitor(site)
    answer = await odd.session(
        chat.a.url,
        user_id="c-43",
        user_hash=user_hash("c-43", secret),
        email="not an address",
        name="Odd\x07 Name",
    )
    assert answer.status_code == 200, answer.text
    await odd.start(chat.a.url, text="hello")
    card = (await ann.get(f"/visitors/{odd.visitor_id}/card")).json()["identity"]
    assert (card["verified_email"], card["verified_name"]) == (None, "Odd Name")
