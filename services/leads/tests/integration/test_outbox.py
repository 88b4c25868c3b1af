"""The unit of work and the outbox relay on a real Postgres and broker: what a unit commits
reaches its topic through the relay (with its trace context), what it rolls back never does,
a redelivered event is recognised, and a team's lock keeps concurrent units apart."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from beckon_devstack.kafka_probe import read_records
from beckon_messaging.outbox import OutboxRecord
from leads.adapters.bus import OUTBOX_LOCK, Bus, outbox_relay
from leads.uow import UnitOfWorkFactory, team_lock_key
from leads_testing import unique

pytestmark = pytest.mark.integration

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def producer(kafka_bootstrap):
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def _pending(pool, key: bytes) -> int:
    return await pool.fetchval(
        "SELECT count(*) FROM leads.outbox WHERE key = $1 AND published_at IS NULL", key
    )


async def test_a_committed_units_records_reach_the_topic_through_the_relay(
    leads_pool, producer, kafka_bootstrap, scratch_topic
):
    relay = outbox_relay(leads_pool, producer, poll_s=60.0)  # only a kick wakes it
    uow = UnitOfWorkFactory(leads_pool, on_commit=relay.kick)
    key = unique("lead").encode()
    relay.start()
    try:
        async with uow(unique("site")) as tx:
            tx.trace = {"traceparent": TRACEPARENT}
            tx.publish(
                OutboxRecord(scratch_topic, key, b'{"n": 1}'),
                OutboxRecord(scratch_topic, key, b'{"n": 2}'),
            )
        found = await read_records(kafka_bootstrap, scratch_topic, count=2)
    finally:
        await relay.stop()
    assert [(r.key, r.value) for r in found] == [(key, b'{"n": 1}'), (key, b'{"n": 2}')]
    assert ("traceparent", TRACEPARENT.encode()) in found[0].headers
    assert await _pending(leads_pool, key) == 0
    assert relay.published >= 2


class GatedAcks:
    """The producer, with each acknowledgement held back until the test opens the gate."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.gate = asyncio.Event()
        self.sent = 0

    async def send(self, *args, **kwargs) -> asyncio.Future:
        ack = await self.producer.send(*args, **kwargs)
        self.sent += 1

        async def held():
            await self.gate.wait()
            return await ack

        return asyncio.ensure_future(held())


async def _stop_with_a_batch_in_flight(leads_pool, producer, scratch_topic, *, grace_s: float):
    acks = GatedAcks(producer)
    relay = outbox_relay(leads_pool, acks, poll_s=60.0)  # type: ignore[arg-type]
    uow = UnitOfWorkFactory(leads_pool, on_commit=relay.kick)
    key = unique("lead").encode()
    relay.start()
    async with uow(unique("site")) as tx:
        tx.publish(OutboxRecord(scratch_topic, key, b"1"), OutboxRecord(scratch_topic, key, b"2"))
    while acks.sent < 2:  # both sent, neither acknowledged
        await asyncio.sleep(0.005)
    stopping = asyncio.create_task(relay.stop(grace_s=grace_s))
    await asyncio.sleep(0.05)
    assert not stopping.done()  # it waits for the batch in flight
    return acks, stopping, key


async def test_stopping_lets_the_batch_in_flight_be_marked_published(
    leads_pool, producer, scratch_topic
):
    acks, stopping, key = await _stop_with_a_batch_in_flight(
        leads_pool, producer, scratch_topic, grace_s=30.0
    )
    acks.gate.set()
    await stopping
    assert await _pending(leads_pool, key) == 0


async def test_a_batch_still_unacknowledged_when_the_grace_ends_stays_pending(
    leads_pool, producer, scratch_topic
):
    acks, stopping, key = await _stop_with_a_batch_in_flight(
        leads_pool, producer, scratch_topic, grace_s=0.2
    )
    await stopping
    acks.gate.set()
    assert await _pending(leads_pool, key) == 2  # sent again by the next relay


async def test_a_rolled_back_unit_stores_nothing_and_wakes_no_relay(leads_pool):
    kicks: list[None] = []
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: kicks.append(None))
    key = unique("lead").encode()

    class Refused(Exception):
        pass

    async def publish_then_refuse() -> None:
        async with uow(unique("site")) as tx:
            tx.publish(OutboxRecord("leads.events", key, b"{}"))
            raise Refused

    with pytest.raises(Refused):
        await publish_then_refuse()
    assert await leads_pool.fetchval("SELECT count(*) FROM leads.outbox WHERE key = $1", key) == 0
    assert kicks == []

    async with uow(unique("site")):  # nothing to publish: the relay is not woken either
        pass
    assert kicks == []


