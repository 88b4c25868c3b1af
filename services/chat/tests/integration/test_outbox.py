"""The transactional outbox: what is committed is published on `chat.events`, keyed by the
conversation, in commit order per conversation, at least once; and rows committed while no
relay runs are published by whichever instance starts next."""

from __future__ import annotations

import asyncio
from collections import Counter
from uuid import UUID

import orjson
import pytest
from beckon_contracts.chat_events import parse_chat_event
from beckon_contracts.presence import parse_team_presence
from beckon_contracts.topics import AGENTS_PRESENCE, CHAT_EVENTS
from chat.adapters.bus import OUTBOX_LOCK, OutboxRelay
from chat.conversations import service as conversations
from chat.refs import Visitor
from chat_testing import (
    add_site,
    dedupe,
    eventually,
    read_events,
    relayless_uow,
    scratch_database,
    site_spec,
    start_chat,
    stop_chat,
    unique,
)

BROWSER = UUID(int=1)  # the browser credential the visitors here chat from
pytestmark = pytest.mark.integration


def _has_seqs(wanted: range):
    def done(events) -> bool:
        seen = {e.payload.get("seq") for e in events if e.type == "message.sent"}
        return set(wanted) <= seen

    return done


async def test_thirty_messages_are_published_in_seq_order_after_the_start(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    agent = await clients.agent(chat.b.url, site.agent("ann"), online=True)
    visitor = clients.visitor(site)
    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url)
    assert started.status_code == 201
    cid = started.json()["conversation"]["id"]
    assert started.json()["conversation"]["status"] == "open"

    async def visitor_side() -> None:
        for i in range(15):
            answer = await visitor.post(
                chat.a.url, "/messages", {"client_id": f"v{i}", "text": f"visitor says {i}"}
            )
            assert answer.status_code == 201, answer.text

    async def agent_side() -> None:
        for i in range(15):
            answer = await agent.post(
                f"/conversations/{cid}/messages",
                {"client_id": f"a{i}", "text": f"agent says {i}"},
                base=chat.b.url,
            )
            assert answer.status_code == 201, answer.text

    # both sides write at once, through different instances: seq follows commit order
    await asyncio.gather(visitor_side(), agent_side())
    stored = await db.fetch(
        """SELECT seq, message_id, author, text, client_id FROM chat.messages
           WHERE conversation_id = $1 ORDER BY seq""",
        UUID(cid),
    )
    assert [r["seq"] for r in stored] == list(range(1, 31))
    assert Counter(r["author"] for r in stored) == {"visitor": 15, "agent": 15}

    events = await read_events(
        chat.bootstrap, CHAT_EVENTS.name, key=cid, until=_has_seqs(range(1, 31))
    )
    assert len({e.partition for e in events}) == 1  # one key, one partition, one order
    for event in events:
        parsed = parse_chat_event(orjson.dumps(event.value))  # every record obeys the contract
        assert parsed.site_id == site.site_id
        assert parsed.visitor_id == visitor.visitor_id

    unique_events = dedupe(events)
    sent = [e for e in unique_events if e.type == "message.sent"]
    assert [e.payload["seq"] for e in sent] == list(range(1, 31))
    for event, row in zip(sent, stored, strict=True):
        assert event.payload["message_id"] == str(row["message_id"])
        assert event.payload["author"] == row["author"]
        assert event.payload["text"] == row["text"]
        assert event.payload["client_id"] == row["client_id"]
    # at least once, and a redelivered record is the very same record
    for seq, count in Counter(e.payload["seq"] for e in events if e.type == "message.sent").items():
        copies = {
            orjson.dumps(e.value)
            for e in events
            if e.type == "message.sent" and e.payload["seq"] == seq
        }
        assert len(copies) == 1, f"seq {seq} was published {count} times with different content"

    kinds = [e.type for e in unique_events]
    assert kinds.index("conversation.started") < kinds.index("message.sent")
    assert kinds.index("conversation.assigned") < kinds.index("message.sent")
    assert kinds.count("conversation.started") == 1

    async def all_marked() -> bool:
        pending = await db.fetchval(
            "SELECT count(*) FROM chat.outbox WHERE key = $1 AND published_at IS NULL",
            cid.encode(),
        )
        return pending == 0

    await eventually(all_marked, what="every outbox row of the conversation marked published")


