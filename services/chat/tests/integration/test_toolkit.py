"""The agent's toolkit on real Postgres and Kafka, two instances: private notes never reach
the visitor (socket, history API, chat.events), canned replies and who may manage them,
variables filled from the conversation, a lead mark on chat.events, tags and the Answers
search."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest
from beckon_contracts.chat_events import parse_chat_event
from beckon_contracts.topics import CHAT_EVENTS
from chat_testing import frame_is, read_events

pytestmark = pytest.mark.integration

SECRET_NOTE = "NOTE-only-agents-7f3a: she is a reseller, quote the trade price"
TRANSFER_NOTE = "TRANSFER-NOTE-91c2: wants 12 pairs, call back"


async def _chat_with(chat, clients, site, agent_local="ann", text="hello there"):
    agent = await clients.agent(chat.a.url, site.agent(agent_local), online=True)
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text=text)
    assert started.status_code == 201, started.text
    conversation = started.json()["conversation"]
    assert conversation["status"] == "open"
    return agent, visitor, conversation["id"]


async def _patch(agent, path: str, body):
    return await agent.http.patch(
        f"{agent.base}/v1/console{path}", json=body, headers=agent.headers()
    )


async def _delete(agent, path: str, headers=None):
    return await agent.http.delete(
        f"{agent.base}/v1/console{path}", headers={**agent.headers(), **(headers or {})}
    )


def _mentions(frames, text: str) -> bool:
    return any(text in orjson.dumps(frame).decode() for frame in frames)


async def test_a_note_reaches_agents_on_every_instance_and_never_the_visitor(
    chat, make_site, clients
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5), ("bob", ["sales"], 5)])
    ann, visitor, cid = await _chat_with(chat, clients, site)
    bob = await clients.agent(chat.b.url, site.agent("bob"))
    bob_socket = await bob.connect()  # on the other instance
    await bob_socket.recv_until(frame_is("hello"))
    visitor_sockets = [await visitor.connect(chat.a.ws_url), await visitor.connect(chat.b.ws_url)]
    for socket in visitor_sockets:
        await socket.recv_until(frame_is("hello"))

    answer = await ann.post(f"/conversations/{cid}/notes", {"text": SECRET_NOTE})
    assert answer.status_code == 201, answer.text
    note = answer.json()["note"]
    assert note["text"] == SECRET_NOTE
    assert note["agent"]["name"] == "Ann"
    pushed = await bob_socket.recv_until(frame_is("note", conversation_id=cid))
    assert pushed["note"]["text"] == SECRET_NOTE

    # a transfer is an event of the agents' timeline, its note for them only, never published
    await bob.status("online")
    moved = await ann.post(
        f"/conversations/{cid}/transfer", {"agent_id": bob.agent_id, "note": TRANSFER_NOTE}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["conversation"]["agent_id"] == bob.agent_id
    pushed = await bob_socket.recv_until(frame_is("transfer", conversation_id=cid))
    assert pushed["transfer"]["note"] == TRANSFER_NOTE
    assert (pushed["transfer"]["from"]["name"], pushed["transfer"]["to"]["name"]) == ("Ann", "Bob")
    assert not bob_socket.matching(frame_is("note", note__text=TRANSFER_NOTE))

    # a real reply after both: once the visitor has it, anything earlier has arrived too
    reply = await bob.post(f"/conversations/{cid}/messages", {"text": "Ben here, after the notes"})
    assert reply.status_code == 201, reply.text
    for socket in visitor_sockets:
        await socket.recv_until(frame_is("message", message__text="Ben here, after the notes"))
        await socket.recv_until(
            lambda f: (
                f.get("t") == "conversation"
                and (f["conversation"]["agent"] or {}).get("name") == "Bob"
            )
        )
        assert not _mentions(socket.frames, "NOTE-only-agents-7f3a")
        assert not _mentions(socket.frames, "TRANSFER-NOTE-91c2")

    # the visitor's history and session APIs, from either instance
    for base in (chat.a.url, chat.b.url):
        history = await visitor.get(base, "/messages")
        assert history.status_code == 200, history.text
        assert "NOTE-only-agents-7f3a" not in history.text
        assert "TRANSFER-NOTE-91c2" not in history.text
        assert "Ben here, after the notes" in history.text
        session = await visitor.session(base)
        assert session.status_code == 200, session.text
        assert session.json()["conversation"]["agent"]["name"] == "Bob"
        assert "TRANSFER-NOTE-91c2" not in session.text

    # chat.events (what the notifier mails transcripts from): every record of the conversation
    events = await read_events(
        chat.bootstrap,
        CHAT_EVENTS.name,
        key=cid,
        until=lambda found: any(
            e.type == "message.sent" and e.payload.get("text") == "Ben here, after the notes"
            for e in found
        ),
    )
    kinds = {e.type for e in events}
    assert {"conversation.started", "conversation.transferred", "message.sent"} <= kinds
    for event in events:
        parse_chat_event(orjson.dumps(event.value))
        raw = orjson.dumps(event.value).decode()
        assert "NOTE-only-agents-7f3a" not in raw
        assert "TRANSFER-NOTE-91c2" not in raw
    transferred = next(e for e in events if e.type == "conversation.transferred")
    assert transferred.payload["note"] is None

    # the agents' own load of the conversation: the note, and the transfer with its note
    loaded = (await bob.get(f"/conversations/{cid}")).json()
    assert [n["text"] for n in loaded["notes"]] == [SECRET_NOTE]
    [transfer] = loaded["transfers"]
    assert transfer == pushed["transfer"]
    assert (transfer["target"], transfer["by"]["name"], transfer["note"]) == (
        "agent",
        "Ann",
        TRANSFER_NOTE,
    )
    assert all(m["text"] not in (SECRET_NOTE, TRANSFER_NOTE) for m in loaded["messages"])


async def test_notes_are_scoped_to_the_site_and_validated(chat, make_site, clients) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    other = await make_site(agents=[("olle", ["sales"], 5)])
    ann, _, cid = await _chat_with(chat, clients, site)
    olle = await clients.agent(chat.b.url, other.agent("olle"))
    answer = await olle.post(f"/conversations/{cid}/notes", {"text": "not yours"})
    assert answer.status_code == 404
    assert (await olle.get(f"/conversations/{cid}")).status_code == 404
    answer = await ann.post(f"/conversations/{cid}/notes", {"text": "   "})
    assert answer.status_code == 422
    answer = await ann.post(
        f"/conversations/{cid}/notes", {"text": "x"}, headers={"Origin": "http://evil.test"}
    )
    assert answer.status_code == 403


async def test_canned_replies_personal_for_their_owner_shared_for_admins(
    chat, make_site, clients, db
) -> None:
    site = await make_site(
        agents=[("ann", ["sales"], 5), ("bob", ["sales"], 5)], teams=["sales", "support"]
    )
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", site.agent("ann").agent_id
        )
    ann = await clients.agent(chat.a.url, site.agent("ann"))
    bob = await clients.agent(chat.b.url, site.agent("bob"))

    # the site's defaults are there on first use, once
    first = (await bob.get("/canned")).json()
    assert {r["shortcut"] for r in first["replies"]} >= {"hello", "thanks"}
    assert all(r["scope"] == "site" and not r["editable"] for r in first["replies"])
    assert not first["can_manage_shared"]

    mine = await bob.post(
        "/canned", {"shortcut": "/Sizes", "text": "Hi {visitor_name}, sizes run small."}
    )
    assert mine.status_code == 201, mine.text
    reply = mine.json()["reply"]
    assert (reply["shortcut"], reply["scope"], reply["editable"]) == ("sizes", "personal", True)
    again = await bob.post("/canned", {"shortcut": "sizes", "text": "twice"})
    assert again.status_code == 409
    bad = await bob.post("/canned", {"shortcut": "oops", "text": "Hi {visitor}"})
    assert bad.status_code == 422
    assert "{visitor}" in bad.json()["detail"]

    # an agent cannot create or change shared sets; an admin can
    for scope in ({"scope": "site"}, {"scope": "team", "team": "sales"}):
        refused = await bob.post("/canned", {"shortcut": "teamwide", "text": "x", **scope})
        assert refused.status_code == 403, refused.text
    team = await ann.post(
        "/canned", {"shortcut": "teamwide", "text": "For sales", "scope": "team", "team": "sales"}
    )
    assert team.status_code == 201, team.text
    support = await ann.post(
        "/canned",
        {"shortcut": "supportonly", "text": "For support", "scope": "team", "team": "support"},
    )
    assert support.status_code == 201
    unknown_team = await ann.post(
        "/canned", {"shortcut": "x", "text": "x", "scope": "team", "team": "nope"}
    )
    assert unknown_team.status_code == 422
    team_id = team.json()["reply"]["id"]
    assert (await _patch(bob, f"/canned/{team_id}", {"text": "mine now"})).status_code == 403
    assert (await _delete(bob, f"/canned/{team_id}")).status_code == 403

    # Bob sees his own, his team's and the site's, not support's; Ann never sees Bob's own
    shortcuts = {r["shortcut"] for r in (await bob.get("/canned")).json()["replies"]}
    assert {"sizes", "teamwide", "hello"} <= shortcuts
    assert "supportonly" not in shortcuts
    ann_view = (await ann.get("/canned", params={"manage": "true"})).json()["replies"]
    assert "sizes" not in {r["shortcut"] for r in ann_view}
    assert "supportonly" in {r["shortcut"] for r in ann_view}
    bob_reply_id = reply["id"]
    assert (await _patch(ann, f"/canned/{bob_reply_id}", {"text": "x"})).status_code == 404
    assert (await _delete(ann, f"/canned/{bob_reply_id}")).status_code == 404

    # search: "/siz" finds Bob's first
    found = (await bob.get("/canned", params={"q": "/siz"})).json()["replies"]
    assert found[0]["shortcut"] == "sizes"

    # the owner edits and deletes
    changed = await _patch(
        bob, f"/canned/{bob_reply_id}", {"text": "Sizes run small, {agent_first_name} says"}
    )
    assert changed.status_code == 200
    assert changed.json()["reply"]["text"].endswith("says")
    assert (await _delete(bob, f"/canned/{bob_reply_id}")).status_code == 204
    assert (await _delete(bob, f"/canned/{bob_reply_id}")).status_code == 404
    hello = next(r for r in ann_view if r["shortcut"] == "hello")
    assert (await _delete(ann, f"/canned/{hello['id']}")).status_code == 204
    # a deleted default stays deleted
    assert "hello" not in {r["shortcut"] for r in (await bob.get("/canned")).json()["replies"]}
    cross = await _delete(bob, f"/canned/{team_id}", headers={"Origin": "http://evil.test"})
    assert cross.status_code == 403


async def test_variables_are_filled_from_the_conversation_and_the_agent(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("anna-maria", ["sales"], 5)])
    agent, visitor, cid = await _chat_with(chat, clients, site, agent_local="anna-maria")
    template = "Hi {visitor_name}! {agent_first_name} here. About the {product}: {cart_value}"
    filled = await agent.post(f"/conversations/{cid}/fill", {"text": template})
    assert filled.status_code == 200, filled.text
    # nothing known about the visitor yet: the placeholders vanish, never sent as such
    assert filled.json()["text"] == "Hi! Anna-Maria here. About the:"
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO chat.visitors (site_id, visitor_id, name) VALUES ($1, $2, 'Maija')",
            site.site_id,
            visitor.visitor_id,
        )
        await conn.execute(
            """INSERT INTO chat.activity (event_id, site_id, visitor_id, type, occurred_at, title,
                   value, currency, detail)
               VALUES (gen_random_uuid(), $1, $2, 'product.viewed', now() - interval '1 minute',
                       'x', NULL, NULL, '{"product": {"name": "Trail Runner X"}}'),
                      (gen_random_uuid(), $1, $2, 'cart.updated', now(), NULL, 129.5, 'EUR',
                       '{}')""",
            site.site_id,
            visitor.visitor_id,
        )
    filled = await agent.post(f"/conversations/{cid}/fill", {"text": template})
    assert filled.json()["text"] == "Hi Maija! Anna-Maria here. About the Trail Runner X: €129.50"
    # money follows the site's language (the visitor reads it), not the agent's console
    await agent.post("/me/preferences", {"locale": "fi"})
    context = await agent.get(f"/conversations/{cid}/context")
    assert context.json()["values"]["cart_value"] == "€129.50"
    await db.execute(
        """UPDATE chat.sites SET settings = settings || '{"language": "fi"}' WHERE site_id = $1""",
        site.site_id,
    )
    context = await agent.get(f"/conversations/{cid}/context")
    assert context.json()["values"]["cart_value"] == "129,50\u00a0€"


async def test_a_lead_mark_is_one_per_conversation_and_goes_out_on_chat_events(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    agent, visitor, cid = await _chat_with(chat, clients, site)
    await visitor.post(chat.a.url, "/email", {"email": "maija@example.com"})
    body = {"validation": "qualified", "note": "Wants 12 pairs for the club"}
    first, second = [await agent.post(f"/conversations/{cid}/lead", body) for _ in range(2)]
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["changed"]
    assert not second.json()["changed"]
    assert first.json()["lead"]["id"] == second.json()["lead"]["id"]
    upgraded = await agent.post(f"/conversations/{cid}/lead", {"validation": "ready_to_buy"})
    assert upgraded.json()["changed"]
    assert upgraded.json()["lead"]["id"] == first.json()["lead"]["id"]
    bad = await agent.post(f"/conversations/{cid}/lead", {"validation": "hot"})
    assert bad.status_code == 422
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT validation, note FROM chat.lead_marks WHERE conversation_id = $1::uuid", cid
        )
    assert [(r["validation"], r["note"]) for r in rows] == [("ready_to_buy", None)]
    assert (await agent.get(f"/conversations/{cid}/lead")).json()["lead"][
        "validation"
    ] == "ready_to_buy"

    events = await read_events(
        chat.bootstrap,
        CHAT_EVENTS.name,
        key=cid,
        match=lambda e: e.type == "conversation.lead_marked",
        until=lambda found: len(found) >= 2,
    )
    marks = [parse_chat_event(orjson.dumps(e.value)) for e in events]
    assert [(m.payload.validation, m.payload.note) for m in marks] == [  # type: ignore[union-attr]
        ("qualified", "Wants 12 pairs for the club"),
        ("ready_to_buy", None),
    ]
    payload = events[0].payload
    assert payload["email"] == "maija@example.com"
    assert payload["team"] == "sales"
    assert payload["agent_id"] == agent.agent_id


async def test_tags_with_objections_and_the_answers_search(chat, make_site, clients) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    question = "Is shipping to Finland free?"
    agent, _visitor, cid = await _chat_with(chat, clients, site, text=question)
    tags = (await agent.get("/tags")).json()["tags"]
    assert [t["tag"] for t in tags if t["kind"] == "objection"] == [
        "price",
        "returns",
        "shipping",
        "trust",
    ]
    answer = await agent.post(
        f"/conversations/{cid}/messages", {"text": "Yes, free over 50 euros."}
    )
    assert answer.status_code == 201
    tagged = await agent.post(f"/conversations/{cid}/tags", {"tags": ["shipping", "finland"]})
    assert tagged.status_code == 200, tagged.text
    tags = {t["tag"]: t for t in (await agent.get("/tags")).json()["tags"]}
    assert tags["finland"]["kind"] == "topic"
    assert tags["shipping"]["conversations"] == 1

    found = (await agent.get("/answers", params={"tag": "shipping"})).json()["answers"]
    assert [a["conversation_id"] for a in found] == [cid]
    assert found[0]["pairs"] == [
        {
            "question": "Is shipping to Finland free?",
            "answer": "Yes, free over 50 euros.",
            "agent": "Ann",
        }
    ]
    assert (await agent.get("/answers", params={"q": "50 EUROS"})).json()["answers"][0][
        "conversation_id"
    ] == cid
    assert (await agent.get("/answers", params={"tag": "price"})).json()["answers"] == []
    assert (await agent.get("/answers", params={"q": "100%_"})).json()["answers"] == []
    other = await make_site(agents=[("olle", ["sales"], 5)])
    olle = await clients.agent(chat.b.url, other.agent("olle"))
    assert (await olle.get("/answers", params={"tag": "shipping"})).json()["answers"] == []


async def test_transfer_targets_show_online_agents_with_their_load(
    chat, make_site, clients
) -> None:
    site = await make_site(
        agents=[("ann", ["sales"], 5), ("bob", ["support"], 3)], teams=["sales", "support"]
    )
    ann, _, _ = await _chat_with(chat, clients, site)
    await clients.agent(chat.b.url, site.agent("bob"), online=True)
    targets = (await ann.get("/transfer-targets")).json()
    by_id = {a["id"]: a for a in targets["agents"]}
    assert by_id[ann.agent_id]["open_chats"] == 1
    assert by_id[ann.agent_id]["me"]
    assert by_id[site.agent("bob").agent_id]["teams"] == ["support"]
    assert {t["team"]: t["online"] for t in targets["teams"]} == {"sales": 1, "support": 1}


async def test_a_transfer_gives_the_new_agent_on_another_instance_a_complete_row(
    chat, make_site, clients
) -> None:
    """The receiving console learns of the chat only from its conversation frame
    (no list snapshot of its agent held it), so that frame must carry what the list row shows,
    the last message included; it did not, and the row stayed blank unless a snapshot that
    happened to be in flight filled it."""
    site = await make_site(agents=[("ann", ["sales"], 5), ("bob", ["sales"], 5)])
    ann, _visitor, cid = await _chat_with(chat, clients, site, text="Do these run small?")
    reply = await ann.post(f"/conversations/{cid}/messages", {"text": "They run true to size"})
    assert reply.status_code == 201, reply.text
    bob = await clients.agent(chat.b.url, site.agent("bob"), online=True)
    bob_socket = await bob.connect()
    await bob_socket.recv_until(frame_is("hello"))

    moved = await ann.post(f"/conversations/{cid}/transfer", {"agent_id": bob.agent_id})
    assert moved.status_code == 200, moved.text
    frame = await bob_socket.recv_until(
        lambda f: (
            f.get("t") == "conversation"
            and f["conversation"]["id"] == cid
            and f["conversation"]["agent_id"] == bob.agent_id
        )
    )
    conversation = frame["conversation"]
    assert conversation["status"] == "open"
    assert conversation["last_message"]["text"] == "They run true to size"
    assert conversation["last_message"]["author"] == "agent"
    assert conversation["last_message"]["agent"]["name"] == "Ann"
    assert conversation["last_seq"] == conversation["last_message"]["seq"]


async def test_a_transfer_is_an_event_in_the_timeline_at_its_place_in_time(
    chat, make_site, clients, db
) -> None:
    """ "Ann → Bob", then "Bob → team Support": each between the messages written before and
    after it, without a note or with one; the visitor's history never has them."""
    site = await make_site(
        agents=[("ann", ["sales"], 5), ("bob", ["sales"], 5), ("cy", ["support"], 5)],
        teams=["sales", "support"],
    )
    ann, visitor, cid = await _chat_with(chat, clients, site, text="Do you ship to Åland?")
    bob = await clients.agent(chat.b.url, site.agent("bob"), online=True)
    cy = await clients.agent(chat.b.url, site.agent("cy"), online=True)
    assert (await ann.post(f"/conversations/{cid}/messages", {"text": "Let me ask"})).is_success
    moved = await ann.post(f"/conversations/{cid}/transfer", {"agent_id": bob.agent_id})
    assert moved.status_code == 200, moved.text
    assert moved.json()["transfer"]["note"] is None
    assert (await bob.post(f"/conversations/{cid}/messages", {"text": "Bob here"})).is_success
    onward = await bob.post(
        f"/conversations/{cid}/transfer", {"team": "support", "note": "customs question"}
    )
    assert onward.status_code == 200, onward.text
    assert onward.json()["conversation"]["agent_id"] == cy.agent_id  # support's one agent
    assert (await cy.post(f"/conversations/{cid}/messages", {"text": "Cy, customs"})).is_success

    loaded = (await cy.get(f"/conversations/{cid}")).json()
    first, second = loaded["transfers"]
    assert (first["from"]["name"], first["target"], first["to"]["name"]) == ("Ann", "agent", "Bob")
    assert first["note"] is None
    assert (second["from"]["name"], second["target"], second["to_team"]) == (
        "Bob",
        "team",
        "support",
    )
    assert (second["to"]["name"], second["note"]) == ("Cy", "customs question")
    when = {m["text"]: datetime.fromisoformat(m["created_at"]) for m in loaded["messages"]}
    first_at, second_at = (datetime.fromisoformat(t["created_at"]) for t in (first, second))
    assert when["Let me ask"] <= first_at <= when["Bob here"] <= second_at <= when["Cy, customs"]
    history = await visitor.get(chat.a.url, "/messages")
    assert "customs question" not in history.text
    # who held it when: each stint ended by what moved the chat on, Cy's still open
    stints = await db.fetch(
        """SELECT agent_id, team, how, ended_how, ended_at IS NULL AS held
           FROM chat.assignments WHERE conversation_id = $1 ORDER BY started_at""",
        cid,
    )
    assert [tuple(row) for row in stints] == [
        (ann.agent_id, "sales", "auto", "transfer", False),
        (bob.agent_id, "sales", "transfer", "requeue", False),
        (cy.agent_id, "support", "transfer", None, True),
    ]
    # a transfer to an unknown agent leaves no trace
    refused = await cy.post(f"/conversations/{cid}/transfer", {"agent_id": "nobody-at-all"})
    assert refused.status_code == 404
    assert len((await cy.get(f"/conversations/{cid}")).json()["transfers"]) == 2


async def test_answers_credit_each_reply_to_the_agent_who_wrote_it(
    chat, make_site, clients
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5), ("bob", ["sales"], 5)])
    ann, _visitor, cid = await _chat_with(chat, clients, site, text="Do you ship to Åland?")
    bob = await clients.agent(chat.b.url, site.agent("bob"), online=True)
    assert (await ann.post(f"/conversations/{cid}/messages", {"text": "Let me ask Bob"})).is_success
    assert (await ann.post(f"/conversations/{cid}/transfer", {"agent_id": bob.agent_id})).is_success
    reply = await bob.post(f"/conversations/{cid}/messages", {"text": "Yes, in 3 days"})
    assert reply.status_code == 201, reply.text
    assert (await bob.post(f"/conversations/{cid}/tags", {"tags": ["shipping"]})).is_success
    [found] = (await bob.get("/answers", params={"tag": "shipping"})).json()["answers"]
    assert found["pairs"] == [
        {"question": "Do you ship to Åland?", "answer": "Let me ask Bob", "agent": "Ann"},
        {"question": "Do you ship to Åland?", "answer": "Yes, in 3 days", "agent": "Bob"},
    ]
