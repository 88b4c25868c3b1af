"""Triggers worker throughput and event-to-invitation latency against a real broker.

    uv run python bench/triggers.py                 # 200k events, 100k visitors, 2,000 events/s

Starts Apache Kafka (or uses --bootstrap), publishes a 20-rule set and team presence for site
`bench`, pre-produces --events tracking records (the tracker's JSON format, --visitors
distinct visitors, a realistic mix) to `tracking.events`, and measures:
  1. ceiling: a bare aiokafka consume → orjson.loads → produce loop draining those events
  2. one `python -m triggers` worker draining the same events: events/s, ratio to (1)
  3. the tracker plus that worker at --rate events/s through POST /v1/collect for --seconds:
     latency from the tracker's 200 for a trigger event to its invitation being consumed
     from `chat.invitations` (matched by `payload.trigger_event_id`), p50/p99/max
The last line is `RESULT {json}`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `bench` importable, bench/ not shadowing packages
    sys.path[:] = [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import http.client
import json
import multiprocessing as mp
import queue
import random
import re
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from beckon_contracts import topics
from beckon_contracts.envelope import record_key
from beckon_contracts.ids import uuid7
from beckon_contracts.presence import AgentPresence, TeamPresence, presence_key
from beckon_contracts.rules import SiteRules
from beckon_contracts.rules_config import rules_record
from beckon_contracts.tracking import parse_tracking_event
from beckon_devstack.kafka import KAFKA_VERSION
from beckon_devstack.ports import free_port
from beckon_messaging import ensure_topics, make_producer

from bench._common import (
    CpuMeter,
    HttpConnection,
    Service,
    http_request,
    machine_facts,
    open_connection,
    percentile_ms,
    python_env,
    start_service,
    tail,
    wait_http_ok,
)
from bench._stack import start_broker

SITE_ID = "bench"
SITE_KEY = "bench-site-key-0001"
WORKER_TOKEN = uuid.uuid4().hex  # the worker's API token (TRIGGERS_API_TOKEN) for this run
ORIGIN = "https://shop.bench.test"
TEAMS = ("sales", "support", "vip")
AGENTS_PER_TEAM = 100
CHATS_PER_AGENT = 50  # 5,000 free slots per team: admission refuses for capacity rarely
TRIGGER_RULE = "bench-latency-probe"
TRIGGER_CART_VALUE = 5_000.0  # background carts stay far below this
BARE_OUT_TOPIC = topics.Topic(
    name="bench.bare-loop-out", partitions=12, key="site:visitor", retention_ms=3_600_000
)
TARGETS = {
    "events_per_s_per_worker": (">=", 5_000),
    "ratio_to_bare_loop": (">=", 0.3),
    "p99_invite_ms": ("<", 150),
}
# The share of each event type in the pre-produced stream (percent).
EVENT_MIX: tuple[tuple[str, int], ...] = (
    ("page_viewed", 45),
    ("product_viewed", 25),
    ("heartbeat", 15),
    ("cart_updated", 10),
    ("checkout_started", 3),
    ("order_completed", 1),
    ("identified", 1),
)
PAGE_TYPES: tuple[tuple[str, int], ...] = (
    ("home", 15),
    ("category", 35),
    ("search", 12),
    ("cart", 10),
    ("content", 10),
    ("sale", 10),  # a category page under /sale
    ("help", 8),  # a content page under /help
)
CATEGORIES = ("shoes", "jackets", "knitwear", "bags", "tents", "shirts", "kitchen", "outdoor")
_NAMES = ("Trail", "Summit", "Alpine", "Ridge", "Canyon", "Harbor", "Meadow", "Glacier")
_THINGS = ("Runner", "Shell", "Sweater", "Pack", "Tent", "Tee", "Kettle", "Lantern")
PRODUCTS = tuple(
    (
        f"sku-{n:05d}",
        f"{_NAMES[n % 8]} {_THINGS[(n // 8) % 8]} {n}",
        CATEGORIES[(n // 8) % 8],
        round(9.9 + (n * 37 % 300) + 0.95, 2),
    )
    for n in range(500)
)
# Product popularity is skewed: a few products get most views (repeat views happen).
PRODUCT_WEIGHTS = tuple(1.0 / (1 + n) ** 0.8 for n in range(len(PRODUCTS)))
CAMPAIGNS = (
    {"source": "newsletter", "medium": "email", "name": "winter-sale"},
    {"source": "google", "medium": "cpc", "name": "brand"},
    {"source": "facebook", "medium": "social", "name": "retargeting"},
    {"source": "newsletter", "medium": "email", "name": "new-arrivals"},
)
REFERRERS = ("https://www.google.com/", "https://www.bing.com/", "https://duckduckgo.com/")
USER_AGENTS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        {"browser": "Chrome", "browser_version": "131", "os": "Windows", "device": "desktop"},
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        {"browser": "Mobile Safari", "browser_version": "18", "os": "iOS", "device": "mobile"},
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        {"browser": "Firefox", "browser_version": "133", "os": "Linux", "device": "desktop"},
    ),
)


# ---- the rule set ---------------------------------------------------------------------------


def _rule(rule_id: str, when: dict[str, Any], message: str, **more: Any) -> dict[str, Any]:
    return {
        "id": rule_id,
        "name": rule_id.replace("-", " ").capitalize(),
        "when": when,
        "message": message,
        "holdout_percent": 10,
        **more,
    }


def bench_rules(version: int) -> SiteRules:
    """20 rules of the kinds stores write, one of them the latency probe (priority 1000)."""
    not_buying = {"not": {"page_type": ["checkout", "confirmation"]}}
    rules = [
        _rule(
            TRIGGER_RULE,
            {"all": [{"event": "cart_updated"}, {"cart_value": {"gte": TRIGGER_CART_VALUE}}]},
            "A cart of {cart_value}! Shall {agent_name} check delivery for you?",
            priority=1000,
            team="vip",
        ),
        _rule(
            "checkout-idle",
            {"all": [{"page_type": "checkout"}, {"checkout_idle": {"gte": "45s"}}]},
            "Anything unclear about delivery or payment for your {cart_value} order?",
            priority=100,
            limits={"once_per": "session", "cooldown": "5m"},
        ),
        _rule(
            "big-cart",
            {
                "all": [
                    {"cart_value": {"gte": 150}},
                    {"page_type": ["cart", "product", "category"]},
                    {"orders": {"lt": 1}},
                ]
            },
            "Nice picks! Your cart is at {cart_value}. Questions about sizes or delivery?",
            priority=80,
            limits={"once_per": "session", "max_per_hour": 2000},
        ),
        _rule(
            "product-4th-view",
            {"all": [{"page_type": "product"}, {"product_views": {"gte": 4}}]},
            "You keep coming back to the {product_name}. Any question I can answer?",
            priority=70,
            limits={"once_per": "visitor"},
        ),
        _rule(
            "hot-lead",
            {"all": [{"segment": "hot"}, {"orders": {"lt": 1}}]},
            "Hi, I'm {agent_name}. Happy to help you choose, just ask.",
            priority=60,
        ),
        _rule(
            "returning-product",
            {
                "all": [
                    {"returning": True},
                    {"page_type": "product"},
                    {"time_on_page": {"gte": "30s"}},
                ]
            },
            "Welcome back! Still thinking about the {product_name} at {product_price}?",
            priority=50,
        ),
        _rule(
            "email-campaign",
            {"all": [{"from_email": True}, {"time_on_site": {"gte": "40s"}}, not_buying]},
            "Thanks for coming over from our newsletter! Looking for the offer?",
            priority=40,
        ),
        _rule(
            "sale-pages",
            {
                "all": [
                    {"any": [{"url": "*/sale*"}, {"url": {"contains": "promo=sale"}}]},
                    {"time_on_page": {"gte": "20s"}},
                ]
            },
            "Hunting for a bargain? Tell me your size and I'll check the stock.",
            priority=30,
        ),
        _rule(
            "high-score",
            {"all": [{"score": {"gte": 45}}, {"time_on_site": {"gte": "1m"}}, not_buying]},
            "You seem to know what you want. Can I help you decide?",
            priority=55,
        ),
        _rule(
            "paid-search",
            {
                "all": [
                    {"source": "google"},
                    {"medium": "cpc"},
                    {"page_type": "product"},
                    {"product_views": {"gte": 2}},
                ]
            },
            "Found what you searched for? The {product_name} ships tomorrow.",
            priority=45,
        ),
        _rule(
            "category-browser",
            {
                "all": [
                    {"page_type": "category"},
                    {"time_on_site": {"gte": "2m"}},
                    {"cart_items": {"lt": 1}},
                ]
            },
            "Browsing for a while? Tell me what you need and I'll point you to it.",
            priority=20,
        ),
        _rule(
            "search-struggle",
            {"all": [{"page_type": "search"}, {"time_on_page": {"gte": "45s"}}]},
            "Not finding it? Describe what you're after and I'll search with you.",
            priority=35,
        ),
        _rule(
            "tent-shopper",
            {
                "all": [
                    {"categories_viewed": ["tents", "jackets"]},
                    {"time_on_site": {"gte": "90s"}},
                ]
            },
            "Planning a trip? I can help you pick gear that fits together.",
            priority=25,
        ),
        _rule(
            "known-customer",
            {
                "all": [
                    {"identified": True},
                    {"page_type": "product"},
                    {"time_on_page": {"gte": "20s"}},
                ]
            },
            "Hi again! Questions about the {product_name}? Your usual sizes are on file.",
            priority=65,
            team="vip",
        ),
        _rule(
            "help-pages",
            {
                "all": [
                    {"any": [{"url": "*/help*"}, {"url": "*/faq*"}]},
                    {"time_on_page": {"gte": "30s"}},
                ]
            },
            "Reading up on something? Ask me directly, it's quicker.",
            priority=90,
            team="support",
        ),
        _rule(
            "shipping-question",
            {"all": [{"url": {"contains": "/help/shipping"}}, {"time_on_page": {"gte": "15s"}}]},
            "Questions about shipping? I can tell you when your order would arrive.",
            priority=95,
            team="support",
        ),
        _rule(
            "full-cart",
            {"all": [{"cart_items": {"gte": 4}}, {"page_type": "cart"}]},
            "That's a full cart ({cart_items} items)! Want me to check a bundle discount?",
            priority=75,
        ),
        _rule(
            "winter-campaign",
            {"all": [{"campaign": "winter-sale"}, {"time_on_site": {"gte": "30s"}}]},
            "Welcome to the winter sale! Looking for something specific?",
            priority=42,
        ),
        _rule(
            "price-lingering",
            {
                "all": [
                    {"seen_price": True},
                    {"time_on_page": {"gte": "1m"}},
                    {"orders": {"lt": 1}},
                ]
            },
            "Weighing it up? I can tell you about returns and price matching.",
            priority=15,
        ),
        _rule(
            "default-3min",
            {"all": [{"time_on_site": {"gte": "3m"}}, not_buying]},
            "You've been looking around for a few minutes. Want a quick recommendation?",
            priority=-100,
            default=True,
            holdout_percent=20,
            limits={"once_per": "session", "cooldown": "15m"},
        ),
    ]
    return SiteRules.model_validate(
        {"site_id": SITE_ID, "version": version, "min_browsing": "20s", "rules": rules}
    )


def team_presence(team: str) -> TeamPresence:
    agents = [
        AgentPresence(
            agent_id=f"{team}-{n}",
            name=f"Agent {n}",
            status="online",
            open_chats=0,
            max_chats=CHATS_PER_AGENT,
        )
        for n in range(AGENTS_PER_TEAM)
    ]
    return TeamPresence(
        event_id=uuid7(), occurred_at=datetime.now(UTC), site_id=SITE_ID, team=team, agents=agents
    )


# ---- the tracking events (as the tracker writes them) ---------------------------------------


def _iso(epoch_s: float) -> str:
    """pydantic's rendering of an aware datetime: microseconds and a Z."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_s))
    return f"{seconds}.{round(epoch_s * 1e6) % 1_000_000:06d}Z"


