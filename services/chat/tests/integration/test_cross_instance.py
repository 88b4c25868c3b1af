"""Two instances, no sticky routing: a visitor held by instance A and an agent held by
instance B hear each other in real time (messages both ways, typing both ways)."""

from __future__ import annotations

from datetime import datetime

import pytest
from chat_testing import frame_is

pytestmark = pytest.mark.integration


async def test_visitor_on_a_and_agent_on_b_chat_both_ways(chat, make_site, clients) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    ann = site.agent("ann")

    agent = await clients.agent(chat.b.url, ann, online=True)
    console = await agent.connect(chat.b.ws_url)
    hello = await console.recv_until(frame_is("hello"))
    assert hello["agent"]["id"] == ann.agent_id
    assert hello["agent"]["status"] == "online"

    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Do you ship to Finland?", client_id="v-1")
    assert started.status_code == 201, started.text
    conversation = started.json()["conversation"]
    cid = conversation["id"]
    assert conversation["status"] == "open"
    assert conversation["agent"]["name"] == ann.name

    widget = await visitor.connect(chat.a.ws_url)
    hello = await widget.recv_until(frame_is("hello"))
    assert hello["conversation"]["id"] == cid
    assert hello["conversation"]["status"] == "open"

    # the first message, stored with the conversation on A, reaches the agent's socket on B
    first = await console.recv_until(frame_is("message", conversation_id=cid, message__seq=1))
    assert first["message"]["author"] == "visitor"
    assert first["message"]["text"] == "Do you ship to Finland?"
    assert first["message"]["client_id"] == "v-1"

    # visitor -> agent over the widget socket on A
    await widget.send({"t": "message", "client_id": "v-2", "text": "And what sizes do you have?"})
    second = await console.recv_until(frame_is("message", conversation_id=cid, message__seq=2))
    assert second["message"]["author"] == "visitor"
    assert second["message"]["text"] == "And what sizes do you have?"
    assert second["message"]["agent"] is None
    echo = await widget.recv_until(frame_is("message", message__seq=2))
    assert echo["message"]["client_id"] == "v-2"

    # agent -> visitor over the console socket on B
    await console.send(
        {"t": "message", "conversation_id": cid, "client_id": "a-1", "text": "Yes, in 2-3 days."}
    )
    reply = await widget.recv_until(frame_is("message", message__seq=3))
    assert reply["message"]["conversation_id"] == cid
    assert reply["message"]["author"] == "agent"
    assert reply["message"]["text"] == "Yes, in 2-3 days."
    assert reply["message"]["agent"]["name"] == ann.name

    # agent -> visitor over HTTP on A (the agent's session is valid on every instance)
    answer = await agent.post(
        f"/conversations/{cid}/messages",
        {"client_id": "a-2", "text": "Sizes 36 to 47."},
        base=chat.a.url,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["message"]["seq"] == 4
    by_http = await widget.recv_until(frame_is("message", message__seq=4))
    assert by_http["message"]["text"] == "Sizes 36 to 47."
    live, answered = by_http["message"], answer.json()["message"]
    assert {k: v for k, v in live.items() if k != "created_at"} == {
        k: v for k, v in answered.items() if k != "created_at"
    }
    # the same instant (the live frame says "...Z", the HTTP answer "...+00:00")
    assert datetime.fromisoformat(live["created_at"]) == datetime.fromisoformat(
        answered["created_at"]
    )

    # the visitor's typing, with its preview, reaches the agent
    await widget.send({"t": "typing", "on": True, "preview": "Great, then I'll ta"})
    typing = await console.recv_until(frame_is("typing", conversation_id=cid))
    assert typing == {
        "t": "typing",
        "conversation_id": cid,
        "who": "visitor",
        "on": True,
        "preview": "Great, then I'll ta",
    }
    await widget.send({"t": "typing", "on": False})
    stopped = await console.recv_until(frame_is("typing", conversation_id=cid))
    assert stopped["on"] is False

    # the agent's typing reaches the visitor
    await console.send({"t": "typing", "conversation_id": cid, "on": True})
    assert await widget.recv_until(frame_is("typing")) == {"t": "typing", "on": True}
    await console.send({"t": "typing", "conversation_id": cid, "on": False})
    assert await widget.recv_until(frame_is("typing")) == {"t": "typing", "on": False}

    # every message reached each side once, in seq order
    seen_by_agent = [
        f["message"]["seq"] for f in console.matching(frame_is("message", conversation_id=cid))
    ]
    seen_by_visitor = [f["message"]["seq"] for f in widget.matching(frame_is("message"))]
    assert seen_by_agent == [1, 2, 3, 4]
    # seq 1 was committed before the socket opened: it arrives live only if its record
    # reached instance A after the socket was registered (a client dedupes by id anyway)
    assert seen_by_visitor in ([2, 3, 4], [1, 2, 3, 4])
