"""CRM webhooks end to end on the real Postgres and a real HTTP receiver that verifies every
signature with the `standardwebhooks` package: events queue in their own transaction, a
receiver that was down gets every event once it is back (same webhook-id on each retry,
Retry-After honoured), 410 disables, failing for days disables, the SSRF guard holds against
a name that resolves to 127.0.0.1, replays keep the webhook-id, claims are exclusive and a
crashed instance's claims come back. The sender's clock is the test's: no real waits."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from beckon_contracts.leads import LeadAssigned, LeadCreated, WebhookEndpointDisabled
from leads.domain.webhooks import DISABLE_AFTER, WebhookSecret, message_id
from leads.events import emit
from leads.lead import LeadStore
from leads.uow import UnitOfWorkFactory
from leads.webhooks import service
from leads.webhooks.sender import Sender
from leads.webhooks.store import WebhookStore
from leads_testing import unique
from leads_webhook_receiver import Receiver, TestClock

pytestmark = pytest.mark.integration
SECRET = str(WebhookSecret(bytes(range(32))))


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


@pytest.fixture
async def receiver(clock: TestClock) -> AsyncIterator[Receiver]:
    found = Receiver(clock, secrets=[SECRET])
    try:
        yield found
    finally:
        await found.stop()


@pytest.fixture
def uow(leads_pool) -> UnitOfWorkFactory:
    return UnitOfWorkFactory(leads_pool, on_commit=lambda: None)


@pytest.fixture
async def new_site(leads_pool) -> AsyncIterator[Callable[[], str]]:
    """`new_site()`: a site of this test's own; its endpoints (and so their deliveries) go
    afterwards, so no later test's sender finds them due."""
    made: list[str] = []

    def make() -> str:
        made.append(unique("site"))
        return made[-1]

    try:
        yield make
    finally:
        await leads_pool.execute(
            "DELETE FROM leads.webhook_endpoints WHERE site_id = ANY($1::text[])", made
        )


def sender_for(pool, clock: TestClock, **overrides) -> Sender:
    options = {
        "instance": unique("sender"),
        "timeout_s": 5.0,
        "allow_http": True,
        "allow_private": True,
        "clock": clock,
        "rand": lambda: 0.5,  # the middle of the jitter: the schedule's own delays
    } | overrides
    return Sender(pool, **options)


async def add_endpoint(
    uow, site: str, url: str, types=("lead.created", "lead.assigned"), secret: str = SECRET
) -> uuid.UUID:
    endpoint_id = uuid.uuid4()
    async with uow(site) as tx:
        await tx.store(WebhookStore).add_endpoint(
            site_id=site,
            endpoint_id=endpoint_id,
            url=url,
            description="",
            event_types=types,
            secret=secret,
            now=datetime.now(UTC),
        )
    return endpoint_id


async def new_lead(pool, site: str) -> uuid.UUID:
    lead_id = uuid.uuid4()
    await pool.execute(
        """INSERT INTO leads.leads (lead_id, site_id, visitor_id, validation, email, email_key)
           VALUES ($1, $2, $3, 'qualified', $4, $4)""",
        lead_id,
        site,
        f"v-{lead_id.hex[:8]}",
        f"ann.{lead_id.hex[:8]}@example.com",
    )
    return lead_id


def touch() -> dict[str, object]:
    return {
        "kind": "lead_marked",
        "source_event_id": uuid.uuid4(),
        "validation": "qualified",
        "at": datetime.now(UTC),
    }


