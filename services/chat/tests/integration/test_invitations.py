"""Proactive invitations from `chat.invitations`: delivered once to the visitor's socket on
whichever instance holds it, stored once, answered through the widget (published on
`chat.events`), its words opening the conversation it starts (for the visitor and the
agent alike), and malformed records dead-lettered with the offending field named."""

from __future__ import annotations

import contextlib
from uuid import UUID

import orjson
import pytest
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.topics import CHAT_EVENTS, CHAT_INVITATIONS, CHAT_INVITATIONS_DLQ
from chat.adapters.bus import Bus, InvitationConsumer
from chat.conversations import service as conversations
from chat_testing import (
    GROUP_FORMED_TIMEOUT_S,
    add_site,
    eventually,
    frame_is,
    invitation_record,
    produce,
    produce_invitation,
    read_events,
    relayless_uow,
    scratch_database,
    site_spec,
    start_chat,
    stop_chat,
    unique,
)

pytestmark = pytest.mark.integration


async def test_invitation_reaches_the_socket_once_and_its_answers_are_published(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    widget = await visitor.connect(chat.b.ws_url)  # the socket lives on B
    hello = await widget.recv_until(frame_is("hello"))
    assert hello["conversation"] is None
    assert hello["invitations"] == []

    record = invitation_record(
        site.site_id, visitor.visitor_id, message="Need a hand choosing a size?"
    )
    invitation_id = str(record.payload.invitation_id)
    await produce_invitation(chat.bootstrap, record)
    frame = await widget.recv_until(
        frame_is("invitation", invitation__id=invitation_id), timeout=GROUP_FORMED_TIMEOUT_S
    )
    shown = frame["invitation"]
    assert shown["message"] == "Need a hand choosing a size?"
    assert shown["agent"] == {"name": "Anna", "avatar_url": "https://cdn.test/a.png"}
    assert shown["team"] == "sales"
    assert shown["rule_id"] == "size-help"
    assert shown["expires_at"] is not None

    # the same record again, then another invitation with the same key: same partition, so
    # it is handled after the repeat; once it arrives, a second delivery would have too
    await produce_invitation(chat.bootstrap, record)
    marker = invitation_record(site.site_id, visitor.visitor_id, message="Anything else?")
    await produce_invitation(chat.bootstrap, marker)
    await widget.recv_until(
        frame_is("invitation", invitation__id=str(marker.payload.invitation_id)),
        timeout=GROUP_FORMED_TIMEOUT_S,
    )
    assert len(widget.matching(frame_is("invitation", invitation__id=invitation_id))) == 1
    stored = await db.fetch(
        "SELECT status, team, rule_id FROM chat.invitations WHERE invitation_id = $1",
        UUID(invitation_id),
    )
    assert [tuple(r) for r in stored] == [("issued", "sales", "size-help")]

    # a socket opened later (on A) gets the pending invitations in its hello
    later = await visitor.connect(chat.a.ws_url)
    hello = await later.recv_until(frame_is("hello"))
    assert {i["id"] for i in hello["invitations"]} == {
        invitation_id,
        str(marker.payload.invitation_id),
    }

    for outcome in ("shown", "accepted"):
        answer = await visitor.post(chat.a.url, f"/invitations/{invitation_id}/{outcome}")
        assert answer.status_code == 204, answer.text
    assert (
        await db.fetchval(
            "SELECT status FROM chat.invitations WHERE invitation_id = $1", UUID(invitation_id)
        )
        == "accepted"
    )
    # accepting does not start the conversation
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.conversations WHERE site_id = $1 AND visitor_id = $2",
            site.site_id,
            visitor.visitor_id,
        )
        == 0
    )

    def answered(events) -> bool:
        kinds = {e.type for e in events}
        return {"invitation.shown", "invitation.accepted"} <= kinds

    events = await read_events(
        chat.bootstrap,
        CHAT_EVENTS.name,
        key=f"{site.site_id}:{visitor.visitor_id}",
        match=lambda e: e.payload.get("invitation_id") == invitation_id,
        until=answered,
    )
    kinds = [e.type for e in events]
    assert kinds.index("invitation.shown") < kinds.index("invitation.accepted")
    for event in events:
        assert event.value["site_id"] == site.site_id
        assert event.value["visitor_id"] == visitor.visitor_id
        assert event.payload["rule_id"] == "size-help"
        assert event.payload["team"] == "sales"

    # starting with the invitation ties the conversation to it
    started = await visitor.start(chat.b.url, invitation_id=invitation_id)
    assert started.status_code == 201, started.text
    row = await db.fetchrow(
        "SELECT invitation_id, rule_id, team FROM chat.conversations WHERE conversation_id = $1",
        UUID(started.json()["conversation"]["id"]),
    )
    assert (str(row["invitation_id"]), row["rule_id"], row["team"]) == (
        invitation_id,
        "size-help",
        "sales",
    )

    # the invitation's words open the conversation: the visitor's widget shows them as the
    # agent's first (from the server, so on any device), the console with the rule's name
    said = {"text": "Need a hand choosing a size?", "agent": shown["agent"]}
    assert started.json()["conversation"]["opening"] == said
    session = await visitor.session(chat.a.url)
    assert session.json()["conversation"]["opening"] == said
    again = await visitor.connect(chat.a.ws_url)
    assert (await again.recv_until(frame_is("hello")))["conversation"]["opening"] == said
    ann = await clients.agent(chat.a.url, site.agent("ann"))
    loaded = await ann.get(f"/conversations/{started.json()['conversation']['id']}")
    assert loaded.status_code == 200, loaded.text
    opening = loaded.json()["opening"]
    assert {k: opening[k] for k in ("text", "agent", "rule_id", "rule_name", "personal")} == {
        **said,
        "rule_id": "size-help",
        "rule_name": "Size help",
        "personal": False,
    }
    assert opening["invitation_id"] == invitation_id
    # accepting another invitation while that chat is live answers with the live one, whose
    # opening stays its own (the widget shows what the agent sees, not the newer words)
    other = str(marker.payload.invitation_id)
    same = await visitor.start(chat.a.url, invitation_id=other)
    assert same.status_code == 200, same.text
    assert same.json()["conversation"]["opening"] == said


