"""The broker SIGKILLed under tracker load, then started again on the same log directory.

While it is down the tracker answers 503 (never a 2xx); once it is back, every event the tracker
acknowledged is on `tracking.events` as it was acknowledged, chat's activity recorder carries on
from its committed offsets and stores every acknowledged event once, the triggers worker (which
ran through the outage) invites every visitor whose cart it was told of exactly once, and chat's
invitations consumer stores each invitation once.

An event is on the topic once unless its shopper resent it after a 503: a write the broker
appended just before it was killed never got its answer, so the tracker said 503 and the resend
is a second copy. Nobody can tell those apart at the edge (the record is in the log, its
acknowledgement is not); the consumers deduplicate by event id, which is what the side-effect
checks below hold them to.

Everything runs on a broker of its own (this test kills it): the tracker in-process through its
real ASGI app, a `python -m triggers` worker and a `python -m chat` instance as child processes.
Shoppers behave like the snippet: a batch answered 503 is sent again, same event ids, until it is
acknowledged.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts import topics
from beckon_contracts.ids import uuid7
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker
from beckon_devstack.kafka_probe import Record, read_records
from beckon_messaging import ensure_topics
from chat_testing import (
    add_site,
    create_database,
    drop_database,
    eventually,
    run_chat_command,
    site_spec,
    spawn_chat,
    stop_chat,
    wait_ready,
)
from tracker.config import Settings as TrackerSettings
from tracker.main import create_app
from triggers_testing import Kafka, Worker, big_cart_rules

pytestmark = pytest.mark.integration

SHOPPERS = 4  # concurrent clients, each one visitor after another
ACK_TIMEOUT_S = 2.0  # the tracker's: a request answers 503 this long after the broker went
RESEND_AFTER_S = 0.3  # the snippet waits Retry-After; shorter here, to keep the test short
PAUSE_S = 0.05  # between a shopper's requests: a steady stream, not a flood
# httpx's own user agent is a bot's, and triggers never invites bots
BROWSER = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Origin": "https://shop.test",
}
CART = {
    "items": [{"product_id": "tent", "name": "Tent", "price": 150.0, "quantity": 1}],
    "value": 150.0,
    "currency": "EUR",
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of its own, on a log directory that outlives its process (this test kills it)."""
    own = KafkaBroker(tmp_path_factory.mktemp("kafka-broker-restart"), heap_mb=384)
    own.start()
    try:
        asyncio.run(wait_until_serving(own.bootstrap, timeout_s=60))
        asyncio.run(ensure_topics(own.bootstrap))
        yield own
    finally:
        own.stop()


@dataclass
class Answer:
    started: float
    ended: float
    status: int


@dataclass
class Shoppers:
    """What every shopper sent, and what the tracker answered."""

    site_id: str
    site_key: str
    answers: list[Answer] = field(default_factory=list)
    acknowledged: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> event
    resent: set[str] = field(default_factory=set)  # event ids sent again after an error
    visitors_done: list[tuple[float, str]] = field(default_factory=list)  # (when, visitor_id)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def answers_between(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if a.started >= start and a.ended <= end]

    async def shop(self, client: httpx.AsyncClient, name: str) -> None:
        """Visitor after visitor until told to stop; each visit is finished, resent until
        acknowledged, so every visitor whose cart was sent has it acknowledged."""
        n = 0
        while not self.stop.is_set():
            visitor = f"{name}-v{n:03d}"
            n += 1
            for kind, payload in (
                ("page_viewed", {"page_type": "home"}),
                ("cart_updated", CART),
                ("page_viewed", {"page_type": "cart"}),
            ):
                event = {
                    "event_id": str(uuid7()),
                    "type": kind,
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "payload": payload,
                }
                await self._until_acknowledged(client, visitor, event)
                await asyncio.sleep(PAUSE_S)
            self.visitors_done.append((time.monotonic(), visitor))

    async def _until_acknowledged(
        self, client: httpx.AsyncClient, visitor: str, event: dict[str, Any]
    ) -> None:
        body = {
            "visitor_id": visitor,
            "session_id": "s1",
            "context": {"page": {"url": "https://shop.test/"}},
            "events": [event],
        }
        while True:
            started = time.monotonic()
            response = await client.post(
                f"/v1/collect?k={self.site_key}", json=body, headers={"origin": "https://shop.test"}
            )
            self.answers.append(Answer(started, time.monotonic(), response.status_code))
            if response.is_success:
                self.acknowledged[event["event_id"]] = event | {"visitor_id": visitor}
                return
            self.resent.add(event["event_id"])
            await asyncio.sleep(RESEND_AFTER_S)


