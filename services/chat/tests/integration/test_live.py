"""The live visitor list on real Kafka and Postgres: `visitor.state` records reach subscribed
consoles on both instances as a snapshot then coalesced deltas; bad records are skipped; a
personal invitation sent through one instance shows on the visitor's socket on the other and
the chat it starts goes to the inviting agent."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import CHAT_EVENTS, VISITORS_STATE
from beckon_messaging import ensure_topics
from chat.live.reader import LiveVisitors
from chat.visitors import pseudonym
from chat_testing import frame_is, produce, read_events, unique

pytestmark = pytest.mark.integration

TIMEOUT_S = 30.0


def state_record(site_id: str, visitor_id: str, **payload: Any) -> bytes:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "url": "https://shop.test/p/boots",
        "title": "Boots",
        "page_type": "product",
        "session_started_at": (now - timedelta(minutes=3)).isoformat(),
        "last_seen_at": now.isoformat(),
        "time_on_site_s": 180.0,
        "sessions": 1,
        "returning": False,
        "source": "google",
        "campaign": "spring",
        "cart_value": 0.0,
        "current_product": "Trail boots",
        "score": 20.0,
        "segment": "cold",
        "invited": False,
    }
    values.update(payload)
    return orjson.dumps(
        {
            "event_id": str(uuid7()),
            "type": "visitor.state",
            "occurred_at": now.isoformat(),
            "site_id": site_id,
            "visitor_id": visitor_id,
            "session_id": "s1",
            "payload": values,
        }
    )


async def send_state(bootstrap: str, site_id: str, visitor_id: str, *values: bytes) -> None:
    await produce(bootstrap, VISITORS_STATE.name, f"{site_id}:{visitor_id}".encode(), *values)


def has_row(visitor_id: str, **fields: Any):  # type: ignore[no-untyped-def]
    def check(frame: dict[str, Any]) -> bool:
        rows = frame.get("visitors") or frame.get("upsert") or []
        return any(
            row["id"] == visitor_id and all(row.get(k) == v for k, v in fields.items())
            for row in rows
        )

    return check


async def seen(socket: Any, predicate: Any, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """The first frame received so far (taken or not) that matches; waits for one."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        found = socket.matching(predicate)
        if found:
            return dict(found[0])
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{socket.label}: no matching frame; frames: {socket.frames}")