async def emit_events(uow, pool, site: str, leads: int = 1) -> list[tuple[uuid.UUID, bytes]]:
    """lead.created + lead.assigned for each of `leads` new leads; (event id, outbox bytes)."""
    emitted = []
    for _ in range(leads):
        lead_id = await new_lead(pool, site)
        async with uow(site) as tx:
            lead = await tx.store(LeadStore).lock(site, lead_id)
            now = datetime.now(UTC)
            emitted.append(await emit(tx, LeadCreated, lead, now=now, touch=touch()))
            emitted.append(
                await emit(
                    tx, LeadAssigned, lead, now=now, team="sales", agent_id="a-1", how="auto"
                )
            )
    rows = await pool.fetch(
        "SELECT value FROM leads.outbox WHERE key = ANY($1::bytea[])",
        [str(e.lead_id).encode() for e in emitted],
    )
    by_event = {uuid.UUID(orjson.loads(r["value"])["event_id"]): bytes(r["value"]) for r in rows}
    return [(e.event_id, by_event[e.event_id]) for e in emitted]


async def deliveries(pool, endpoint_id: uuid.UUID):
    return await pool.fetch(
        """SELECT delivery_id, message_id, status, attempts, last_status, last_error, body
           FROM leads.webhook_deliveries WHERE endpoint_id = $1 ORDER BY delivery_id""",
        endpoint_id,
    )


async def attempt_statuses(pool, delivery_id: int) -> list[int | None]:
    rows = await pool.fetch(
        "SELECT status FROM leads.webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
        delivery_id,
    )
    return [r["status"] for r in rows]


# ---- queueing in the event's transaction ----------------------------------------------------
async def test_an_event_queues_once_per_subscribed_enabled_endpoint_of_its_site(
    leads_pool, uow, new_site
):
    site, other_site = new_site(), new_site()
    both = await add_endpoint(uow, site, "https://crm.example.com/a")
    created_only = await add_endpoint(
        uow, site, "https://crm.example.com/b", types=["lead.created"]
    )
    unsubscribed = await add_endpoint(uow, site, "https://crm.example.com/c", types=["lead.won"])
    disabled = await add_endpoint(uow, site, "https://crm.example.com/d")
    await leads_pool.execute(
        """UPDATE leads.webhook_endpoints SET enabled = false, disabled_reason = 'test'
           WHERE endpoint_id = $1""",
        disabled,
    )
    elsewhere = await add_endpoint(uow, other_site, "https://crm.example.com/e")

    (created_id, created_body), (assigned_id, assigned_body) = await emit_events(
        uow, leads_pool, site
    )

    rows = await leads_pool.fetch(
        """SELECT endpoint_id, message_id, event_type, body, status
           FROM leads.webhook_deliveries WHERE endpoint_id = ANY($1::uuid[])""",
        [both, created_only, unsubscribed, disabled, elsewhere],
    )
    queued = sorted((r["endpoint_id"], r["event_type"]) for r in rows)
    assert queued == sorted(
        [(both, "lead.created"), (both, "lead.assigned"), (created_only, "lead.created")]
    )
    for row in rows:
        event_id, body = (
            (created_id, created_body)
            if row["event_type"] == "lead.created"
            else (assigned_id, assigned_body)
        )
        assert row["message_id"] == message_id(event_id)
        assert bytes(row["body"]) == body  # exactly what the outbox carries to leads.events
        assert row["status"] == "pending"


async def test_an_event_emitted_in_a_rolled_back_unit_queues_nothing(leads_pool, uow, new_site):
    site = new_site()
    endpoint_id = await add_endpoint(uow, site, "https://crm.example.com/a")
    lead_id = await new_lead(leads_pool, site)

    queued_inside: list[int] = []

    class Undo(Exception):
        pass

    async def emit_then_fail() -> None:
        async with uow(site) as tx:
            lead = await tx.store(LeadStore).lock(site, lead_id)
            await emit(tx, LeadCreated, lead, now=datetime.now(UTC), touch=touch())
            await tx.finish()  # what the unit writes before it commits
            queued_inside.append(
                await tx.conn.fetchval(
                    "SELECT count(*) FROM leads.webhook_deliveries WHERE endpoint_id = $1",
                    endpoint_id,
                )
            )
            raise Undo

    with pytest.raises(Undo):
        await emit_then_fail()
    assert queued_inside == [1]  # queued inside the unit...
    assert await deliveries(leads_pool, endpoint_id) == []  # ...and gone with it


