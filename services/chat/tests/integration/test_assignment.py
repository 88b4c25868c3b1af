"""Race-free assignment across two instances: concurrent starts never put an agent above their
limit, the rest wait in arrival order, a close hands the oldest queued conversation on, and
one visitor's concurrent "start chat" calls create exactly one conversation."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from chat_testing import frame_is

pytestmark = pytest.mark.integration


async def _conversations(db, site_id: str) -> list:
    return await db.fetch(
        """SELECT conversation_id, visitor_id, status, agent_id, created_at
           FROM chat.conversations WHERE site_id = $1 ORDER BY created_at, conversation_id""",
        site_id,
    )


async def test_concurrent_starts_fill_agents_to_their_limit_and_queue_the_rest(
    chat, make_site, clients, db
) -> None:
    site = await make_site(
        agents=[("ann", ["sales"], 2), ("ben", ["sales"], 2), ("cid", ["sales"], 2)]
    )
    agents = {
        local: await clients.agent(chat.instances[i % 2].url, site.agent(local), online=True)
        for i, local in enumerate(("ann", "ben", "cid"))
    }
    visitors = [clients.visitor(site) for _ in range(12)]
    bases = [chat.instances[i % 2].url for i in range(12)]  # half through A, half through B
    sessions = await asyncio.gather(*(v.session(b) for v, b in zip(visitors, bases, strict=True)))
    assert [s.status_code for s in sessions] == [200] * 12

    answers = await asyncio.gather(
        *(
            v.start(b, text=f"Hello from visitor {i}", client_id=f"hello-{i}")
            for i, (v, b) in enumerate(zip(visitors, bases, strict=True))
        )
    )
    assert [a.status_code for a in answers] == [201] * 12, [a.text for a in answers]
    assert len({a.json()["conversation"]["id"] for a in answers}) == 12

    rows = await _conversations(db, site.site_id)
    assert len(rows) == 12
    opened = [r for r in rows if r["status"] == "open"]
    queued = [r for r in rows if r["status"] == "queued"]
    assert len(opened) == 6
    assert len(queued) == 6
    loads = Counter(r["agent_id"] for r in opened)
    assert loads == {site.agent(local).agent_id: 2 for local in ("ann", "ben", "cid")}
    assert all(r["agent_id"] is None for r in queued)

    # places 1..6 in arrival order, as the console's queue and each waiting visitor see them
    queue = (await agents["ann"].get("/conversations?scope=queue")).json()["conversations"]
    assert [c["id"] for c in queue] == [str(r["conversation_id"]) for r in queued]
    assert [c["queue_position"] for c in queue] == [1, 2, 3, 4, 5, 6]
    by_visitor = {v.visitor_id: v for v in visitors}
    for place, row in enumerate(queued, start=1):
        again = await by_visitor[row["visitor_id"]].session(chat.b.url)
        assert again.json()["conversation"]["id"] == str(row["conversation_id"])
        assert again.json()["conversation"]["queue_position"] == place

    # the two oldest waiting visitors are connected (to A) when an agent frees a slot (on B)
    first, second = by_visitor[queued[0]["visitor_id"]], by_visitor[queued[1]["visitor_id"]]
    first_socket = await first.connect(chat.a.ws_url)
    second_socket = await second.connect(chat.a.ws_url)
    assert (await first_socket.recv_until(frame_is("hello")))["conversation"]["queue_position"] == 1
    assert (await second_socket.recv_until(frame_is("hello")))["conversation"][
        "queue_position"
    ] == 2

    ann = site.agent("ann")
    mine = [r for r in opened if r["agent_id"] == ann.agent_id]
    closed = await agents["ann"].post(
        f"/conversations/{mine[0]['conversation_id']}/close", base=chat.b.url
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["conversation"]["status"] == "closed"

    after = {r["conversation_id"]: r for r in await _conversations(db, site.site_id)}
    assert after[mine[0]["conversation_id"]]["status"] == "closed"
    oldest = after[queued[0]["conversation_id"]]
    assert oldest["status"] == "open"
    assert oldest["agent_id"] == ann.agent_id
    still_queued = [r for r in after.values() if r["status"] == "queued"]
    assert {r["conversation_id"] for r in still_queued} == {
        r["conversation_id"] for r in queued[1:]
    }
    loads = Counter(r["agent_id"] for r in after.values() if r["status"] == "open")
    assert loads == {site.agent(local).agent_id: 2 for local in ("ann", "ben", "cid")}

    assigned = await first_socket.recv_until(frame_is("conversation", conversation__status="open"))
    assert assigned["conversation"]["id"] == str(queued[0]["conversation_id"])
    assert assigned["conversation"]["agent"]["name"] == ann.name
    moved_up = await second_socket.recv_until(
        frame_is("conversation", conversation__queue_position=1)
    )
    assert moved_up["conversation"]["status"] == "queued"

    queue = (await agents["ben"].get("/conversations?scope=queue")).json()["conversations"]
    assert [c["id"] for c in queue] == [str(r["conversation_id"]) for r in queued[1:]]
    assert [c["queue_position"] for c in queue] == [1, 2, 3, 4, 5]

    # an agent at their limit cannot pick up a waiting conversation by hand
    target = queued[1]["conversation_id"]
    refused = await agents["ben"].post(f"/conversations/{target}/pickup", base=chat.a.url)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "at_limit"
    row = await db.fetchrow(
        "SELECT status, agent_id FROM chat.conversations WHERE conversation_id = $1", target
    )
    assert (row["status"], row["agent_id"]) == ("queued", None)
    taken = await agents["cid"].post(
        f"/conversations/{queued[0]['conversation_id']}/pickup", base=chat.b.url
    )
    assert taken.status_code == 409
    assert taken.json()["error"] == "not_queued"


async def test_fifty_concurrent_starts_by_one_visitor_create_one_conversation(
    chat, make_site, clients, http, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    headers = {"Authorization": f"Bearer {visitor.token}", "Origin": site.origin}

    answers = await asyncio.gather(
        *(
            http.post(
                f"{chat.instances[i % 2].url}/v1/widget/conversations",
                json={"text": "Is this in stock?", "client_id": "first"},
                headers=headers,
            )
            for i in range(50)
        )
    )
    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 200: 49}, [a.text for a in answers if a.status_code >= 300]
    ids = {a.json()["conversation"]["id"] for a in answers}
    assert len(ids) == 1

    count = await db.fetchval(
        "SELECT count(*) FROM chat.conversations WHERE site_id = $1 AND visitor_id = $2",
        site.site_id,
        visitor.visitor_id,
    )
    assert count == 1
    (conversation_id,) = ids
    messages = await db.fetchval(
        "SELECT count(*) FROM chat.messages WHERE conversation_id = $1::uuid", conversation_id
    )
    assert messages == 1
    started = await db.fetchval(
        """SELECT count(*) FROM chat.outbox WHERE key = $1
           AND convert_from(value, 'UTF8')::jsonb ->> 'type' = 'conversation.started'""",
        conversation_id.encode(),
    )
    assert started == 1


async def test_transfer_to_an_agent_in_no_team_is_refused_or_done_not_a_500(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5), ("lone", [], 5)])
    ann = await clients.agent(chat.a.url, site.agent("ann"), online=True)
    lone = await clients.agent(chat.b.url, site.agent("lone"), online=True)
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Can someone else help?")
    cid = started.json()["conversation"]["id"]

    answer = await ann.post(f"/conversations/{cid}/transfer", {"agent_id": lone.agent_id})
    assert answer.status_code in (200, 409, 422), answer.text
    row = await db.fetchrow(
        "SELECT status, agent_id FROM chat.conversations WHERE conversation_id = $1::uuid", cid
    )
    if answer.status_code == 200:
        assert (row["status"], row["agent_id"]) == ("open", lone.agent_id)
    else:
        assert "error" in answer.json()
        assert (row["status"], row["agent_id"]) == ("open", ann.agent_id)