@dataclass(eq=False)  # identity: the pool removes a finished session by `is`
class Session:
    visitor_id: str
    session_id: str
    at: float
    events_left: int
    ua: int
    campaign: dict[str, str] | None
    referrer: str | None
    url: str
    title: str
    landing: bool = True
    cart: list[dict[str, Any]] = field(default_factory=list)


class Stream:
    """A deterministic stream of tracking records for `visitors` visitors.

    Sessions are interleaved (a pool of open ones); each session's events are 5-60 s apart
    in event time, so time on site and on page grow. Session lengths are sized so that the
    stream reaches every visitor once and ~15 % of sessions are returning visits.
    """

    ACTIVE = 2_000
    STEP_S = 1 / 2_000  # the stream's clock: as if recorded at 2,000 events/s

    def __init__(self, seed: int, visitors: int, events: int, start_at: float) -> None:
        self.rng = random.Random(seed)
        self.visitors = [
            uuid.UUID(int=self.rng.getrandbits(128), version=4).hex for _ in range(visitors)
        ]
        self.next_new = 0
        self.sessions_started = 0
        self.seen: set[str] = set()
        self.start_at = start_at
        # events per session so that all visitors appear: sessions ≈ 1.15 x visitors
        self.mean_length = max(1.0, events / (1.15 * visitors))
        self.kinds = [kind for kind, _ in EVENT_MIX]
        self.kind_weights = [w for _, w in EVENT_MIX]
        self.page_types = [p for p, _ in PAGE_TYPES]
        self.page_weights = [w for _, w in PAGE_TYPES]
        self.cum_product_weights = list(_cumulative(PRODUCT_WEIGHTS))
        self.pool: list[Session] = []
        self.clock = start_at
        self.contexts = [
            {
                "locale": "de-DE",
                "timezone": "Europe/Berlin",
                "screen_width": 1440,
                "screen_height": 900,
                "library": "beckon.js/0.1.0",
                "ip": "127.0.0.0",
                "user_agent": agent,
                "user_agent_info": info,
                "is_bot": False,
                "source": "snippet",
            }
            for agent, info in USER_AGENTS
        ]

    def _length(self) -> int:
        rng = self.rng
        if rng.random() < 0.35:  # bounces
            return 1
        extra = max(0.0, (self.mean_length - 0.35) / 0.65 - 1)
        return 1 + int(rng.expovariate(1 / extra) + 0.5) if extra > 0 else 1

    def _new_session(self) -> Session:
        rng = self.rng
        if self.next_new < len(self.visitors) and (rng.random() > 0.15 or not self.next_new):
            visitor = self.visitors[self.next_new]
            self.next_new += 1
        else:
            visitor = self.visitors[rng.randrange(max(1, self.next_new))]
        self.sessions_started += 1
        campaign = rng.choice(CAMPAIGNS) if rng.random() < 0.2 else None
        referrer = rng.choice(REFERRERS) if campaign is None and rng.random() < 0.5 else None
        url = f"{ORIGIN}/"
        if campaign:
            url += f"?utm_source={campaign['source']}&utm_medium={campaign['medium']}"
        return Session(
            visitor_id=visitor,
            session_id=f"s{self.sessions_started}",
            at=self.clock,
            events_left=self._length(),
            ua=rng.randrange(len(USER_AGENTS)),
            campaign=campaign,
            referrer=referrer,
            url=url,
            title="Ridgeline Outfitters",
        )

    def _product(self) -> tuple[str, str, str, float]:
        index = self.rng.choices(range(len(PRODUCTS)), cum_weights=self.cum_product_weights)[0]
        return PRODUCTS[index]

    def session_records(self, count: int) -> list[tuple[bytes, bytes, str]]:
        """Up to `count` consecutive records of one session (a snippet batch)."""
        self._top_up()
        session = self.pool[self.rng.randrange(len(self.pool))]
        batch = [self.record(session)]
        while len(batch) < count and session.events_left > 0:
            batch.append(self.record(session))
        return batch

    def _top_up(self) -> None:
        if len(self.pool) < self.ACTIVE:
            self.pool.append(self._new_session())

    def record(self, session: Session | None = None) -> tuple[bytes, bytes, str]:
        """key, value and event type of the next record (of a random open session)."""
        rng = self.rng
        self.clock += self.STEP_S
        if session is None:
            self._top_up()
            session = self.pool[rng.randrange(len(self.pool))]
        if not session.landing:
            session.at = max(session.at + rng.uniform(5, 60), self.clock)
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        payload = self._payload(session, kind)
        page: dict[str, Any] = {
            "url": session.url,
            "path": _path(session.url),
            "title": session.title,
        }
        if session.landing and session.referrer:
            page["referrer"] = session.referrer
        context: dict[str, Any] = {"page": page}
        if session.campaign:
            context["campaign"] = session.campaign
        context.update(self.contexts[session.ua])
        at = _iso(session.at)
        value = {
            "event_id": str(uuid7(int(session.at * 1000))),
            "type": kind,
            "schema_version": 1,
            "occurred_at": at,
            "received_at": at,
            "site_id": SITE_ID,
            "visitor_id": session.visitor_id,
            "session_id": session.session_id,
            "context": context,
            "payload": payload,
        }
        self.seen.add(session.visitor_id)
        session.landing = False
        session.events_left -= 1
        if session.events_left <= 0:
            self.pool.remove(session)
        return record_key(SITE_ID, session.visitor_id), orjson.dumps(value), kind

    def _payload(self, session: Session, kind: str) -> dict[str, Any]:
        rng = self.rng
        if kind == "page_viewed":
            page_type = rng.choices(self.page_types, self.page_weights)[0]
            category = rng.choice(CATEGORIES)
            session.url, session.title = {
                "home": (f"{ORIGIN}/", "Ridgeline Outfitters"),
                "category": (f"{ORIGIN}/c/{category}", category.capitalize()),
                "search": (f"{ORIGIN}/search?q={category}", f"Search: {category}"),
                "cart": (f"{ORIGIN}/cart", "Your cart"),
                "content": (f"{ORIGIN}/stories/{category}", "Stories"),
                "sale": (f"{ORIGIN}/sale/{category}", "Sale"),
                "help": (f"{ORIGIN}/help/{rng.choice(('shipping', 'returns', 'sizes'))}", "Help"),
            }[page_type]
            real_type = {"sale": "category", "help": "content"}.get(page_type, page_type)
            payload: dict[str, Any] = {"page_type": real_type}
            if page_type == "search":
                payload["search_query"] = category
            return payload
        if kind == "product_viewed":
            product_id, name, category, price = self._product()
            session.url, session.title = f"{ORIGIN}/p/{product_id}", name
            return {
                "product_id": product_id,
                "name": name,
                "category": category,
                "price": price,
                "currency": "EUR",
            }
        if kind in ("cart_updated", "checkout_started", "order_completed"):
            if kind == "cart_updated" or not session.cart:
                product_id, name, category, price = self._product()
                session.cart.append(
                    {
                        "product_id": product_id,
                        "name": name,
                        "category": category,
                        "price": price,
                        "quantity": rng.randint(1, 2),
                    }
                )
            items = list(session.cart)
            total = round(sum(i["price"] * i["quantity"] for i in items), 2)
            if kind == "cart_updated":
                session.url, session.title = f"{ORIGIN}/cart", "Your cart"
                return {"items": items, "value": total, "currency": "EUR"}
            if kind == "checkout_started":
                session.url, session.title = f"{ORIGIN}/checkout", "Checkout"
                return {"value": total, "currency": "EUR", "items": items}
            order_id = f"o-{rng.getrandbits(48):012x}"
            session.url, session.title = f"{ORIGIN}/order/{order_id}", "Thank you"
            session.cart = []
            return {"order_id": order_id, "value": total, "currency": "EUR", "items": items}
        if kind == "identified":
            return {
                "user_id": f"u-{session.visitor_id[:12]}",
                "traits": {"plan": rng.choice(("member", "gold")), "newsletter": True},
            }
        seconds = rng.randint(5, 240)
        return {"seconds_on_page": seconds, "active_seconds": rng.randint(0, seconds)}