# ---- a receiver that was down ---------------------------------------------------------------
async def test_a_receiver_down_for_a_while_gets_every_event_once_back(
    leads_pool, uow, new_site, clock, receiver
):
    site = new_site()
    endpoint_id = await add_endpoint(uow, site, receiver.url)
    emitted = await emit_events(uow, leads_pool, site, leads=2)
    sender = sender_for(leads_pool, clock)
    try:
        # down: nothing listens (connections refused), twice
        assert await sender.pump() == 4
        assert await sender.pump() == 0  # the next try is 5 s away
        clock.advance(timedelta(seconds=5))
        assert await sender.pump() == 4
        # back, but busy: 503 and "come back in an hour" (later than the 5 min step)
        await receiver.start()
        receiver.answer(503, retry_after="3600")
        clock.advance(timedelta(minutes=5))
        assert await sender.pump() == 4
        clock.advance(timedelta(minutes=30))  # the schedule's next step; Retry-After says no
        assert await sender.pump() == 0
        receiver.answer(200)
        clock.advance(timedelta(minutes=31))
        assert await sender.pump() == 4
        assert await sender.pump() == 0
    finally:
        await sender.close()

    assert all(r.verified for r in receiver.requests), [r.error for r in receiver.requests]
    got = receiver.by_id()
    assert set(got) == {message_id(event_id) for event_id, _ in emitted}
    for event_id, body in emitted:
        requests = got[message_id(event_id)]
        assert [r.answered for r in requests] == [503, 200]  # same webhook-id on the retry
        assert {r.body for r in requests} == {body}
        assert requests[0].timestamp != requests[1].timestamp  # each attempt signed anew
    for row in await deliveries(leads_pool, endpoint_id):
        assert (row["status"], row["attempts"], row["last_status"]) == ("delivered", 4, 200)
        assert await attempt_statuses(leads_pool, row["delivery_id"]) == [None, None, 503, 200]
    assert (
        await leads_pool.fetchval(
            "SELECT failing_since FROM leads.webhook_endpoints WHERE endpoint_id = $1", endpoint_id
        )
        is None
    )  # the success ended the failure streak


async def test_the_running_sender_delivers_what_is_queued(
    leads_pool, uow, new_site, clock, receiver
):
    site = new_site()
    await add_endpoint(uow, site, receiver.url)
    await receiver.start()
    sender = sender_for(leads_pool, clock, poll_s=0.05)
    sender.start()
    try:
        emitted = await emit_events(uow, leads_pool, site, leads=5)
        async with asyncio.timeout(30):
            while len(receiver.requests) < len(emitted):
                await asyncio.sleep(0.02)
    finally:
        await sender.stop()
    assert all(r.verified for r in receiver.requests)
    assert sorted(receiver.by_id()) == sorted(message_id(e) for e, _ in emitted)


# ---- disabling ------------------------------------------------------------------------------
async def test_410_gone_disables_the_endpoint_and_cancels_what_waits(
    leads_pool, uow, new_site, clock, receiver, caplog
):
    site = new_site()
    endpoint_id = await add_endpoint(uow, site, receiver.url)
    await receiver.start()
    receiver.answer(410)
    await emit_events(uow, leads_pool, site)
    sender = sender_for(leads_pool, clock, concurrency=1)  # one at a time: the first says gone
    try:
        with caplog.at_level(logging.WARNING, logger="leads.webhooks"):
            assert await sender.pump() == 1
            assert await sender.pump() == 0  # the other waits no more
    finally:
        await sender.close()
    endpoint = await leads_pool.fetchrow(
        "SELECT enabled, disabled_reason FROM leads.webhook_endpoints WHERE endpoint_id = $1",
        endpoint_id,
    )
    assert (endpoint["enabled"], endpoint["disabled_reason"]) == (False, "gone")
    assert sorted(r["status"] for r in await deliveries(leads_pool, endpoint_id)) == [
        "cancelled",
        "failed",
    ]
    assert "webhook endpoint disabled" in caplog.text
    [told] = await leads_pool.fetch(
        "SELECT key, value FROM leads.outbox WHERE topic = 'leads.events' AND key = $1",
        str(endpoint_id).encode(),
    )
    notice = WebhookEndpointDisabled.model_validate_json(told["value"])  # the notifier's cue
    assert (notice.site_id, notice.payload.reason) == (site, "gone")
    assert notice.payload.last_error == "HTTP 410: thanks"
    await emit_events(uow, leads_pool, site)  # a disabled endpoint is not queued for
    assert len(await deliveries(leads_pool, endpoint_id)) == 2