async def test_malformed_invitation_is_dead_lettered_naming_the_field(chat, make_site, db) -> None:
    site = await make_site()
    visitor_id = unique("v")
    value = invitation_record(site.site_id, visitor_id).model_dump(mode="json")
    del value["payload"]["team"]
    raw = orjson.dumps(value)
    await produce(
        chat.bootstrap, CHAT_INVITATIONS.name, f"{site.site_id}:{visitor_id}".encode(), raw
    )

    letters = await read_events(
        chat.bootstrap,
        CHAT_INVITATIONS_DLQ.name,
        match=lambda e: visitor_id in str(e.payload.get("raw")),
        until=lambda found: len(found) >= 1,
        timeout_s=GROUP_FORMED_TIMEOUT_S,
    )
    letter = DeadLettered.model_validate(letters[0].value)
    assert letter.site_id == site.site_id
    assert letter.payload.source == CHAT_INVITATIONS.name
    assert letter.payload.reason == "schema_invalid"
    assert orjson.loads(letter.payload.raw) == value
    missing = [e for e in letter.payload.errors if e.loc.endswith("payload.team")]
    assert missing, letter.payload.errors
    assert missing[0].type == "missing"
    # the consumer dead-letters after deciding, so nothing was stored for it
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.invitations WHERE site_id = $1 AND visitor_id = $2",
            site.site_id,
            visitor_id,
        )
        == 0
    )


async def test_an_invitation_postgres_cannot_store_does_not_stop_the_consumer(chat) -> None:
    """The service's own consumer, in-process with a group of its own, on a database that only
    it serves (the shared instances do not know the site, so they skip these records)."""
    async with scratch_database(chat.server_url, "chat_poison") as (url, pool):
        site = await add_site(url, site_spec(unique("site")))
        uow = relayless_uow(pool)
        bus = Bus(chat.bootstrap, "chat-poison-test", idempotent=False)
        await bus.start()
        consumer = InvitationConsumer(
            chat.bootstrap,
            "chat-poison-test",
            record=lambda values: conversations.record_invitation(uow=uow, values=values),
            bus=bus,
            group_id=unique("chat-poison-test"),
        )
        try:
            visitor_id = unique("v")
            poison = invitation_record(site.site_id, visitor_id, message="Hi\x00there")
            after = invitation_record(site.site_id, visitor_id, message="Still looking?")
            await produce_invitation(chat.bootstrap, poison)
            await produce_invitation(chat.bootstrap, after)
            await consumer.start()
            task = consumer._task
            assert task is not None

            async def stored() -> bool:
                count = await pool.fetchval(
                    "SELECT count(*) FROM chat.invitations WHERE invitation_id = $1",
                    after.payload.invitation_id,
                )
                return bool(count == 1)

            async def settled() -> bool:
                return task.done() or await stored()

            await eventually(settled, timeout_s=GROUP_FORMED_TIMEOUT_S, what="the consumer settled")
            if task.done():
                raise AssertionError(f"the consumer stopped: {task.exception()!r}")
            assert await stored()
        finally:
            with contextlib.suppress(Exception):  # re-raises what killed the task
                await consumer.stop()
            with contextlib.suppress(Exception):
                await consumer.consumer.stop()
            await bus.stop()


async def test_a_second_deployment_on_the_cluster_takes_none_of_this_ones_invitations(
    chat, make_site, db
) -> None:
    """Another chat deployment (its own database; staging beside production) on the same
    broker reads `chat.invitations` in a group of its own (`CHAT_CONSUMER_GROUP`), so this
    deployment still stores every invitation of its sites. In one group the two split the
    partitions, and each stored only part of the other's invitations (the e2e scenario's chat
    missed the invitations a console test's chat consumed)."""
    site = await make_site(agents=[("ann", ["sales"], 5)])
    async with scratch_database(chat.server_url, "chat_other") as (url, _pool):
        other = await start_chat(
            "o", database_url=url, bootstrap=chat.bootstrap, log_dir=chat.log_dir
        )
        try:
            records = [
                invitation_record(site.site_id, f"visitor-{i:02d}", message=f"Hello {i}")
                for i in range(24)  # keys spread over every partition of chat.invitations
            ]
            for record in records:
                await produce_invitation(chat.bootstrap, record)
            wanted = {record.payload.invitation_id for record in records}

            async def all_stored() -> bool:
                rows = await db.fetch(
                    "SELECT invitation_id FROM chat.invitations WHERE invitation_id = ANY($1)",
                    list(wanted),
                )
                return {row["invitation_id"] for row in rows} == wanted

            await eventually(
                all_stored, timeout_s=GROUP_FORMED_TIMEOUT_S, what="all 24 stored here"
            )
        finally:
            stop_chat(other)