def _cumulative(weights: tuple[float, ...]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _path(url: str) -> str:
    rest = url.split("://", 1)[-1]
    slash = rest.find("/")
    return rest[slash:] if slash >= 0 else "/"


def build_stream(
    events: int, visitors: int, seed: int
) -> tuple[list[tuple[bytes, bytes, str]], dict[str, Any]]:
    """The records to pre-produce, and facts about them; every 97th is checked against the
    contract (a record the tracker could not have written would measure the wrong thing)."""
    # event times end in the past (sessions run ahead of the stream's clock by their gaps)
    stream = Stream(seed, visitors, events, time.time() - events * Stream.STEP_S - 3_600)
    records = [stream.record() for _ in range(events)]
    for _, value, _ in records[::97]:
        parse_tracking_event(value)
    mix = Counter(kind for _, _, kind in records)
    facts = {
        "distinct_visitors": len(stream.seen),
        "sessions": stream.sessions_started,
        "mean_events_per_session": round(events / max(1, stream.sessions_started), 2),
        "mean_record_bytes": round(sum(len(v) for _, v, _ in records) / max(1, events)),
        "mix_pct": {kind: round(100 * n / events, 1) for kind, n in mix.most_common()},
    }
    return records, facts


# ---- broker helpers -------------------------------------------------------------------------


async def publish_setup(bootstrap: str, rules: SiteRules) -> None:
    producer = make_producer(bootstrap, "bench-triggers-setup")
    await producer.start()
    try:
        record = rules_record(rules).model_dump_json().encode()
        await producer.send_and_wait(topics.RULES_CONFIG.name, record, key=SITE_ID.encode())
        for team in TEAMS:
            value = team_presence(team).model_dump_json().encode()
            await producer.send_and_wait(
                topics.AGENTS_PRESENCE.name, value, key=presence_key(SITE_ID, team)
            )
    finally:
        await producer.stop()


async def produce_records(
    bootstrap: str, records: list[tuple[bytes, bytes, str]]
) -> tuple[float, dict[int, int]]:
    """Pre-produce with a fast batching producer: events/s of the load, and per partition
    the offset after our last record (from the acks)."""
    producer = make_producer(
        bootstrap, "bench-triggers-preload", linger_ms=50, max_batch_size=524_288
    )
    await producer.start()
    started = time.perf_counter()
    ends: dict[int, int] = {}
    try:
        futures: list[asyncio.Future[Any]] = []

        async def settle() -> None:
            for meta in await asyncio.gather(*futures):
                ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
            futures.clear()

        for key, value, kind in records:
            headers = [("event_type", kind.encode())]
            futures.append(
                await producer.send(topics.TRACKING_EVENTS.name, value, key=key, headers=headers)
            )
            if len(futures) >= 20_000:
                await settle()
        await settle()
    finally:
        await producer.stop()
    return len(records) / (time.perf_counter() - started), ends


def _partitions(topic: topics.Topic) -> list[TopicPartition]:
    return [TopicPartition(topic.name, p) for p in range(topic.partitions)]


async def topic_size(bootstrap: str, topic: topics.Topic, ends: dict[int, int]) -> int:
    """Records in `topic`: `ends` (or the broker's end offset where we produced nothing) minus
    the beginning offsets. A consumer group new to the topic reads all of them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = _partitions(topic)
        begin = await consumer.beginning_offsets(parts)
        end = await consumer.end_offsets(parts)
        return sum(ends.get(tp.partition, end[tp]) - begin[tp] for tp in parts)
    finally:
        await consumer.stop()


async def committed_total(admin: AIOKafkaAdminClient, group: str, topic: topics.Topic) -> int:
    """Sum of the group's committed offsets on `topic`."""
    offsets = await admin.list_consumer_group_offsets(group, partitions=_partitions(topic))
    return sum(max(0, meta.offset) for meta in offsets.values() if meta is not None)


# ---- ceiling: a bare consume → parse → produce loop ------------------------------------------


@dataclass
class LoopResult:
    events: int = 0
    measured_events: int = 0
    seconds: float = 0.0
    failure: str | None = None

    @property
    def events_per_s(self) -> float:
        return self.measured_events / self.seconds if self.seconds > 0 else 0.0


async def _bare_loop(
    bootstrap: str, group: str, total: int, batch_size: int, timeout_s: float
) -> LoopResult:
    consumer = AIOKafkaConsumer(
        topics.TRACKING_EVENTS.name,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=batch_size,
    )
    producer = make_producer(bootstrap, "bench-bare-loop", linger_ms=5)
    await producer.start()
    await consumer.start()
    result = LoopResult()
    first_at = last_commit = 0.0
    first_batch = 0
    deadline = time.monotonic() + timeout_s
    try:
        while result.events < total and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=batch_size)
            count = 0
            for records in batches.values():
                for record in records:
                    data = orjson.loads(record.value or b"")
                    value = orjson.dumps(
                        {
                            "site_id": data["site_id"],
                            "visitor_id": data["visitor_id"],
                            "event_id": data["event_id"],
                            "type": data["type"],
                        }
                    )
                    await producer.send(BARE_OUT_TOPIC.name, value, key=record.key)
                    count += 1
            if not count:
                continue
            await producer.flush()  # outputs are on the broker before offsets move
            now = time.perf_counter()
            if not first_at:
                first_at, first_batch = now, count
            result.events += count
            result.seconds = now - first_at
            if now - last_commit > 1.0:
                await consumer.commit()
                last_commit = now
        await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()
    result.measured_events = result.events - first_batch
    if result.events < total:
        result.failure = f"drained {result.events:,} of {total:,} records in {timeout_s:g}s"
    return result