async def test_snapshots_and_deltas_reach_consoles_on_both_instances(
    chat, make_site, clients
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5), ("ben", ["sales"], 5)])
    early, late = unique("v"), unique("v")
    await send_state(
        chat.bootstrap,
        site.site_id,
        early,
        state_record(
            site.site_id,
            early,
            device="mobile",
            browser="Firefox",
            os="Android",
            medium="cpc",
            referrer="https://shop.test/",  # the store's own page: never shown as a referrer
        ),
    )

    # the record written before anyone subscribed is in the snapshot, on both instances
    ann = await clients.agent(chat.a.url, site.agent("ann"))
    ben = await clients.agent(chat.b.url, site.agent("ben"))
    on_a, on_b = await ann.connect(), await ben.connect()
    for socket in (on_a, on_b):
        await socket.recv_until(frame_is("hello"))

    async def snapshot_with_early(socket: Any) -> dict[str, Any]:
        for _ in range(int(TIMEOUT_S / 0.5)):
            await socket.send({"t": "visitors.subscribe"})
            frame = await socket.recv_until(frame_is("visitors.snapshot"))
            if has_row(early)(frame):
                return frame
            await socket.send({"t": "visitors.unsubscribe"})
            await asyncio.sleep(0.5)
        raise AssertionError("the early visitor never reached the snapshot")

    for socket in (on_a, on_b):
        frame = await snapshot_with_early(socket)
        [row] = [r for r in frame["visitors"] if r["id"] == early]
        assert row["product"] == "Trail boots"
        assert row["source"] == "google"
        assert "score_breakdown" not in row  # compact rows
        # a name to say aloud (no UUID prefix), how the visitor browses and where they came from
        assert row["label"] == pseudonym(early)
        assert (row["device"], row["browser"], row["os"]) == ("mobile", "Firefox", "Android")
        assert row["landing"] == {"kind": "campaign", "text": "google"}

    # three quick updates of one visitor and a new one: each socket hears the latest
    await send_state(
        chat.bootstrap,
        site.site_id,
        early,
        state_record(site.site_id, early, url="https://shop.test/cart", cart_value=10.0),
        state_record(site.site_id, early, url="https://shop.test/cart", cart_value=60.0),
        state_record(
            site.site_id, early, url="https://shop.test/checkout", cart_value=129.9, currency="EUR"
        ),
    )
    await send_state(
        chat.bootstrap, site.site_id, late, state_record(site.site_id, late, segment="hot")
    )
    for socket in (on_a, on_b):
        await seen(
            socket,
            lambda f: (
                f.get("t") == "visitors.delta"
                and has_row(early, cart=129.9, url="https://shop.test/checkout")(f)
            ),
        )
        await seen(
            socket, lambda f: f.get("t") == "visitors.delta" and has_row(late, segment="hot")(f)
        )
        deltas = socket.matching(frame_is("visitors.delta"))
        for delta in deltas:  # coalesced: a visitor at most once per delta
            ids = [r["id"] for r in delta["upsert"]]
            assert len(ids) == len(set(ids))

    # the HTTP snapshot says the same, filtered
    answer = await ann.get("/visitors", params={"min_cart": 100})
    assert answer.status_code == 200, answer.text
    assert [r["id"] for r in answer.json()["visitors"]] == [early]
    answer = await ben.get("/visitors", params={"segment": "hot"}, base=chat.a.url)
    assert [r["id"] for r in answer.json()["visitors"]] == [late]

    # after unsubscribing, no more deltas reach that socket. A second socket on B stays
    # subscribed: B queues a delta for all its subscribers at once, so once that socket has
    # the new visitor, a pong asked for on the first one comes after anything queued there.
    still_on_b = await ben.connect()
    await still_on_b.recv_until(frame_is("hello"))
    await still_on_b.send({"t": "visitors.subscribe"})
    await still_on_b.recv_until(frame_is("visitors.snapshot"))
    await on_b.send({"t": "visitors.unsubscribe"})
    await on_b.send({"t": "ping"})  # frames are handled in order: unsubscribed once this answers
    await on_b.recv_until(frame_is("pong"))
    newcomer = unique("v")
    await send_state(chat.bootstrap, site.site_id, newcomer, state_record(site.site_id, newcomer))
    await seen(on_a, lambda f: f.get("t") == "visitors.delta" and has_row(newcomer)(f))
    await seen(still_on_b, lambda f: f.get("t") == "visitors.delta" and has_row(newcomer)(f))
    await on_b.send({"t": "ping"})
    await on_b.recv_until(frame_is("pong"))
    assert not [f for f in on_b.matching(frame_is("visitors.delta")) if has_row(newcomer)(f)]