async def test_rows_committed_while_no_relay_runs_are_published_by_a_later_instance(
    chat,
) -> None:
    """A database no running instance serves: the service's own use cases commit rows (no
    relay anywhere), then a third instance starts on it and publishes them, in order."""
    async with scratch_database(chat.server_url, "chat_outbox") as (url, pool):
        site = await add_site(url, site_spec(unique("site"), agents=[("ann", ["sales"], 5)]))
        uow = relayless_uow(pool)
        visitor = Visitor(site.site_id, unique("v"), BROWSER)
        conversation, created = await conversations.start_conversation(
            uow=uow,
            visitor=visitor,
            invitation_id=None,
            team=None,
            text="message 1",
            client_id="m1",
        )
        assert created
        cid = conversation["id"]
        for i in range(2, 6):
            await conversations.visitor_message(
                uow=uow, visitor=visitor, text=f"message {i}", client_id=f"m{i}"
            )

        rows = await pool.fetch("SELECT topic, key, published_at FROM chat.outbox ORDER BY id")
        assert [r["topic"] for r in rows].count(CHAT_EVENTS.name) == 6  # started + 5 messages
        assert f"{site.site_id}:sales".encode() in {bytes(r["key"]) for r in rows}
        assert all(r["published_at"] is None for r in rows)

        instance = await start_chat(
            "c", database_url=url, bootstrap=chat.bootstrap, log_dir=chat.log_dir
        )
        try:
            found = await read_events(
                chat.bootstrap, CHAT_EVENTS.name, key=cid, until=_has_seqs(range(1, 6))
            )
            events = dedupe(found)
            assert [e.type for e in events] == ["conversation.started"] + ["message.sent"] * 5
            assert [e.payload["seq"] for e in events[1:]] == [1, 2, 3, 4, 5]
            assert [e.payload["text"] for e in events[1:]] == [f"message {i}" for i in range(1, 6)]

            presence = await read_events(
                chat.bootstrap,
                AGENTS_PRESENCE.name,
                key=f"{site.site_id}:sales",
                until=lambda found: len(found) >= 1,
            )
            team = parse_team_presence(orjson.dumps(presence[0].value))
            assert [a.agent_id for a in team.agents] == [site.agent("ann").agent_id]

            async def all_marked() -> bool:
                return bool(
                    await pool.fetchval(
                        "SELECT count(*) = 0 FROM chat.outbox WHERE published_at IS NULL"
                    )
                )

            await eventually(all_marked, what="every outbox row marked published")
        finally:
            stop_chat(instance)


class _UnansweredProducer:
    """A producer whose broker never acknowledges (an outage the idempotent producer rides
    out by retrying forever)."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, *args: object, **kwargs: object) -> asyncio.Future[None]:
        self.sent += 1
        return asyncio.get_running_loop().create_future()


async def test_a_batch_the_broker_does_not_acknowledge_is_given_up_and_sent_again_later(
    chat,
) -> None:
    """The relay does not hold its transaction and lock through an outage: it gives the batch
    up after `ack_wait_s`, the rows stay unpublished, and the next relay sends them."""
    async with scratch_database(chat.server_url, "chat_outbox_wait") as (url, pool):
        site = await add_site(url, site_spec(unique("site"), agents=[("ann", ["sales"], 5)]))
        visitor = Visitor(site.site_id, unique("v"), BROWSER)
        await conversations.start_conversation(
            uow=relayless_uow(pool),
            visitor=visitor,
            invitation_id=None,
            team=None,
            text="hello",
            client_id="m1",
        )
        pending = await pool.fetchval("SELECT count(*) FROM chat.outbox WHERE published_at IS NULL")
        assert pending > 0

        producer = _UnansweredProducer()
        relay = OutboxRelay(pool, producer, poll_s=1.0, ack_wait_s=0.2)  # type: ignore[arg-type]
        with pytest.raises(TimeoutError):
            await relay.publish_pending()

        assert producer.sent == pending
        assert relay.published == 0
        still = await pool.fetchval("SELECT count(*) FROM chat.outbox WHERE published_at IS NULL")
        assert still == pending
        async with pool.acquire() as conn, conn.transaction():  # the relay lock is free again
            assert await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", OUTBOX_LOCK)