def _bare_loop_main(results: mp.Queue[LoopResult], *args: Any) -> None:
    try:
        results.put(uvloop.run(_bare_loop(*args)))
    except Exception as exc:
        results.put(LoopResult(failure=f"{type(exc).__name__}: {exc}"))


# ---- the latency load: POST /v1/collect at a fixed event rate --------------------------------


@dataclass
class LatencyLoad:
    host: str
    port: int
    rate: float
    seconds: float
    trigger_share: float
    connections: int
    seed: int


@dataclass
class LoadReport:
    requests: int = 0
    events: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    triggers: list[tuple[str, float]] = field(default_factory=list)  # event id, time.time() of 200
    http_latencies_s: list[float] = field(default_factory=list)
    max_lag_s: float = 0.0
    window_s: float = 0.0
    failure: str | None = None


def _snippet_event(
    kind: str, at: float, payload: dict[str, Any], page: dict[str, Any] | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid7(int(at * 1000))),
        "type": kind,
        "occurred_at": _iso(at),
        "payload": payload,
    }
    if page:
        event["context"] = {"page": page}
    return event


def latency_requests(spec: LatencyLoad) -> list[tuple[bytes, int, str | None]]:
    """(request, events, trigger event id) in send order, built before the clock starts.

    Background requests: one snippet batch of 1-3 events from a visitor of a pool (the same
    mix as the pre-produced stream). Trigger requests: a new visitor's page view 60 s ago and
    a cart of 5,000 € now, which only the probe rule matches; its event id is the trigger.
    Event times are in the past when sent (the tracker keeps those; later ones it clamps).
    """
    rng = random.Random(spec.seed)
    total = int(spec.rate * spec.seconds)
    stream = Stream(spec.seed + 1, 20_000, total, time.time() + 5)
    target = f"/v1/collect?k={SITE_KEY}"
    headers = {"Content-Type": "application/json", "Origin": ORIGIN}
    start_at = time.time() + 5  # roughly when the first request goes out
    requests: list[tuple[bytes, int, str | None]] = []
    events = triggers = 0
    while events < total:
        send_at = start_at + events / spec.rate
        if triggers < spec.trigger_share * (events + 2):
            visitor = f"probe-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}"
            page = {"url": f"{ORIGIN}/stories/gear", "title": "Stories"}
            cart = {
                "items": [{"product_id": "sku-99999", "name": "Expedition Tent", "price": 5200.0}],
                "value": 5200.0,
                "currency": "EUR",
            }
            batch = [
                _snippet_event("page_viewed", send_at - 60, {"page_type": "content"}, page),
                _snippet_event("cart_updated", send_at - 1, cart, {"url": f"{ORIGIN}/cart"}),
            ]
            body: dict[str, Any] = {
                "visitor_id": visitor,
                "session_id": "s1",
                "context": {"page": page, "library": "beckon.js/0.1.0"},
                "events": batch,
            }
            trigger_id: str | None = batch[-1]["event_id"]
            triggers += 1
        else:
            batch_of = rng.choice((1, 1, 2, 3))
            records = [orjson.loads(value) for _, value, _ in stream.session_records(batch_of)]
            first = records[0]
            body = {
                "visitor_id": first["visitor_id"],
                "session_id": first["session_id"],
                "context": {"page": first["context"]["page"], "library": "beckon.js/0.1.0"},
                "events": [
                    _snippet_event(r["type"], send_at - 1, r["payload"], r["context"]["page"])
                    for r in records
                ],
            }
            trigger_id = None
        # a browser's user agent: without one the tracker marks the event as a bot's
        headers["User-Agent"] = USER_AGENTS[len(requests) % len(USER_AGENTS)][0]
        raw = http_request("POST", target, spec.host, spec.port, orjson.dumps(body), headers)
        requests.append((raw, len(body["events"]), trigger_id))
        events += len(body["events"])
    return requests