async def test_start_up_does_not_fetch_snapshots_older_than_the_idle_window(
    kafka_bootstrap: str,
) -> None:
    """A new reader starts each partition at `now - window`: older snapshots are not fetched at
    all (a partition with none newer starts at its end), the recent ones are in the list."""
    # a topic of its own: on the session's `visitors.state` other tests' recent records
    # may sit before these old ones, and a reader starting there rightly reads past them
    topic = replace(VISITORS_STATE, name=f"visitors.state.{unique('t')}", partitions=2)
    await ensure_topics(kafka_bootstrap, [topic])
    live = LiveVisitors(
        kafka_bootstrap, "live-test", idle_after_s=600, push_interval_s=0.25, state_topic=topic
    )
    before_window_ms = int((time.time() - live.window_s - 3600) * 1000)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=0)
    await producer.start()
    try:
        # partition 0: three snapshots from before the window, then two recent ones;
        # partition 1: only old ones
        for partition, visitor_id, timestamp_ms in [
            (0, "gone-1", before_window_ms),
            (0, "gone-2", before_window_ms + 1),
            (0, "gone-3", before_window_ms + 2),
            (0, "here-1", None),
            (0, "here-2", None),
            (1, "gone-4", before_window_ms),
            (1, "gone-5", before_window_ms + 1),
        ]:
            await producer.send_and_wait(
                topic.name,
                state_record("shop-a", visitor_id),
                key=f"shop-a:{visitor_id}".encode(),
                partition=partition,
                timestamp_ms=timestamp_ms,
            )
    finally:
        await producer.stop()

    await live.start()
    try:
        await asyncio.wait_for(live.loaded.wait(), TIMEOUT_S)
        listed = set(live.registry.sites["shop-a"].entries)
    finally:
        await live.stop()
    assert listed == {"here-1", "here-2"}
    assert (live.read, live.stale) == (2, 0)  # from the beginning: (7, 5)


