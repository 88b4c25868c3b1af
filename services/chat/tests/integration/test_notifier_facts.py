"""What chat tells the notifier (issue 16), on real processes, Postgres and Kafka: how far the
visitor has seen a conversation (`conversation.seen`, once per growth), the widget's
language on `conversation.started` and `offline.message_left`, and every agent's card on
the compacted `agents.directory` (on each change, and filled at start-up into an empty
topic)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from beckon_contracts.directory import AgentCard, parse_agent_record
from beckon_contracts.topics import AGENTS_DIRECTORY, CHAT_EVENTS
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker
from chat_testing import (
    Event,
    add_site,
    frame_is,
    read_events,
    scratch_database,
    site_spec,
    start_chat,
    stop_chat,
    unique,
)

pytestmark = pytest.mark.integration


def _of_type(kind: str) -> Any:
    return lambda event: event.type == kind


async def test_seen_is_published_once_per_growth_and_never_for_a_repeat(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    agent = await clients.agent(chat.b.url, site.agent("ann"), online=True)
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Do you ship to Oulu?", client_id="v1")
    assert started.status_code == 201, started.text
    cid = started.json()["conversation"]["id"]
    for n in (1, 2):
        answer = await agent.post(
            f"/conversations/{cid}/messages", {"text": f"answer {n}"}, base=chat.b.url
        )
        assert answer.status_code == 201, answer.text  # seqs 2 and 3

    socket = await visitor.connect(chat.a.ws_url)
    await socket.recv_until(frame_is("hello"))
    await socket.send({"t": "seen", "conversation_id": cid, "seq": 2})
    await socket.send({"t": "seen", "conversation_id": cid, "seq": 2})  # a repeat
    await socket.send({"t": "seen", "conversation_id": cid, "seq": 1})  # behind: nothing
    await socket.send({"t": "seen", "conversation_id": cid, "seq": 9})
    refused = await socket.recv_until(frame_is("error"))
    assert refused == {
        "t": "error",
        "error": "seq_beyond_last",
        "detail": "seq 9 is past the conversation's last message (seq 3)",
    }
    await socket.send({"t": "seen", "conversation_id": cid, "seq": "3"})
    malformed = await socket.recv_until(frame_is("error"))
    assert malformed["error"] == "invalid"
    assert "seq must be an integer" in malformed["detail"]
    await socket.send({"t": "seen", "conversation_id": str(UUID(int=7)), "seq": 1})
    assert (await socket.recv_until(frame_is("error")))["error"] == "unknown_conversation"
    # another visitor's report on this conversation is refused alike
    stranger = clients.visitor(site)
    assert (await stranger.session(chat.b.url)).status_code == 200
    other = await stranger.connect(chat.b.ws_url)
    await other.recv_until(frame_is("hello"))
    await other.send({"t": "seen", "conversation_id": cid, "seq": 3})
    assert (await other.recv_until(frame_is("error")))["error"] == "unknown_conversation"
    # the last growth, through the other instance
    again = await visitor.connect(chat.b.ws_url)
    await again.recv_until(frame_is("hello"))
    await again.send({"t": "seen", "conversation_id": cid, "seq": 3})
    await again.send({"t": "seen", "conversation_id": cid, "seq": 3})

    events = await read_events(
        chat.bootstrap,
        CHAT_EVENTS.name,
        key=cid,
        match=_of_type("conversation.seen"),
        until=lambda found: any(e.payload["up_to_seq"] == 3 for e in found),
    )
    # drained to the end: the repeats, the older seq and the refusals published nothing
    assert [e.payload["up_to_seq"] for e in events] == [2, 3]
    assert {e.value["visitor_id"] for e in events} == {visitor.visitor_id}
    assert all(e.payload["conversation_id"] == cid for e in events)
    stored = await db.fetchval(
        "SELECT seen_seq FROM chat.conversations WHERE conversation_id = $1", UUID(cid)
    )
    assert stored == 3


async def test_the_widgets_language_rides_on_started_and_offline_messages(
    chat: Any, make_site: Any, clients: Any
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    wrong = await visitor.start(chat.a.url, language="sv")
    assert wrong.status_code == 422
    assert wrong.json()["detail"] == "language: Input should be 'en' or 'fi'"
    started = await visitor.start(chat.a.url, language="fi")
    assert started.status_code == 201, started.text
    cid = started.json()["conversation"]["id"]

    writer = clients.visitor(site)
    assert (await writer.session(chat.b.url)).status_code == 200
    left = await writer.post(
        chat.b.url,
        "/offline",
        {"email": "vera@example.com", "text": "Call me back", "language": "en"},
    )
    assert left.status_code == 201, left.text
    offline_id = left.json()["conversation"]["id"]
    unsaid = clients.visitor(site)  # an older widget says nothing: no language
    assert (await unsaid.session(chat.a.url)).status_code == 200
    plain = await unsaid.post(chat.a.url, "/offline", {"email": "x@example.com", "text": "Hi"})
    assert plain.status_code == 201, plain.text
    plain_id = plain.json()["conversation"]["id"]

    wanted = {cid, offline_id, plain_id}

    def kinds(found: list[Event]) -> dict[str, Event]:
        return {
            e.key: e
            for e in found
            if e.key in wanted and e.type in ("conversation.started", "offline.message_left")
        }

    events = kinds(
        await read_events(
            chat.bootstrap,
            CHAT_EVENTS.name,
            match=lambda e: e.key in wanted,
            until=lambda found: len(kinds(found)) == 3,
        )
    )
    assert (events[cid].type, events[cid].payload["language"]) == ("conversation.started", "fi")
    assert (events[offline_id].type, events[offline_id].payload["language"]) == (
        "offline.message_left",
        "en",
    )
    assert events[plain_id].payload["language"] is None


def _cards(events: list[Event]) -> list[AgentCard]:
    return [parse_agent_record(orjson.dumps(e.value)) for e in events]


async def _cards_until(bootstrap: str, key: str, check: Any) -> list[AgentCard]:
    events = await read_events(
        bootstrap,
        AGENTS_DIRECTORY.name,
        key=key,
        until=lambda found: any(check(card) for card in _cards(found)),
    )
    return _cards(events)


async def test_an_agents_card_is_listed_on_create_change_and_deactivation(
    chat: Any, make_site: Any, clients: Any, db: Any
) -> None:
    site = await make_site(
        teams=("sales", "vip"), agents=[("ada", ["sales"], 5), ("ben", ["sales"], 3)]
    )
    ada, ben = site.agent("ada"), site.agent("ben")
    # the seed listed both (version 1); ada becomes an admin behind chat's back
    seeded = await _cards_until(chat.bootstrap, f"{site.site_id}:{ben.agent_id}", bool)
    assert [
        (c.version, c.name, c.email, c.role, c.teams, c.language, c.active) for c in seeded
    ] == [(1, "Ben", ben.email, "agent", ["sales"], "en", True)]
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE chat.agents SET role = 'admin' WHERE agent_id = $1", ada.agent_id
        )
    admin = await clients.agent(chat.a.url, ada)

    # her own language: relisted, with what changed behind chat's back too
    assert (await admin.post("/me/preferences", {"locale": "fi"})).status_code == 200
    own = await _cards_until(
        chat.bootstrap, f"{site.site_id}:{ada.agent_id}", lambda c: c.language == "fi"
    )
    assert [(c.version, c.role, c.language) for c in own] == [
        (1, "agent", "en"),
        (2, "admin", "fi"),
    ]

    invited = await admin.post(
        "/admin/agents",
        {"name": "Dee", "email": "dee@example.org", "role": "agent", "teams": ["sales"]},
    )
    assert invited.status_code == 201, invited.text
    dee = invited.json()["agent"]["id"]
    key = f"{site.site_id}:{dee}"
    created = await _cards_until(chat.bootstrap, key, lambda c: c.version == 1)
    assert [(c.site_id, c.agent_id, c.email, c.name, c.teams, c.active) for c in created] == [
        (site.site_id, dee, "dee@example.org", "Dee", ["sales"], True)
    ]

    # a limit is not on the card: nothing is listed; a name and teams in one change: once
    assert (await admin.post(f"/admin/agents/{dee}", {"max_chats": 2})).status_code == 200
    changed = await admin.post(
        f"/admin/agents/{dee}", {"name": "Deirdre", "teams": ["vip"], "role": "admin"}
    )
    assert changed.status_code == 200, changed.text
    joined = await admin.post("/admin/teams/sales/members", {"agent_id": dee})
    assert joined.status_code == 200, joined.text
    gone = await admin.post(f"/admin/agents/{dee}/deactivate")
    assert gone.status_code == 200, gone.text

    cards = await _cards_until(chat.bootstrap, key, lambda c: not c.active)
    assert [(c.version, c.name, c.role, c.teams, c.active) for c in cards] == [
        (1, "Dee", "agent", ["sales"], True),
        (2, "Deirdre", "admin", ["vip"], True),
        (3, "Deirdre", "admin", ["sales", "vip"], True),
        (4, "Deirdre", "admin", [], False),
    ]
    stored = await db.fetchval("SELECT directory_version FROM chat.agents WHERE agent_id = $1", dee)
    assert stored == 4


async def test_a_starting_instance_fills_an_empty_directory_topic(
    chat: Any, tmp_path: Path
) -> None:
    """A broker that forgot everything (the dev stack's, a new cluster) and agents whose
    records went to the old one: the next chat instance to start lists every agent again,
    and an agent changed behind chat's back (SQL) is listed under a new version."""
    broker = await asyncio.to_thread(KafkaBroker(tmp_path / "kafka").start)
    instance = None
    try:
        await wait_until_serving(broker.bootstrap, timeout_s=60)
        async with scratch_database(chat.server_url, "chat_directory") as (url, pool):
            site = await add_site(
                url, site_spec(unique("site"), agents=[("ann", ["sales"], 5), ("bo", [], 2)])
            )
            ann, bo = site.agent("ann"), site.agent("bo")
            # the seed's records went to the broker that forgot them
            await pool.execute("UPDATE chat.outbox SET published_at = now()")
            await pool.execute(
                "UPDATE chat.agents SET name = 'Annikki' WHERE agent_id = $1", ann.agent_id
            )
            instance = await start_chat(
                "directory-fill",
                database_url=url,
                bootstrap=broker.bootstrap,
                log_dir=tmp_path,
                CHAT_CREATE_TOPICS="true",
            )
            wanted = {f"{site.site_id}:{a.agent_id}" for a in (ann, bo)}
            events = await read_events(
                broker.bootstrap,
                AGENTS_DIRECTORY.name,
                until=lambda found: {e.key for e in found} >= wanted,
            )
            cards = {f"{c.site_id}:{c.agent_id}": c for c in _cards(events)}
            assert set(cards) == wanted
            listed_ann = cards[f"{site.site_id}:{ann.agent_id}"]
            assert (listed_ann.version, listed_ann.name, listed_ann.teams) == (
                2,
                "Annikki",
                ["sales"],
            )
            listed_bo = cards[f"{site.site_id}:{bo.agent_id}"]
            assert (listed_bo.version, listed_bo.name, listed_bo.teams) == (1, "Bo", [])
            versions = dict(await pool.fetch("SELECT agent_id, directory_version FROM chat.agents"))
            assert versions == {ann.agent_id: 2, bo.agent_id: 1}
    finally:
        if instance is not None:
            stop_chat(instance)
        await asyncio.to_thread(broker.stop)