async def _drive(spec: LatencyLoad, ready: Any) -> LoadReport:
    requests = latency_requests(spec)
    report = LoadReport()
    idle: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(spec.connections):
        idle.put_nowait(await open_connection(spec.host, spec.port))
    ready.set()
    started = time.perf_counter()

    async def one(scheduled: float, raw: bytes, trigger: str | None) -> None:
        connection = await idle.get()
        try:
            status = await asyncio.wait_for(connection.request(raw), 30)
        except (OSError, TimeoutError, ValueError) as exc:
            report.errors[type(exc).__name__] += 1
            with contextlib.suppress(OSError):
                connection = await open_connection(spec.host, spec.port)
            idle.put_nowait(connection)
            return
        answered = time.time()
        idle.put_nowait(connection)
        report.statuses[status] += 1
        report.http_latencies_s.append(time.perf_counter() - scheduled)
        if status == 200 and trigger is not None:
            report.triggers.append((trigger, answered))

    tasks: set[asyncio.Task[None]] = set()
    sent_events = 0
    for raw, events, trigger in requests:
        due = started + sent_events / spec.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        report.max_lag_s = max(report.max_lag_s, time.perf_counter() - due)
        task = asyncio.create_task(one(due, raw, trigger))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent_events += events
        report.requests += 1
    report.events = sent_events
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    report.window_s = time.perf_counter() - started
    return report


def _drive_main(results: mp.Queue[LoadReport], spec: LatencyLoad, ready: Any) -> None:
    try:
        results.put(uvloop.run(_drive(spec, ready)))
    except Exception as exc:
        ready.set()
        results.put(LoadReport(failure=f"{type(exc).__name__}: {exc}"))


# ---- the worker's /metrics ------------------------------------------------------------------

_SAMPLE = re.compile(r"^(\w+)(?:\{([^}]*)\})?\s+([0-9.eE+-]+|NaN)$")