async def test_rows_committed_with_no_relay_running_are_published_by_the_next_one(
    leads_pool, kafka_bootstrap, scratch_topic
):
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    key = unique("lead").encode()
    async with uow(unique("site")) as tx:
        tx.publish(OutboxRecord(scratch_topic, key, b"later"))
    assert await _pending(leads_pool, key) == 1

    bus = Bus(kafka_bootstrap, unique("leads-test"), idempotent=True)
    await bus.start()
    try:
        assert await bus.connected()
        relay = outbox_relay(leads_pool, bus.producer, poll_s=60.0)
        while (sent := await relay.publish_pending()) is None:  # another test's relay
            await asyncio.sleep(0.01)
        assert sent >= 1
    finally:
        await bus.stop()
    assert not await bus.connected()
    found = await read_records(kafka_bootstrap, scratch_topic, match=lambda r: r.key == key)
    assert found[0].value == b"later"
    assert await _pending(leads_pool, key) == 0


async def test_the_relay_steps_aside_while_another_instance_holds_the_outbox_lock(
    leads_pool, producer
):
    relay = outbox_relay(leads_pool, producer, poll_s=60.0)
    async with leads_pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", OUTBOX_LOCK)
        assert await relay.publish_pending() is None


async def test_an_event_is_handled_once_per_consumer(leads_pool):
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    event_id = uuid.uuid4()
    async with uow(unique("site")) as tx:
        assert await tx.first_delivery("capture", event_id)
    async with uow(unique("site")) as tx:
        assert not await tx.first_delivery("capture", event_id)  # redelivered
        assert await tx.first_delivery("webhooks", event_id)  # another consumer's own

    class Crashed(Exception):
        pass

    other = uuid.uuid4()

    async def handle_then_crash() -> None:
        async with uow(unique("site")) as tx:
            assert await tx.first_delivery("capture", other)
            raise Crashed

    with pytest.raises(Crashed):
        await handle_then_crash()
    async with uow(unique("site")) as tx:  # rolled back: its effects never happened
        assert await tx.first_delivery("capture", other)


async def test_a_teams_lock_is_held_until_the_unit_ends(leads_pool):
    """While one unit holds `sales`, no other transaction gets it (another team's is free);
    once the unit commits, it is free again."""
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    site = unique("site")

    async def try_lock(team: str) -> bool:
        async with leads_pool.acquire() as conn, conn.transaction():
            return bool(
                await conn.fetchval(
                    "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
                    team_lock_key(site, team),
                )
            )

    async with uow(site, teams=["sales"]) as tx:
        assert not await try_lock("sales")
        assert await try_lock("service")
        await tx.lock_team("service", "sales")  # again: a no-op for the one it holds
        assert tx.locked_teams == {"sales", "service"}
        assert not await try_lock("service")
        assert await try_lock("parts")
    assert await try_lock("sales")
    assert await try_lock("service")


async def test_a_read_only_unit_refuses_to_publish_or_lock(leads_pool):
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    async with uow.read(unique("site")) as tx:
        with pytest.raises(RuntimeError, match="read-only"):
            tx.publish(OutboxRecord("leads.events", b"k", b"{}"))
        with pytest.raises(RuntimeError, match="read-only"):
            await tx.lock_team("sales")


async def test_the_relay_measures_its_backlog_into_the_outbox_gauges(leads_pool, scratch_topic):
    from beckon_messaging.metrics import REGISTRY

    relay = outbox_relay(leads_pool, None, poll_s=60.0)  # type: ignore[arg-type]  # never started
    uow = UnitOfWorkFactory(leads_pool, on_commit=lambda: None)
    key = unique("lead").encode()
    async with uow(unique("site")) as tx:
        tx.publish(OutboxRecord(scratch_topic, key, b"1"), OutboxRecord(scratch_topic, key, b"2"))
    await leads_pool.execute(
        "UPDATE leads.outbox SET created_at = now() - interval '1 hour' WHERE key = $1", key
    )
    try:
        pending, oldest = await relay.measure()
        assert pending >= 2
        assert oldest >= 3600
        labels = {"outbox": "leads.outbox"}
        assert REGISTRY.get_sample_value("beckon_outbox_pending", labels) == pending
        assert REGISTRY.get_sample_value("beckon_outbox_oldest_age_seconds", labels) == oldest
    finally:  # published, as far as the other tests are concerned
        await leads_pool.execute("UPDATE leads.outbox SET published_at = now() WHERE key = $1", key)