async def test_a_bad_record_is_skipped_and_the_next_one_still_arrives(
    chat, make_site, clients
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    visitor = unique("v")
    ann = await clients.agent(chat.a.url, site.agent("ann"))
    socket = await ann.connect()
    await socket.recv_until(frame_is("hello"))
    await socket.send({"t": "visitors.subscribe"})
    await socket.recv_until(frame_is("visitors.snapshot"))
    key = f"{site.site_id}:{visitor}".encode()
    broken = orjson.loads(state_record(site.site_id, visitor))
    broken["payload"]["sessions"] = 0  # must be >= 1
    await produce(chat.bootstrap, VISITORS_STATE.name, key, b"not json", orjson.dumps(broken))
    await send_state(chat.bootstrap, site.site_id, visitor, state_record(site.site_id, visitor))
    frame = await socket.recv_until(
        lambda f: f.get("t") == "visitors.delta" and has_row(visitor)(f), timeout=TIMEOUT_S
    )
    [row] = [r for r in frame["upsert"] if r["id"] == visitor]
    assert row["sessions"] == 1


async def test_personal_invitation_crosses_instances_and_the_chat_goes_to_the_inviter(
    chat, make_site, clients, db
) -> None:
    # two agents with room; auto-assignment alone would not pick Ben every time
    site = await make_site(agents=[("ann", ["sales"], 5), ("ben", ["sales"], 5)])
    visitor = clients.visitor(site)
    ben = await clients.agent(chat.a.url, site.agent("ben"), online=True)
    await clients.agent(chat.a.url, site.agent("ann"), online=True)

    # not on the site (no snapshot yet): refused
    answer = await ben.post(f"/visitors/{visitor.visitor_id}/invite", {"message": "Hi!"})
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "not_live"

    await send_state(
        chat.bootstrap,
        site.site_id,
        visitor.visitor_id,
        state_record(site.site_id, visitor.visitor_id, current_product="Trail boots"),
    )
    assert (await visitor.session(chat.b.url)).status_code == 200
    widget = await visitor.connect(chat.b.ws_url)  # the visitor's socket is on B
    await widget.recv_until(frame_is("hello"))

    async def invite(message: Any) -> Any:
        for _ in range(int(TIMEOUT_S / 0.25)):  # until A's reader has the snapshot
            answer = await ben.post(f"/visitors/{visitor.visitor_id}/invite", {"message": message})
            if not (answer.status_code == 409 and answer.json()["error"] == "not_live"):
                return answer
            await asyncio.sleep(0.25)
        raise AssertionError("the visitor never became live on A")

    empty = await invite("   ")
    assert empty.status_code == 422, empty.text
    answer = await invite("  Hi, I'm Ben — questions about the Trail boots?\x07 ")
    assert answer.status_code == 201, answer.text
    sent = answer.json()["invitation"]
    assert sent["message"] == "Hi, I'm Ben — questions about the Trail boots?"

    frame = await widget.recv_until(frame_is("invitation", invitation__id=sent["id"]))
    shown = frame["invitation"]
    assert shown["agent"] == {"name": "Ben", "avatar_url": None}
    assert shown["rule_id"] is None
    assert shown["message"] == sent["message"]
    stored = await db.fetchrow(
        "SELECT personal, rule_id, team, agent FROM chat.invitations WHERE invitation_id = $1",
        UUID(sent["id"]),
    )
    assert stored["personal"] is True
    assert stored["rule_id"] is None
    assert stored["team"] == "sales"
    assert orjson.loads(stored["agent"])["agent_id"] == ben.agent_id

    for outcome in ("shown", "accepted"):
        reply = await visitor.post(chat.b.url, f"/invitations/{sent['id']}/{outcome}")
        assert reply.status_code == 204, reply.text
    started = await visitor.start(chat.b.url, invitation_id=sent["id"], text="Yes please")
    assert started.status_code == 201, started.text
    conversation_id = UUID(started.json()["conversation"]["id"])
    row = await db.fetchrow(
        "SELECT agent_id, status FROM chat.conversations WHERE conversation_id = $1",
        conversation_id,
    )
    assert (row["agent_id"], row["status"]) == (ben.agent_id, "open")

    # the chat list names the visitor as the live list does, with how they browse and came
    async def listed() -> dict[str, Any]:
        answer = await ben.get("/conversations", params={"scope": "mine"}, base=chat.b.url)
        assert answer.status_code == 200, answer.text
        [found] = [c for c in answer.json()["conversations"] if c["id"] == str(conversation_id)]
        return dict(found)

    listed_row = await listed()
    assert listed_row["visitor_label"] == pseudonym(visitor.visitor_id)
    assert listed_row["visitor"]["label"] == pseudonym(visitor.visitor_id)
    assert listed_row["visitor"]["landing"] == {"kind": "campaign", "text": "google"}
    # an e-mail given in the chat names the visitor everywhere (list, chat row, card)
    assert (await visitor.post(chat.b.url, "/email", {"email": "eve@example.com"})).status_code in (
        200,
        204,
    )
    for _ in range(int(TIMEOUT_S / 0.25)):
        listed_row = await listed()
        if listed_row["visitor"]["label"]["en"] == "eve@example.com":
            break
        await asyncio.sleep(0.25)
    assert listed_row["visitor"]["label"] == {"en": "eve@example.com", "fi": "eve@example.com"}
    assert listed_row["visitor_label"] == {"en": "eve@example.com", "fi": "eve@example.com"}

    # the answers are published with rule_id null (triggers ignores such outcomes)
    events = await read_events(
        chat.bootstrap,
        CHAT_EVENTS.name,
        key=f"{site.site_id}:{visitor.visitor_id}",
        match=lambda e: e.payload.get("invitation_id") == sent["id"],
        until=lambda found: "invitation.accepted" in {e.type for e in found},
    )
    assert {e.payload["rule_id"] for e in events} == {None}

    # now chatting: a second invitation is refused
    again = await ben.post(f"/visitors/{visitor.visitor_id}/invite", {"message": "Hello?"})
    assert again.status_code == 409
    assert again.json()["error"] == "already_chatting"


async def test_an_agent_who_is_not_online_cannot_invite(chat, make_site, clients) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    visitor_id = unique("v")
    await send_state(
        chat.bootstrap, site.site_id, visitor_id, state_record(site.site_id, visitor_id)
    )
    ann = await clients.agent(chat.a.url, site.agent("ann"))  # logged in, still away
    for _ in range(int(TIMEOUT_S / 0.25)):
        answer = await ann.post(f"/visitors/{visitor_id}/invite", {"message": "Hi!"})
        if answer.json().get("error") != "not_live":
            break
        await asyncio.sleep(0.25)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"] == "agent_offline"