async def test_an_endpoint_failing_for_days_is_disabled(leads_pool, uow, new_site, clock, receiver):
    site = new_site()
    endpoint_id = await add_endpoint(uow, site, receiver.url, types=["lead.created"])
    await receiver.start()
    receiver.answer(500)
    sender = sender_for(leads_pool, clock)
    try:
        await emit_events(uow, leads_pool, site)
        assert await sender.pump() == 1  # failing since now
        clock.advance(DISABLE_AFTER - timedelta(minutes=1))
        assert await sender.pump() == 1  # still retried: not quite five days
        row = await leads_pool.fetchrow(
            "SELECT enabled FROM leads.webhook_endpoints WHERE endpoint_id = $1", endpoint_id
        )
        assert row["enabled"] is True
        clock.advance(timedelta(minutes=6))
        await emit_events(uow, leads_pool, site)
        assert await sender.pump() == 2  # its retry and a new event's first attempt fail
    finally:
        await sender.close()
    row = await leads_pool.fetchrow(
        "SELECT enabled, disabled_reason FROM leads.webhook_endpoints WHERE endpoint_id = $1",
        endpoint_id,
    )
    assert (row["enabled"], row["disabled_reason"]) == (False, "failing")
    [told] = await leads_pool.fetch(
        "SELECT value FROM leads.outbox WHERE topic = 'leads.events' AND key = $1",
        str(endpoint_id).encode(),
    )
    notice = WebhookEndpointDisabled.model_validate_json(told["value"])
    assert notice.payload.reason == "failing"
    assert notice.payload.failing_since is not None


# ---- the SSRF guard -------------------------------------------------------------------------
async def test_a_name_resolving_to_loopback_is_refused_unless_the_dev_setting_allows_it(
    leads_pool, uow, new_site, clock, receiver
):
    async def resolver(host: str, port: int) -> list[str]:
        assert host == "crm.example.com"
        return ["127.0.0.1"]  # the name points into this machine (or rebinds to it)

    site = new_site()
    url = f"http://crm.example.com:{receiver.port}/hooks/beckon"
    endpoint_id = await add_endpoint(uow, site, url, types=["lead.created"])
    await receiver.start()
    await emit_events(uow, leads_pool, site)

    guarded = sender_for(leads_pool, clock, allow_private=False, resolver=resolver)
    try:
        assert await guarded.pump() == 1
    finally:
        await guarded.close()
    assert receiver.requests == []
    (row,) = await deliveries(leads_pool, endpoint_id)
    assert row["status"] == "pending"  # retried: a name's answer may change back
    assert row["last_status"] is None
    assert "refused target (loopback)" in row["last_error"]

    allowed = sender_for(leads_pool, clock, allow_private=True, resolver=resolver)
    clock.advance(timedelta(seconds=6))
    try:
        assert await allowed.pump() == 1
    finally:
        await allowed.close()
    (request,) = receiver.requests
    assert request.verified
    assert request.host == f"crm.example.com:{receiver.port}"  # sent to the checked address