@asynccontextmanager
async def running_tracker(settings: TrackerSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The tracker's real app, lifespan and all, driven in-process over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.77", 5555))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://tracker", headers=BROWSER, timeout=30
        ) as client:
            await eventually(
                lambda: _ready(client), timeout_s=60, what="the tracker ready on the broker"
            )
            yield client


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


def _value(record: Record) -> dict[str, Any]:
    return dict(orjson.loads(record.value))


@pytest.mark.timeout(300)
async def test_a_killed_broker_loses_no_acknowledged_event_and_duplicates_no_side_effect(
    broker: KafkaBroker,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site = site_spec(f"site-{uuid.uuid4().hex[:10]}", agents=())
    shoppers = Shoppers(site.site_id, site.site_key)

    # chat, on a database of its own that knows the site (invitations for unknown sites are
    # dropped); no agents, so it publishes no presence of its own
    name, chat_url = await create_database(database_url, "chat_broker_restart")
    await asyncio.to_thread(run_chat_command, chat_url, "migrate")
    await add_site(chat_url, site)
    chat = spawn_chat(
        "broker-restart", database_url=chat_url, bootstrap=broker.bootstrap, log_dir=tmp_path
    )
    # the worker serves its diagnostics, in case it stalls after the restart
    monkeypatch.setenv("TRIGGERS_DEBUG_ENDPOINTS", "true")
    worker = Worker(
        broker.bootstrap, f"triggers-broker-restart-{uuid.uuid4().hex[:6]}", tmp_path / "w.log"
    )
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=1)
    db = await asyncpg.create_pool(chat_url, min_size=1, max_size=2)
    tracker_settings = TrackerSettings(
        kafka_bootstrap=broker.bootstrap,
        sites=[{"site_id": site.site_id, "site_key": site.site_key, "allowed_origins": ["*"]}],
        follow_sites=False,
        create_topics=False,
        ack_timeout_s=ACK_TIMEOUT_S,
        requests_per_s_per_client=10_000,
        request_burst_per_client=10_000,
        events_per_s_per_visitor=10_000,
        event_burst_per_visitor=10_000,
    )
    try:
        await producer.start()
        kafka = Kafka(producer)
        await kafka.rules(big_cart_rules(site.site_id, min_browsing=0))  # a visit lasts 1 s
        await kafka.presence(site.site_id, agents=[(f"Agent {i}", 0, 50) for i in range(20)])
        await producer.stop()
        await asyncio.to_thread(worker.start)
        await asyncio.to_thread(worker.wait_for, site.site_id, free_slots=1000)
        await wait_ready(chat)

        async with running_tracker(tracker_settings) as client:
            shopping = [
                asyncio.create_task(shoppers.shop(client, f"c{i}"), name=f"shopper-{i}")
                for i in range(SHOPPERS)
            ]
            try:
                # under load, with invitations going out and chat storing them
                await eventually(
                    lambda: _invitations_stored(db, site.site_id, at_least=SHOPPERS),
                    timeout_s=90,
                    what="the first invitations stored by chat",
                )
                await asyncio.to_thread(broker.kill)
                killed_at = time.monotonic()

                async def refused_while_down() -> bool:
                    return (
                        len(shoppers.answers_between(killed_at, time.monotonic())) >= 2 * SHOPPERS
                    )

                await eventually(refused_while_down, timeout_s=60, what="answers while down")
                restarting_at = time.monotonic()
                await asyncio.to_thread(broker.start)
                await wait_until_serving(broker.bootstrap, timeout_s=60)
                back_at = time.monotonic()

                async def visitors_after_restart() -> bool:
                    return sum(when > back_at for when, _ in shoppers.visitors_done) >= 2 * SHOPPERS

                await eventually(
                    visitors_after_restart, timeout_s=90, what="whole visits after the restart"
                )
            finally:
                shoppers.stop.set()
                await asyncio.gather(*shopping)

        # 1. While the broker was down: 503, never a 2xx (nor anything else).
        while_down = shoppers.answers_between(killed_at, restarting_at)
        assert while_down
        assert {a.status for a in while_down} == {503}
        assert {a.status for a in shoppers.answers} == {200, 503}

        # 2. Every acknowledged event on tracking.events, as it was acknowledged; more than once
        # only if its shopper resent it after a 503 (the first write may have reached the log).
        def mine(record: Record) -> bool:
            return _value(record).get("site_id") == site.site_id

        def every_acknowledged(found: list[Record]) -> bool:
            return shoppers.acknowledged.keys() <= {_value(r)["event_id"] for r in found}

        found = await read_records(
            broker.bootstrap,
            topics.TRACKING_EVENTS.name,
            match=mine,
            until=every_acknowledged,
            drain=True,
            timeout_s=60,
        )
        copies = Counter(_value(r)["event_id"] for r in found)
        duplicated = {e: n for e, n in copies.items() if n > 1 and e in shoppers.acknowledged}
        unexplained = {e: n for e, n in duplicated.items() if e not in shoppers.resent}
        assert not unexplained, f"events written more than once though sent once: {unexplained}"
        assert all(n == 2 for n in duplicated.values()), f"more than one extra copy: {duplicated}"
        for record in found:
            value = _value(record)
            sent = shoppers.acknowledged.get(value["event_id"])
            if sent is not None:
                assert (value["visitor_id"], value["payload"]) == (
                    sent["visitor_id"],
                    sent["payload"],
                )

        # 3. chat's activity recorder went on from its committed offsets: every acknowledged
        # event stored (one row per event id), none skipped, nothing else.
        async def every_event_recorded() -> bool:
            rows = await db.fetch(
                "SELECT event_id FROM chat.activity WHERE site_id = $1", site.site_id
            )
            return shoppers.acknowledged.keys() <= {str(r["event_id"]) for r in rows}

        await eventually(every_event_recorded, timeout_s=60, what="every event in chat.activity")
        activity = await db.fetch(
            "SELECT event_id FROM chat.activity WHERE site_id = $1", site.site_id
        )
        assert {str(r["event_id"]) for r in activity} == set(copies)

        # 4. The worker ran through the outage: each visitor with a cart invited, once.
        carts = {
            e["visitor_id"] for e in shoppers.acknowledged.values() if e["type"] == "cart_updated"
        }

        def every_cart_invited(found: list[Record]) -> bool:
            return carts <= {_value(r)["visitor_id"] for r in found}

        try:
            invited = await read_records(
                broker.bootstrap,
                topics.CHAT_INVITATIONS.name,
                match=mine,
                until=every_cart_invited,
                drain=True,
                timeout_s=90,
            )
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; the worker: {_worker_state(worker, tmp_path)}") from exc
        invitation_ids: dict[str, set[str]] = defaultdict(set)
        for record in invited:
            value = _value(record)
            assert value["type"] == "invitation.issued"
            invitation_ids[value["visitor_id"]].add(value["payload"]["invitation_id"])
        assert set(invitation_ids) == carts
        twice = {v: ids for v, ids in invitation_ids.items() if len(ids) > 1}
        assert not twice, f"visitors invited more than once: {twice}"

        # 5. ... and chat's invitations consumer stored each invitation once.
        async def every_invitation_stored() -> bool:
            return await _invitations_stored(db, site.site_id, at_least=len(carts))

        await eventually(every_invitation_stored, timeout_s=60, what="every invitation in chat")
        stored = await db.fetch(
            "SELECT visitor_id, invitation_id FROM chat.invitations WHERE site_id = $1",
            site.site_id,
        )
        assert sorted((r["visitor_id"], str(r["invitation_id"])) for r in stored) == sorted(
            (v, next(iter(ids))) for v, ids in invitation_ids.items()
        )
    finally:
        await db.close()
        await producer.stop()
        worker.stop()
        stop_chat(chat)
        await drop_database(database_url, name)


async def _invitations_stored(db: asyncpg.Pool, site_id: str, *, at_least: int) -> bool:
    count = await db.fetchval("SELECT count(*) FROM chat.invitations WHERE site_id = $1", site_id)
    return bool(count >= at_least)


def _worker_state(worker: Worker, into: Path) -> str:
    """Where its log and diagnostics (consumer positions, task stacks) were saved."""
    saved = [str(worker.log_path)]
    for what in ("consumer", "tasks"):
        try:
            url = f"{worker.url}/v1/debug/{what}"
            body = httpx.get(url, headers=worker.auth, timeout=10).text
        except httpx.HTTPError as exc:
            body = repr(exc)
        (into / f"worker-{what}.json").write_text(body)
        saved.append(str(into / f"worker-{what}.json"))
    alive = worker.process is not None and worker.process.poll() is None
    return f"{'alive' if alive else 'exited'}; see {', '.join(saved)}"
