"""Replies by e-mail on the real broker and Postgres: a `conversation.add_email_reply` command
on `chat.inbound` becomes the visitor's message, once even when published twice, on the
agent's socket (another instance's) and the visitor's widget, in both histories and on
`chat.events` with `channel: "email"`; a reply to a closed conversation puts it back in its
team's hands; commands chat cannot apply, and junk, go to `chat.inbound.dlq` with the reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.ids import uuid7
from beckon_contracts.inbound import AddEmailReply, command_key
from beckon_contracts.topics import CHAT_EVENTS, CHAT_INBOUND, CHAT_INBOUND_DLQ
from chat_testing import (
    GROUP_FORMED_TIMEOUT_S,
    frame_is,
    produce,
    read_events,
    unique,
)

pytestmark = pytest.mark.integration

PHOTO = {"filename": "tent-pole.jpg", "content_type": "image/jpeg", "size": 245_760}


def email_reply(site_id: str, conversation_id: UUID | str, text: str, **payload: Any) -> bytes:
    now = datetime.now(UTC)
    return (
        AddEmailReply.model_validate(
            {
                "event_id": uuid7(),
                "occurred_at": now,
                "site_id": site_id,
                "payload": {
                    "conversation_id": conversation_id,
                    "text": text,
                    "from_email": "visitor@example.com",
                    "subject": "Re: your chat with Ridgeline",
                    "received_at": now,
                    **payload,
                },
            }
        )
        .model_dump_json()
        .encode()
    )


async def publish(bootstrap: str, conversation_id: UUID | str, *values: bytes) -> None:
    await produce(bootstrap, CHAT_INBOUND.name, command_key(UUID(str(conversation_id))), *values)


async def test_an_emailed_reply_reaches_the_agent_and_the_visitor_once_even_published_twice(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    agent = await clients.agent(chat.b.url, site.agent("ann"), online=True)
    console = await agent.connect(chat.b.ws_url)  # the agent's socket lives on B
    await console.recv_until(frame_is("hello"))
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Do you have spare tent poles?")
    assert started.status_code == 201, started.text
    cid = started.json()["conversation"]["id"]
    widget = await visitor.connect(chat.a.ws_url)
    await widget.recv_until(frame_is("hello"))

    reply = email_reply(site.site_id, cid, "Yes please, the 3.5 m one.", attachments=[PHOTO])
    marker = email_reply(site.site_id, cid, "And a repair kit.")
    # twice, then another command on the same key (same partition, so handled after the
    # repeat): once the marker is on the socket, a second copy of the reply would be too
    await publish(chat.bootstrap, cid, reply, reply, marker)

    live = await console.recv_until(
        frame_is("message", conversation_id=cid, message__seq=2), timeout=GROUP_FORMED_TIMEOUT_S
    )
    message = live["message"]
    assert message["author"] == "visitor"
    assert message["agent"] is None
    assert message["text"] == "Yes please, the 3.5 m one."
    assert message["channel"] == "email"
    assert message["attachments"] == [PHOTO]
    seen = await widget.recv_until(frame_is("message", message__seq=2))
    assert (seen["message"]["author"], seen["message"]["channel"]) == ("visitor", "email")
    after = await console.recv_until(frame_is("message", conversation_id=cid, message__seq=3))
    assert after["message"]["text"] == "And a repair kit."
    assert after["message"]["attachments"] == []
    emailed = [
        frame
        for frame in console.matching(frame_is("message", conversation_id=cid))
        if frame["message"]["channel"] == "email"
    ]
    assert [frame["message"]["seq"] for frame in emailed] == [2, 3]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.messages WHERE conversation_id = $1", UUID(cid)
        )
        == 3
    )

    # the histories carry the channel and the notes
    history = await agent.get(f"/conversations/{cid}", base=chat.a.url)
    assert history.status_code == 200, history.text
    stored = history.json()["messages"]
    assert [(m["channel"], m["author"]) for m in stored] == [
        ("chat", "visitor"),
        ("email", "visitor"),
        ("email", "visitor"),
    ]
    assert stored[1] == {**message, "created_at": stored[1]["created_at"]}
    widget_history = await visitor.get(chat.b.url, "/messages?after=1")
    assert widget_history.status_code == 200, widget_history.text
    assert [(m["seq"], m["channel"]) for m in widget_history.json()["messages"]] == [
        (2, "email"),
        (3, "email"),
    ]

    # chat.events says so, once
    events = await read_events(
        chat.bootstrap,
        CHAT_EVENTS.name,
        key=cid,
        match=lambda e: e.type == "message.sent" and e.payload["seq"] >= 2,
        until=lambda found: len(found) >= 2,
    )
    assert sorted((e.payload["seq"], e.payload["channel"]) for e in events) == [
        (2, "email"),
        (3, "email"),
    ]


async def test_a_reply_to_a_closed_conversation_puts_it_back_in_the_teams_hands(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    agent = await clients.agent(chat.a.url, site.agent("ann"), online=True)
    console = await agent.connect(chat.a.ws_url)
    await console.recv_until(frame_is("hello"))
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.b.url)).status_code == 200
    started = await visitor.start(chat.b.url, text="Is the stove in stock?")
    cid = started.json()["conversation"]["id"]
    closed = await agent.post(f"/conversations/{cid}/close")
    assert closed.status_code == 200, closed.text
    await console.recv_until(
        frame_is("conversation", conversation__id=cid, conversation__status="closed")
    )

    await publish(chat.bootstrap, cid, email_reply(site.site_id, cid, "One more question!"))
    message = await console.recv_until(
        frame_is("message", conversation_id=cid, message__seq=2), timeout=GROUP_FORMED_TIMEOUT_S
    )
    assert message["message"]["channel"] == "email"
    # back in the queue, then with Ann (online with room), as a new chat would be
    await console.recv_until(
        frame_is("conversation", conversation__id=cid, conversation__status="open")
    )
    row = await db.fetchrow(
        "SELECT status, agent_id, closed_at FROM chat.conversations WHERE conversation_id = $1",
        UUID(cid),
    )
    assert tuple(row) == ("open", site.agent("ann").agent_id, None)
    events = await read_events(
        chat.bootstrap,
        CHAT_EVENTS.name,
        key=cid,
        match=lambda e: e.type in ("conversation.transferred", "conversation.assigned"),
        until=lambda found: (
            {e.type for e in found} == {"conversation.transferred", "conversation.assigned"}
        ),
    )
    moved = next(e for e in events if e.type == "conversation.transferred").payload
    assert (moved["to_agent_id"], moved["to_team"]) == (None, "sales")

    # closed again, while the visitor chats in a new one: the old one keeps the reply, closed
    assert (await agent.post(f"/conversations/{cid}/close")).status_code == 200
    again = await visitor.start(chat.b.url, text="New question")
    assert again.status_code == 201, again.text
    await publish(chat.bootstrap, cid, email_reply(site.site_id, cid, "About the stove again"))
    late = await console.recv_until(frame_is("message", conversation_id=cid, message__seq=3))
    assert late["message"]["channel"] == "email"
    assert (
        await db.fetchval(
            "SELECT status FROM chat.conversations WHERE conversation_id = $1", UUID(cid)
        )
        == "closed"
    )


async def test_commands_chat_cannot_apply_and_junk_are_dead_lettered_with_the_reason(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    other = await make_site()
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Hello")
    cid = started.json()["conversation"]["id"]
    nowhere = str(uuid7())
    junk_marker = unique("junk")

    await publish(chat.bootstrap, nowhere, email_reply(site.site_id, nowhere, "Who am I?"))
    await publish(chat.bootstrap, cid, email_reply(other.site_id, cid, "Not your site"))
    await produce(chat.bootstrap, CHAT_INBOUND.name, cid.encode(), f"{junk_marker} {{".encode())

    def ours(event: Any) -> bool:
        raw = str(event.payload.get("raw"))
        return nowhere in raw or (cid in raw and other.site_id in raw) or junk_marker in raw

    found = await read_events(
        chat.bootstrap,
        CHAT_INBOUND_DLQ.name,
        match=ours,
        until=lambda letters: len(letters) >= 3,
        timeout_s=GROUP_FORMED_TIMEOUT_S,
    )
    letters = [DeadLettered.model_validate(event.value) for event in found]
    # drained to the end: one letter for each of this deployment's sites' commands (junk names
    # no site: any other chat deployment on the session's broker letters it too)
    [unknown_letter] = [x for x in letters if nowhere in x.payload.raw]
    [wrong_letter] = [x for x in letters if other.site_id in x.payload.raw]
    junk_letter = next(x for x in letters if junk_marker in x.payload.raw)
    by_raw = {"unknown": unknown_letter, "wrong_site": wrong_letter, "junk": junk_letter}
    unknown = by_raw["unknown"].payload
    assert unknown.reason == "processing_failed"
    assert unknown.detail.startswith("unknown_conversation: ")
    assert [(e.loc, e.type) for e in unknown.errors] == [
        ("payload.conversation_id", "unknown_conversation")
    ]
    assert by_raw["unknown"].site_id == site.site_id
    wrong = by_raw["wrong_site"].payload
    assert wrong.reason == "processing_failed"
    assert wrong.detail.startswith("wrong_site: ")
    junk = by_raw["junk"].payload
    assert junk.reason == "malformed_json"
    assert junk.source == f"chat:{CHAT_INBOUND.name}"
    assert junk.topic == CHAT_INBOUND.name
    # nothing was added to the conversation another site's command named
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.messages WHERE conversation_id = $1", UUID(cid)
        )
        == 1
    )