# ---- replay ---------------------------------------------------------------------------------
async def test_a_replay_sends_the_same_webhook_id_and_body_again(
    leads_pool, uow, new_site, clock, receiver
):
    site = new_site()
    endpoint_id = await add_endpoint(uow, site, receiver.url, types=["lead.created"])
    await receiver.start()
    (event_id, body), _assigned = await emit_events(uow, leads_pool, site)
    sender = sender_for(leads_pool, clock)
    try:
        assert await sender.pump() == 1
        (row,) = await deliveries(leads_pool, endpoint_id)
        assert row["status"] == "delivered"
        replayed = await service.replay(
            uow,
            sender,
            site_id=site,
            endpoint_id=endpoint_id,
            delivery_id=row["delivery_id"],
            now=clock(),
        )
        assert replayed.status == "pending"
        clock.advance(timedelta(seconds=1))
        assert await sender.pump() == 1
    finally:
        await sender.close()
    first, again = receiver.requests
    assert first.webhook_id == again.webhook_id == message_id(event_id)
    assert first.body == again.body == body
    assert again.verified
    assert await attempt_statuses(leads_pool, row["delivery_id"]) == [200, 200]


async def test_a_replayed_delivery_that_fails_again_is_retried_on_the_schedule(
    leads_pool, uow, new_site, clock, receiver
):
    site = new_site()
    endpoint_id = await add_endpoint(uow, site, receiver.url, types=["lead.created"])
    await receiver.start()
    await emit_events(uow, leads_pool, site)
    await leads_pool.execute(  # its eight attempts used up long ago
        """UPDATE leads.webhook_deliveries SET status = 'failed', attempts = 8,
                  round_attempts = 8 WHERE endpoint_id = $1""",
        endpoint_id,
    )
    (row,) = await deliveries(leads_pool, endpoint_id)
    receiver.answer(500)
    sender = sender_for(leads_pool, clock)
    try:
        await service.replay(
            uow,
            sender,
            site_id=site,
            endpoint_id=endpoint_id,
            delivery_id=row["delivery_id"],
            now=clock(),
        )
        clock.advance(timedelta(seconds=1))
        assert await sender.pump() == 1
    finally:
        await sender.close()
    (after,) = await deliveries(leads_pool, endpoint_id)
    assert (after["status"], after["attempts"]) == ("pending", 9)  # 5 s from now, not failed


# ---- claims ---------------------------------------------------------------------------------
async def test_two_senders_send_each_delivery_once(leads_pool, uow, new_site, clock, receiver):
    site = new_site()
    await add_endpoint(uow, site, receiver.url)
    await receiver.start()
    emitted = await emit_events(uow, leads_pool, site, leads=30)
    one = sender_for(leads_pool, clock, concurrency=40)
    two = sender_for(leads_pool, clock, concurrency=40)
    try:
        sent = await asyncio.gather(one.pump(), two.pump(), one.pump(), two.pump())
    finally:
        await one.close()
        await two.close()
    assert sum(sent) == len(emitted) == 60
    assert all(len(requests) == 1 for requests in receiver.by_id().values())
    assert len(receiver.requests) == 60


async def test_a_crashed_instances_claims_are_retried_when_their_lease_ends(
    leads_pool, uow, new_site, clock, receiver
):
    site = new_site()
    endpoint_id = await add_endpoint(uow, site, receiver.url, types=["lead.created"])
    await receiver.start()
    await emit_events(uow, leads_pool, site)
    async with leads_pool.acquire() as conn:  # an instance claims it, then dies
        now = clock()
        (claimed,) = [
            c
            for c in await WebhookStore(conn).claim(
                instance="crashed", now=now, lease_until=now + timedelta(minutes=2), limit=1000
            )
            if c.endpoint_id == endpoint_id
        ]
    sender = sender_for(leads_pool, clock)
    try:
        assert await sender.pump() == 0  # held by the crashed instance
        clock.advance(timedelta(minutes=2, seconds=1))
        assert await sender.pump() == 1
    finally:
        await sender.close()
    (request,) = receiver.requests
    assert request.webhook_id == claimed.message_id