def scrape(port: int) -> dict[str, dict[str, float]]:
    """metric name → {label text: value} from the worker's /metrics."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"the worker's /metrics answered {response.status}")
    samples: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            samples.setdefault(name, {})[labels or ""] = float(value)
    return samples


def labelled(samples: dict[str, dict[str, float]], name: str, label: str) -> dict[str, int]:
    """{label value: count} of one counter (e.g. refusals by reason)."""
    out = {}
    for labels, value in samples.get(name, {}).items():
        match = re.search(rf'{label}="([^"]*)"', labels)
        out[match.group(1) if match else labels] = int(value)
    return out


def counter(samples: dict[str, dict[str, float]], name: str, labels: str = "") -> float:
    return samples.get(name, {}).get(labels, 0.0)


def worker_counts(samples: dict[str, dict[str, float]]) -> dict[str, Any]:
    return {
        "visitor_stage_records": int(
            counter(samples, "triggers_records_total", 'stage="visitors"')
        ),
        "candidates": int(counter(samples, "triggers_candidates_total")),
        "decisions": labelled(samples, "triggers_decisions_total", "kind"),
        "refused": labelled(samples, "triggers_refused_total", "reason"),
        "dead_lettered": labelled(samples, "triggers_dead_lettered_total", "topic"),
        "duplicates": int(counter(samples, "triggers_duplicates_total")),
    }


def _minus(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def counts_delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _minus(value, before[key]) if isinstance(value, dict) else value - before[key]
        for key, value in after.items()
    }


# ---- the run --------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.quiet: bool = args.json_only
        self.stack = contextlib.ExitStack()
        self.log_dir = Path(tempfile.mkdtemp(prefix="beckon-bench-triggers-"))
        self.broker_pids: list[int] = []
        self.services: list[Service] = []
        self.worker: Service | None = None
        self.run_id = uuid.uuid4().hex[:8]
        self.bootstrap = ""

    def say(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def _own(self, service: Service) -> Service:
        self.services.append(service)
        self.stack.callback(service.stop)
        return service

    # -- servers --

    def start_broker(self) -> str:
        bootstrap, self.broker_pids = start_broker(
            self.stack, self.log_dir, self.args.bootstrap, self.say
        )
        asyncio.run(ensure_topics(bootstrap, [BARE_OUT_TOPIC]))
        return bootstrap

    def start_worker(self, bootstrap: str) -> Service:
        port = free_port()
        env = python_env(
            TRIGGERS_KAFKA_BOOTSTRAP=bootstrap,
            TRIGGERS_APP_ID=f"bench-triggers-{self.run_id}",
            TRIGGERS_PORT=str(port),
            TRIGGERS_HOST="127.0.0.1",
            TRIGGERS_DATA_DIR=str(self.log_dir / "triggers-data"),
            TRIGGERS_BATCH_SIZE=str(self.args.batch_size),
            TRIGGERS_LOG_LEVEL="info",
            TRIGGERS_API_TOKEN=WORKER_TOKEN,
        )
        argv = [sys.executable, "-m", "triggers"]
        service = self._own(start_service("triggers", argv, env, self.log_dir))
        service.port = port
        wait_http_ok(service, f"http://127.0.0.1:{port}/readyz", timeout_s=120)
        self.worker = service
        return service

    def wait_applied(self, service: Service, version: int) -> None:
        """Until the worker applies this run's rules and sees every team's capacity."""
        deadline = time.monotonic() + 30
        while True:
            connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
            try:
                connection.request(
                    "GET",
                    f"/v1/sites/{SITE_ID}",
                    headers={"Authorization": f"Bearer {WORKER_TOKEN}"},
                )
                view = orjson.loads(connection.getresponse().read())
            finally:
                connection.close()
            if view["rules_version"] == version and all(
                view["teams"].get(team, {}).get("free_slots") for team in TEAMS
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker never applied the bench rules: {view}")
            time.sleep(0.1)

    def start_tracker(self, bootstrap: str) -> Service:
        port = free_port()
        site = {"site_id": SITE_ID, "site_key": SITE_KEY, "allowed_origins": [ORIGIN]}
        env = python_env(
            TRACKER_KAFKA_BOOTSTRAP=bootstrap,
            TRACKER_HOST="127.0.0.1",
            TRACKER_PORT=str(port),
            TRACKER_SITES=json.dumps([site]),
            # One loopback client sends for thousands of visitors: lift the limits.
            TRACKER_REQUESTS_PER_S_PER_CLIENT="1e9",
            TRACKER_REQUEST_BURST_PER_CLIENT="1000000000",
            TRACKER_EVENTS_PER_S_PER_VISITOR="1e9",
            TRACKER_EVENT_BURST_PER_VISITOR="1000000000",
            TRACKER_LOG_JSON="true",
        )
        argv = [sys.executable, "-m", "tracker"]
        service = self._own(start_service("tracker", argv, env, self.log_dir))
        service.port = port
        wait_http_ok(service, f"http://127.0.0.1:{port}/readyz")
        return service

    # -- phases --

    def bare_loop(self, bootstrap: str, total: int) -> dict[str, Any]:
        args = self.args
        self.say(f"-- ceiling: bare aiokafka consume → parse → produce loop over {total:,} records")
        ctx = mp.get_context("spawn")
        results: mp.Queue[LoopResult] = ctx.Queue()
        group = f"bench-bare-loop-{self.run_id}"
        process = ctx.Process(
            target=_bare_loop_main,
            args=(results, bootstrap, group, total, args.batch_size, args.drain_timeout),
            name="bare-loop",
        )
        process.start()
        assert process.pid is not None
        self.stack.callback(_stop_mp, process)
        meter = CpuMeter({"loop": [process.pid], "broker": self.broker_pids})
        meter.start()
        try:
            result = results.get(timeout=args.drain_timeout + 120)
        except queue.Empty:
            result = LoopResult(failure="the bare loop did not report back")
        cpu = meter.stop()
        _stop_mp(process)
        if result.failure:
            raise RuntimeError(f"bare loop failed: {result.failure}")
        summary = {
            "events_per_s": round(result.events_per_s, 1),
            "records": result.events,
            "seconds": round(result.seconds, 2),
            "cpu_pct_of_core": cpu,
        }
        self.say(
            f"   {summary['events_per_s']:>9,.0f} events/s over {result.seconds:.1f}s  cpu % {cpu}"
        )
        return summary

    async def drain(self, worker: Service, total: int) -> dict[str, Any]:
        """Watch the worker drain `total` tracking records; rate excludes start-up."""
        args = self.args
        group = f"bench-triggers-{self.run_id}"
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        meter = CpuMeter({"worker": [worker.process.pid], "broker": self.broker_pids})
        meter.start()
        cpu_start = time.perf_counter()
        first: tuple[float, float] | None = None
        last_print = 0.0
        deadline = time.monotonic() + args.drain_timeout
        done_at: tuple[float, float] | None = None
        try:
            while True:
                if worker.process.poll() is not None:
                    raise RuntimeError(f"the worker exited with {worker.process.returncode}")
                samples = await asyncio.to_thread(scrape, worker.port)
                now = time.perf_counter()
                counts = worker_counts(samples)
                feedback = sum(counts["decisions"].values())
                # records of tracking.events the visitor stage finished (the stage also reads
                # the worker's own feedback records, one per decision; those lag decisions,
                # so this never overstates)
                tracking = counts["visitor_stage_records"] - feedback
                if first is None and counts["visitor_stage_records"] > 0:
                    first = (now, max(0, tracking))
                    self.say(f"   first batch done ({tracking:,} records)")
                # done: the visitor stage read every record and admission decided every
                # candidate (issued, held out or refused: one decision each)
                decided = feedback + sum(counts["refused"].values())
                caught_up = tracking >= total and decided >= counts["candidates"]
                if first is not None and caught_up and done_at is None:
                    done_at = (now, tracking)
                if done_at is not None:
                    committed = await committed_total(admin, group, topics.TRACKING_EVENTS)
                    if committed >= total:
                        break
                if now - last_print > 2 and first is not None:
                    last_print = now
                    rate = (tracking - first[1]) / (now - first[0]) if now > first[0] else 0
                    self.say(
                        f"   {tracking:>9,} / {total:,} records  {rate:,.0f}/s  "
                        f"invitations {counts['decisions']}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"the worker drained {tracking:,} of {total:,} in {args.drain_timeout}s"
                    )
                await asyncio.sleep(0.1)
        finally:
            await admin.close()
        cpu = meter.stop()
        assert first is not None
        assert done_at is not None
        seconds = done_at[0] - first[0]
        measured = total - first[1]
        rate = measured / seconds if seconds > 0 else 0.0
        worker_cpu_s = cpu.get("worker", 0.0) / 100 * (time.perf_counter() - cpu_start)
        summary = {
            "events_per_s": round(rate, 1),
            "records": total,
            "seconds": round(seconds, 2),
            "cpu_pct_of_core": cpu,
            "worker_cpu_us_per_event": round(worker_cpu_s * 1e6 / total, 1) if total else None,
            "counts": worker_counts(await asyncio.to_thread(scrape, worker.port)),
        }
        self.say(
            f"   {rate:>9,.0f} events/s over {seconds:.1f}s  cpu % {cpu}  "
            f"worker {summary['worker_cpu_us_per_event']} us CPU/event"
        )
        return summary

    async def latency(self, worker: Service, tracker: Service) -> dict[str, Any]:
        args = self.args
        spec = LatencyLoad(
            host="127.0.0.1",
            port=tracker.port,
            rate=args.rate,
            seconds=args.seconds,
            trigger_share=args.trigger_share,
            connections=args.connections,
            seed=args.seed + 7,
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=10,
            fetch_min_bytes=1,
        )
        await consumer.start()
        parts = _partitions(topics.CHAT_INVITATIONS)
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for tp in parts:
            await consumer.position(tp)
        seen: dict[str, float] = {}
        invitations = Counter[str]()

        async def consume(stop: asyncio.Event) -> None:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=50)
                now = time.time()
                for records in batches.values():
                    for record in records:
                        data = orjson.loads(record.value or b"{}")
                        if data.get("site_id") != SITE_ID:
                            continue
                        invitations[str(data.get("type"))] += 1
                        trigger = (data.get("payload") or {}).get("trigger_event_id")
                        if trigger and trigger not in seen:
                            seen[trigger] = now

        ctx = mp.get_context("spawn")
        results: mp.Queue[LoadReport] = ctx.Queue()
        ready = ctx.Event()
        before = worker_counts(await asyncio.to_thread(scrape, worker.port))
        stop = asyncio.Event()
        consuming = asyncio.create_task(consume(stop))
        self.say(
            f"-- latency: {args.rate:,.0f} events/s through the tracker for {args.seconds:g}s, "
            f"{args.trigger_share:.1%} of them trigger the probe rule"
        )
        process = ctx.Process(target=_drive_main, args=(results, spec, ready), name="collect")
        process.start()
        assert process.pid is not None
        self.stack.callback(_stop_mp, process)
        try:
            await asyncio.to_thread(ready.wait, 300)
            meter = CpuMeter(
                {
                    "worker": [worker.process.pid],
                    "tracker": [tracker.process.pid],
                    "broker": self.broker_pids,
                    "loadgen": [process.pid],
                }
            )
            meter.start()
            timeout = args.seconds + 120
            report: LoadReport = await asyncio.to_thread(results.get, True, timeout)
            cpu = meter.stop()
            if report.failure:
                raise RuntimeError(f"load driver failed: {report.failure}")
            wanted = {event_id for event_id, _ in report.triggers}
            grace_until = time.monotonic() + args.grace
            while not wanted <= seen.keys() and time.monotonic() < grace_until:
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consuming, 5)
            await consumer.stop()
            _stop_mp(process)
        after = worker_counts(await asyncio.to_thread(scrape, worker.port))
        latencies = [seen[e] - t for e, t in report.triggers if e in seen]
        missing = len(report.triggers) - len(latencies)
        summary = {
            "target_events_per_s": args.rate,
            "events_sent": report.events,
            "requests_sent": report.requests,
            "events_per_s": round(report.events / args.seconds, 1),
            "statuses": {str(k): v for k, v in sorted(report.statuses.items())},
            "connection_errors": dict(report.errors),
            "max_send_lag_ms": round(report.max_lag_s * 1000, 1),
            "http_p50_ms": percentile_ms(report.http_latencies_s, 50),
            "http_p99_ms": percentile_ms(report.http_latencies_s, 99),
            "triggers_sent": len(report.triggers),
            "invitations_matched": len(latencies),
            "invitations_missing": missing,
            "p50_invite_ms": percentile_ms(latencies, 50),
            "p90_invite_ms": percentile_ms(latencies, 90),
            "p99_invite_ms": percentile_ms(latencies, 99),
            "max_invite_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "invitation_records": dict(invitations),
            "cpu_pct_of_core": cpu,
            "counts": counts_delta(after, before),
        }
        self.say(
            f"   matched {len(latencies):,} of {len(report.triggers):,} triggers  "
            f"p50 {summary['p50_invite_ms']} ms  p99 {summary['p99_invite_ms']} ms  "
            f"max {summary['max_invite_ms']} ms  http p99 {summary['http_p99_ms']} ms  "
            f"cpu % {cpu}"
        )
        return summary

    def run(self) -> dict[str, Any]:
        args = self.args
        facts = machine_facts()
        phases: dict[str, Any] = {}
        with self.stack:
            try:
                self.bootstrap = bootstrap = self.start_broker()
                version = int(time.time())
                rules = bench_rules(version)
                asyncio.run(publish_setup(bootstrap, rules))
                self.say(
                    f"published {len(rules.rules)} rules (v{version}) and presence for "
                    f"{len(TEAMS)} teams x {AGENTS_PER_TEAM} agents x {CHATS_PER_AGENT} chats"
                )
                started = time.perf_counter()
                records, stream_facts = build_stream(args.events, args.visitors, args.seed)
                self.say(
                    f"built {len(records):,} records for {stream_facts['distinct_visitors']:,} "
                    f"visitors in {time.perf_counter() - started:.1f}s; mix % "
                    f"{stream_facts['mix_pct']}"
                )
                preload_rate, ends = asyncio.run(produce_records(bootstrap, records))
                del records
                total = asyncio.run(topic_size(bootstrap, topics.TRACKING_EVENTS, ends))
                self.say(f"pre-produced at {preload_rate:,.0f} events/s; topic holds {total:,}")
                stream_facts["preload_events_per_s"] = round(preload_rate)
                stream_facts["topic_records"] = total
                if not args.skip_bare:
                    phases["bare_loop"] = self.bare_loop(bootstrap, total)
                self.say("-- worker: starting one `python -m triggers`")
                worker = self.start_worker(bootstrap)
                self.wait_applied(worker, version)
                self.say(f"   ready on :{worker.port}; draining {total:,} records")
                phases["worker"] = uvloop.run(self.drain(worker, total))
                if not args.skip_latency:
                    tracker = self.start_tracker(bootstrap)
                    self.say(f"started the tracker on :{tracker.port}")
                    phases["latency"] = uvloop.run(self.latency(worker, tracker))
                phases["worker_log"] = log_problems(worker.log_path)
            except BaseException:
                for service in self.services:
                    self.say(f"{service.name} log ({service.log_path}):\n{tail(service.log_path)}")
                self.say(f"logs kept in {self.log_dir}")
                raise
        if not args.keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)
        return self.figures(phases, stream_facts, facts)

    def figures(
        self, p: dict[str, Any], stream: dict[str, Any], facts: dict[str, Any]
    ) -> dict[str, Any]:
        args = self.args
        worker = p["worker"]["events_per_s"]
        bare = p.get("bare_loop", {}).get("events_per_s")
        latency = p.get("latency", {})
        refused = dict(p["worker"]["counts"]["refused"])
        for reason, n in latency.get("counts", {}).get("refused", {}).items():
            refused[reason] = refused.get(reason, 0) + n
        non_200 = sum(v for k, v in latency.get("statuses", {}).items() if k != "200")
        errors = sum(latency.get("connection_errors", {}).values())
        missing = latency.get("invitations_missing", 0)
        figures: dict[str, Any] = {
            "bench": "triggers",
            "events_per_s_per_worker": round(worker),
            "bare_loop_events_per_s": round(bare) if bare else None,
            "ratio_to_bare_loop": round(worker / bare, 3) if bare else None,
            "p50_invite_ms": latency.get("p50_invite_ms"),
            "p99_invite_ms": latency.get("p99_invite_ms"),
            "max_invite_ms": latency.get("max_invite_ms"),
            "invitations_matched": latency.get("invitations_matched"),
            "triggers_sent": latency.get("triggers_sent"),
            "latency_events_per_s": latency.get("events_per_s"),
            "worker_cpu_us_per_event": p["worker"]["worker_cpu_us_per_event"],
            "events": args.events,
            "visitors": args.visitors,
            "distinct_visitors": stream["distinct_visitors"],
            "rules": len(bench_rules(1).rules),
            "invitations_throughput_phase": p["worker"]["counts"]["decisions"],
            "refused": refused,
            "dead_lettered": p["worker"]["counts"]["dead_lettered"],
            "worker_log_errors": p["worker_log"]["count"],
            "non_200": non_200,
            "connection_errors": errors,
            "valid": non_200 == 0
            and errors == 0
            and missing <= 0.01 * max(1, latency.get("triggers_sent") or 0)
            and p["worker_log"]["count"] == 0,
        }
        figures["targets_met"] = {
            key: figures[key] is not None
            and (figures[key] >= bound if op == ">=" else figures[key] < bound)
            for key, (op, bound) in TARGETS.items()
        }
        figures["phases"] = {k: v for k, v in p.items()}
        figures["stream"] = stream
        figures["config"] = {
            "events": args.events,
            "visitors": args.visitors,
            "rate": args.rate,
            "seconds": args.seconds,
            "batch_size": args.batch_size,
            "trigger_share": args.trigger_share,
            "connections": args.connections,
            "grace_s": args.grace,
            "seed": args.seed,
            "skip_bare": args.skip_bare,
            "skip_latency": args.skip_latency,
            "broker": args.bootstrap or f"apache kafka {KAFKA_VERSION} (embedded, same machine)",
            "teams": {t: f"{AGENTS_PER_TEAM} agents x {CHATS_PER_AGENT} chats" for t in TEAMS},
        }
        figures["machine"] = facts
        if args.keep_logs:
            figures["logs"] = str(self.log_dir)
        return figures


def _stop_mp(process: Any) -> None:
    if process.is_alive():
        process.join(timeout=5)
    if process.is_alive():
        process.terminate()
        process.join(timeout=5)
    if process.is_alive():
        process.kill()
        process.join()


_PROBLEM = re.compile(r"\b(ERROR|CRITICAL|Traceback)\b")


def log_problems(path: Path) -> dict[str, Any]:
    """Error lines in the worker's log (first few kept for the report)."""
    lines = []
    with contextlib.suppress(OSError):
        lines = [
            line for line in path.read_text(errors="replace").splitlines() if _PROBLEM.search(line)
        ]
    return {"count": len(lines), "first": [line[:300] for line in lines[:5]]}


