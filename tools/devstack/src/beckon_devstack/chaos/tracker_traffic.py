"""Tracker traffic for the chaos battery: simulated visitors posting snippet batches
(`POST /v1/collect?k=<site key>`, with Origin) and Segment batches (`POST /v1/batch`, the write
key as basic auth), every event with a fresh id, spread over the tracker's instances; a ledger of
what the tracker said it accepted; and the check of that ledger against `tracking.events`, read
directly from the broker.

The traffic runs on its own event loop in its own thread, so `start()` and `stop()` are plain
calls: a fault schedule (a test, bench/chaos.py) blocks on a broker restart without stalling the
visitors. A request that got no 2xx is never sent again: each request carries new ids, so an
accepted id on the topic twice is a duplicate the system made, not one the client made by
resending (the snippet's resend-after-503 duplicates are the consumers' to drop, by event id).
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from beckon_contracts.ids import uuid7

from beckon_devstack.chaos.target import Target

TOPIC = "tracking.events"
BROWSER_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
REQUEST_TIMEOUT_S = 30.0  # longer than the tracker's ack timeout: its 503 comes first


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _id() -> str:
    return str(uuid7())


@dataclass
class TrackerLedger:
    """What the load generator was told. `accepted_*` are ids answered 2xx; `refused_*` ids of
    requests answered otherwise or not at all (they may or may not be on the topic)."""

    accepted_events: set[str] = field(default_factory=set)  # snippet event_id
    accepted_messages: set[str] = field(default_factory=set)  # Segment messageId
    refused_events: set[str] = field(default_factory=set)
    refused_messages: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # no answer: by exception type
    no_retry_after: int = 0  # 503s without Retry-After (the snippet needs it)
    # (monotonic time, events accepted by that answer): events/s over any window
    accepted_at: list[tuple[float, int]] = field(default_factory=list)
    # instance index -> monotonic times of its 2xx answers: when a faulted instance came back
    answered_by: dict[int, list[float]] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return len(self.accepted_events) + len(self.accepted_messages)

    @property
    def server_errors(self) -> int:
        # a snapshot first: the traffic's thread may add a status while this one reads
        statuses = list(self.statuses.items())
        return sum(n for status, n in statuses if status >= 500 and status != 503)

    @property
    def no_answer(self) -> int:
        return sum(list(self.errors.values()))

    def accepted_between(self, start: float, end: float) -> int:
        return sum(n for at, n in self.accepted_at if start <= at < end)

    def last_accepted_before(self, at: float) -> float | None:
        times = [t for t, _ in self.accepted_at if t < at]
        return max(times) if times else None

    def first_accepted_after(self, at: float, instance: int | None = None) -> float | None:
        """The first 2xx at or after `at` (from that instance, if given)."""
        if instance is None:
            times = [t for t, _ in self.accepted_at if t >= at]
        else:
            times = [t for t in self.answered_by.get(instance, []) if t >= at]
        return min(times) if times else None

    def _accepted(self, instance: int, events: int) -> None:
        now = time.monotonic()
        self.accepted_at.append((now, events))
        self.answered_by.setdefault(instance, []).append(now)


class TrackerTraffic:
    """`concurrency` visitors sending in a closed loop (or at `rate` requests/s in total),
    `events` events per request, half snippet, half Segment; visitor n sends to instance
    n mod instances, so give at least as many visitors as instances."""

    name = "tracker"

    def __init__(
        self,
        target: Target,
        origin: str,
        *,
        concurrency: int = 8,
        events: int = 3,
        rate: float | None = None,
    ) -> None:
        if not target.tracker_urls:
            raise ValueError("the target has no tracker")
        self.target = target
        self.origin = origin
        self.concurrency = concurrency
        self.events = events
        self.rate = rate
        self.ledger = TrackerLedger()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sent = 0
        self._auth = "Basic " + base64.b64encode(f"{target.write_key}:".encode()).decode()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="chaos-tracker-traffic")
        self._thread.start()

    def stop(self) -> None:
        """Stop sending and wait for every request in flight to be answered (or to fail)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.concurrency * 2)
        async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, limits=limits) as client:
            await asyncio.gather(*(self._visitor(client, n) for n in range(self.concurrency)))

    async def _visitor(self, client: httpx.AsyncClient, n: int) -> None:
        urls = self.target.tracker_urls
        interval = self.concurrency / self.rate if self.rate else 0.0
        next_at = time.monotonic() + (interval * n / self.concurrency)
        visitor = uuid.uuid4().hex
        requests = 0
        while not self._stop.is_set():
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += interval
            if requests % 20 == 19:
                visitor = uuid.uuid4().hex  # a new visitor every 20 requests
            # each visitor keeps to one instance, as behind a sticky load balancer: the
            # visitors of an instance under a fault wait; the others' pace is what is held
            instance = n % len(urls)
            if (n + requests) % 2:
                await self._segment(client, instance, visitor)
            else:
                await self._collect(client, instance, visitor)
            requests += 1

    async def _collect(self, client: httpx.AsyncClient, instance: int, visitor: str) -> None:
        url = self.target.tracker_urls[instance]
        ids = [_id() for _ in range(self.events)]
        body = {
            "visitor_id": visitor,
            "session_id": f"s-{visitor}",
            "sent_at": _now(),
            "context": {
                "page": {"url": f"{self.origin}/p/tent", "title": "Tent"},
                "library": "beckon.js/chaos",
            },
            "events": [
                {
                    "event_id": event_id,
                    "type": "page_viewed",
                    "occurred_at": _now(),
                    "payload": {"page_type": "product"},
                }
                for event_id in ids
            ],
        }
        headers = {"Origin": self.origin, "User-Agent": BROWSER_UA}
        status = await self._post(
            client, f"{url}/v1/collect?k={self.target.site_key}", body, headers
        )
        ok = status is not None and 200 <= status < 300
        (self.ledger.accepted_events if ok else self.ledger.refused_events).update(ids)
        if ok:
            self.ledger._accepted(instance, len(ids))

    async def _segment(self, client: httpx.AsyncClient, instance: int, visitor: str) -> None:
        url = self.target.tracker_urls[instance]
        ids = [f"chaos-{uuid.uuid4().hex}" for _ in range(self.events)]
        body = {
            "batch": [
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "messageId": message_id,
                    "anonymousId": visitor,
                    "timestamp": _now(),
                    "properties": {"product_id": "tent", "price": 150.0, "currency": "EUR"},
                }
                for message_id in ids
            ],
            "sentAt": _now(),
        }
        headers = {"Authorization": self._auth, "User-Agent": "analytics-python/2.3"}
        status = await self._post(client, f"{url}/v1/batch", body, headers)
        ok = status is not None and 200 <= status < 300
        (self.ledger.accepted_messages if ok else self.ledger.refused_messages).update(ids)
        if ok:
            self.ledger._accepted(instance, len(ids))

    async def _post(
        self, client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> int | None:
        try:
            response = await client.post(
                url,
                content=orjson.dumps(body),
                headers={**headers, "Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            self.ledger.errors[type(exc).__name__] += 1
            # an instance that died mid-request: do not hammer it while it restarts
            await asyncio.sleep(0.05)
            return None
        self.ledger.statuses[response.status_code] += 1
        if response.status_code == 503:
            if "retry-after" not in response.headers:
                self.ledger.no_retry_after += 1
            await asyncio.sleep(0.05)
        return response.status_code


@dataclass
class TrackerCheck:
    """The ledger against the topic: `lost` and `duplicated` must be empty."""

    accepted: int
    on_topic: int  # distinct ledger ids found
    lost: list[str]
    duplicated: dict[str, int]
    refused_but_stored: int  # answered non-2xx (or not at all) yet on the topic: allowed
    records_read: int

    @property
    def ok(self) -> bool:
        return not self.lost and not self.duplicated


async def read_tracking(bootstrap: str) -> tuple[Counter[str], Counter[str], int]:
    """Counts per event_id and per Segment message id of every record on the topic, read from
    the beginning up to the end offsets as they are when the read starts."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    by_event: Counter[str] = Counter()
    by_message: Counter[str] = Counter()
    read = 0
    try:
        partitions = consumer.partitions_for_topic(TOPIC)
        deadline = time.monotonic() + 60
        while not partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no metadata for {TOPIC}")
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(TOPIC)
            await asyncio.sleep(0.1)
        assigned = [TopicPartition(TOPIC, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        pending = {tp for tp in assigned if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    read += 1
                    value = orjson.loads(record.value) if record.value else {}
                    by_event[str(value.get("event_id"))] += 1
                    message_id = (value.get("context") or {}).get("message_id")
                    if message_id:
                        by_message[str(message_id)] += 1
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
    finally:
        await consumer.stop()
    return by_event, by_message, read


def check_tracker(ledger: TrackerLedger, bootstrap: str) -> TrackerCheck:
    """Every accepted event on `tracking.events` exactly once (snippet events by event_id,
    Segment messages by messageId: their event id is derived from it)."""
    by_event, by_message, read = asyncio.run(read_tracking(bootstrap))
    lost = [i for i in ledger.accepted_events if by_event[i] == 0]
    lost += [m for m in ledger.accepted_messages if by_message[m] == 0]
    duplicated = {i: by_event[i] for i in ledger.accepted_events if by_event[i] > 1}
    duplicated |= {m: by_message[m] for m in ledger.accepted_messages if by_message[m] > 1}
    stored_refused = sum(1 for i in ledger.refused_events if by_event[i])
    stored_refused += sum(1 for m in ledger.refused_messages if by_message[m])
    return TrackerCheck(
        accepted=ledger.accepted,
        on_topic=ledger.accepted - len(lost),
        lost=sorted(lost),
        duplicated=duplicated,
        refused_but_stored=stored_refused,
        records_read=read,
    )
