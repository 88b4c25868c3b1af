"""Presence from the real `agents.presence` topic: an agent coming online drains the team's
queue in arrival order; an older record changes nothing; unreadable records go to the
dead-letter twin with the reason (and to `leads.dead_letters`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from assign_testing import events, factory, holders, new_lead, queue, route, set_cap, set_presence
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import AgentPresence, TeamPresence, presence_key
from beckon_contracts.topics import AGENTS_PRESENCE, AGENTS_PRESENCE_DLQ
from leads.assignment.presence import PresenceFollower
from leads_testing import unique

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WAIT_S = 30.0  # how long a test waits for the follower before it fails (not a threshold)


async def until(done: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await done():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        await asyncio.sleep(0.05)


def team_record(site: str, status: str, *, at: datetime) -> bytes:
    record = TeamPresence(
        event_id=uuid7(),
        occurred_at=at,
        site_id=site,
        team="sales",
        agents=[AgentPresence(agent_id="ann", name="Ann", status=status, open_chats=0)],  # type: ignore[arg-type]
    )
    return record.model_dump_json().encode()


@pytest.fixture
async def producer(kafka_bootstrap):
    started = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def follower(kafka_bootstrap, leads_pool, producer):
    following = PresenceFollower(
        kafka_bootstrap, uow=factory(leads_pool), producer=producer, client_id=unique("leads")
    )
    await following.start()
    try:
        yield following
    finally:
        await following.stop()


async def test_an_agent_coming_online_drains_the_queue_in_arrival_order(
    leads_pool, producer, follower
):
    site = unique("site")
    await set_presence(leads_pool, site, "sales", {"ann": "offline"}, as_of=T0)
    await set_cap(leads_pool, site, "ann", 2)
    lead_ids = [await new_lead(leads_pool, site, created_at=T0) for _ in range(4)]
    for i, lead_id in enumerate(lead_ids):
        queued = await route(factory(leads_pool), site, lead_id, now=T0 + timedelta(seconds=i))
        assert queued.assignee is None
        assert queued.queued_at is not None
    assert await queue(leads_pool, site, "sales") == lead_ids

    key = presence_key(site, "sales")
    await producer.send_and_wait(
        AGENTS_PRESENCE.name, team_record(site, "online", at=T0 + timedelta(minutes=1)), key=key
    )

    async def ann_has_two() -> bool:
        return await holders(leads_pool, site) == {"ann": 2}

    await until(ann_has_two, "ann gets the two oldest leads")
    assert await queue(leads_pool, site, "sales") == lead_ids[2:]
    for lead_id in lead_ids[:2]:
        last = (await events(leads_pool, lead_id))[-1]
        assert last["type"] == "lead.assigned"
        assert last["payload"]["how"] == "dequeue"
        assert last["payload"]["agent_id"] == "ann"

    # an older record read late (another instance, a replay) changes nothing
    applied = follower.applied
    await producer.send_and_wait(
        AGENTS_PRESENCE.name, team_record(site, "offline", at=T0 + timedelta(seconds=30)), key=key
    )

    async def read_it() -> bool:
        return follower.applied > applied

    await until(read_it, "the older record is read")
    status = await leads_pool.fetchval(
        "SELECT status FROM leads.presence WHERE site_id = $1 AND team = 'sales'", site
    )
    assert status == "online"


async def test_unreadable_presence_records_are_dead_lettered_with_the_reason(
    kafka_bootstrap, leads_pool, producer, follower
):
    site = unique("site")
    key = presence_key(site, "sales")
    bad_json = f'{{"site_id": "{site}", not json'.encode()
    wrong = orjson.loads(team_record(site, "online", at=T0))
    wrong["agents"][0]["status"] = "sleeping"
    other_key = team_record(site, "online", at=T0)  # keyed by another team than it names
    sent = [
        await producer.send_and_wait(AGENTS_PRESENCE.name, bad_json, key=key),
        await producer.send_and_wait(AGENTS_PRESENCE.name, orjson.dumps(wrong), key=key),
        await producer.send_and_wait(
            AGENTS_PRESENCE.name, other_key, key=presence_key(site, "service")
        ),
    ]
    offsets = {(meta.partition, meta.offset) for meta in sent}

    async def recorded() -> bool:
        rows = await leads_pool.fetch(
            """SELECT partition, "offset" FROM leads.dead_letters
               WHERE source_topic = $1 AND site_id = $2""",
            AGENTS_PRESENCE.name,
            site,
        )
        return offsets <= {(row["partition"], row["offset"]) for row in rows}

    await until(recorded, "three dead letters recorded")
    reasons = {
        (row["partition"], row["offset"]): row["reason"]
        for row in await leads_pool.fetch(
            """SELECT partition, "offset", reason FROM leads.dead_letters
               WHERE source_topic = $1 AND site_id = $2""",
            AGENTS_PRESENCE.name,
            site,
        )
    }
    assert [reasons[meta.partition, meta.offset] for meta in sent] == [
        "malformed_json",
        "schema_invalid",
        "schema_invalid",
    ]

    consumer = AIOKafkaConsumer(
        AGENTS_PRESENCE_DLQ.name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        letters: dict[tuple[int, int], dict[str, object]] = {}
        deadline = time.monotonic() + WAIT_S
        while len(letters) < 3 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    letter = orjson.loads(record.value)
                    payload = letter["payload"]
                    where = (payload["partition"], payload["offset"])
                    if where in offsets:
                        letters[where] = payload
    finally:
        await consumer.stop()
    assert len(letters) == 3
    by_offset = [letters[meta.partition, meta.offset] for meta in sent]
    assert by_offset[0]["reason"] == "malformed_json"
    assert any(error["loc"] == "agents.0.status" for error in by_offset[1]["errors"])
    assert "does not name the record's site and team" in by_offset[2]["detail"]
    assert all(letter["topic"] == AGENTS_PRESENCE.name for letter in by_offset)
    # nothing of them was stored as presence
    assert not await leads_pool.fetchval(
        "SELECT count(*) FROM leads.presence WHERE site_id = $1", site
    )


async def test_a_running_instance_follows_presence(
    leads_database, leads_pool, producer, start_leads
):
    """The lifespan starts the follower (`LEADS_FOLLOW_PRESENCE`, on by default)."""
    await start_leads(leads_database)
    site = unique("site")
    await producer.send_and_wait(
        AGENTS_PRESENCE.name,
        team_record(site, "online", at=T0),
        key=presence_key(site, "sales"),
    )

    async def stored() -> bool:
        status = await leads_pool.fetchval(
            "SELECT status FROM leads.presence WHERE site_id = $1 AND agent_id = 'ann'", site
        )
        return status == "online"

    await until(stored, "the instance stores ann's presence")