def print_summary(f: dict[str, Any]) -> None:
    p = f["phases"]
    print()
    print(f"events: {f['events']:,} for {f['distinct_visitors']:,} visitors, {f['rules']} rules")
    if "bare_loop" in p:
        print(f"bare consume → parse → produce loop:  {f['bare_loop_events_per_s']:>9,} events/s")
    print(f"one triggers worker:                  {f['events_per_s_per_worker']:>9,} events/s"
          f"  ({f['worker_cpu_us_per_event']} us worker CPU per event)")  # fmt: skip
    if f["ratio_to_bare_loop"] is not None:
        print(f"worker / bare loop:                   {f['ratio_to_bare_loop']:>9}")
    print(f"invitations while draining: {f['invitations_throughput_phase']}")
    if "latency" in p:
        lat = p["latency"]
        print(
            f"event → invitation at {lat['events_per_s']:,.0f} events/s:"
            f"  p50 {f['p50_invite_ms']} ms"
            f"  p99 {f['p99_invite_ms']} ms  max {f['max_invite_ms']} ms"
            f"  ({f['invitations_matched']:,} of {f['triggers_sent']:,} triggers matched)"
        )
    print(f"refused: {f['refused']}  dead-lettered: {f['dead_lettered']}")
    print(f"worker log errors: {f['worker_log_errors']}")
    for line in p["worker_log"]["first"]:
        print(f"   {line}")
    for key, (op, bound) in TARGETS.items():
        verdict = "met" if f["targets_met"][key] else "MISSED"
        print(f"target {key} {op} {bound:,}: {f[key]} -> {verdict}")
    if not f["valid"]:
        print(
            "INVALID RUN: non-200 answers, connection errors, missing invitations or worker errors"
        )
    print("Other work on this machine moves these figures: compare runs, not single numbers.")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--events", type=int, default=200_000, help="tracking records to pre-produce and drain")
    add("--visitors", type=int, default=100_000, help="distinct visitors in those records")
    add("--rate", type=float, default=2_000.0, help="events/s through the tracker (latency)")
    add("--seconds", type=float, default=30.0, help="length of the latency phase")
    add("--batch-size", type=int, default=1_000, help="TRIGGERS_BATCH_SIZE (and the bare loop's)")
    add("--trigger-share", type=float, default=0.02, help="share of latency events that trigger")
    add("--connections", type=int, default=64, help="keep-alive connections to the tracker")
    add("--grace", type=float, default=10.0, help="seconds to wait for the last invitations")
    add("--drain-timeout", type=float, default=600.0, help="give up draining after this long")
    add("--seed", type=int, default=42)
    add("--skip-latency", action="store_true", help="no tracker, no latency phase")
    add("--skip-bare", action="store_true", help="no bare-loop ceiling")
    add("--bootstrap", help="use this running broker (HOST:PORT) instead of starting Apache Kafka")
    add("--keep-logs", action="store_true", help="keep the servers' logs")
    add("--json-only", action="store_true", help="print only the RESULT line")
    args = parser.parse_args(argv)
    if args.events < 1 or args.visitors < 1 or args.visitors > args.events:
        parser.error("need 1 <= --visitors <= --events")
    return args


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: every server is stopped


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminated)
    figures = Bench(args).run()
    if not args.json_only:
        print_summary(figures)
    print("RESULT " + json.dumps(figures, separators=(",", ":")), flush=True)
    return 0 if figures["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
