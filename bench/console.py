"""Console: the live visitor list in a real browser with thousands of visitors streaming in.

    uv run python bench/console.py                          # 5,000 visitors, 30 s
    uv run python bench/console.py --visitors 500 --seconds 5   # smoke

Starts Apache Kafka (or uses --bootstrap), a scratch database `console_bench_<random>` on
DATABASE_URL's server (else an embedded Postgres, like the test fixtures), `python -m chat
migrate`, a seed (site `bench-live`, one agent) and one `python -m chat` instance. Then:
  1. writes one `visitor.state` record per simulated visitor to `visitors.state` and waits
     until the instance's live list holds them all (GET /v1/console/visitors);
  2. opens the console in Chromium (Playwright, /usr/bin/chromium, headless), logs the agent
     in, opens the Visitors view and waits for the snapshot to be on screen;
  3. streams updates for --seconds: every visitor changes page / cart / score about every
     --update-every seconds (so visitors / update-every records per second), while the page
     scrolls the list now and then as an agent would;
  4. reads `window.__beckonLive` from the page (live.js records it): per applied delta frame,
     the time from its receipt to the DOM being updated; the intervals between animation
     frames; long tasks.
The last line is `RESULT {json}` (p50/p95/p99 update ms, p50/p95 frame ms, updates applied,
visible rows, the visitors in the list at the end).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: `bench` importable, bench/ not shadowing `chat`
    sys.path[:] = [
        p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
    ]
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import VISITORS_STATE
from beckon_devstack.ports import free_port
from playwright.async_api import async_playwright

from bench._common import (
    Service,
    machine_facts,
    python_env,
    start_service,
    tail,
    wait_http_ok,
)
from bench._stack import create_database, start_broker, start_postgres

SITE_ID = "bench-live"
AGENT_EMAIL = "anna@bench-live.test"
AGENT_PASSWORD = "bench-live-password"
SECRET = "bench-console-secret-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
PAGES = [
    ("https://shop.test/", "Home", "home", None),
    ("https://shop.test/c/running", "Running shoes", "category", None),
    ("https://shop.test/p/trail-runner-x", "Trail Runner X", "product", "Trail Runner X"),
    ("https://shop.test/p/city-walker", "City Walker", "product", "City Walker"),
    ("https://shop.test/p/rain-jacket", "Rain jacket", "product", "Rain jacket"),
    ("https://shop.test/cart", "Your cart", "cart", None),
    ("https://shop.test/checkout", "Checkout", "checkout", None),
]
SOURCES = [
    ("google", "cpc", "spring-sale"),
    ("newsletter", "email", "may-news"),
    ("facebook", "social", None),
    (None, None, None),
]


def percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def seed_yaml() -> str:
    site = {
        "site_id": SITE_ID,
        "site_key": "pk_bench_live",
        "name": "Bench live store",
        "allowed_origins": ["http://shop.test"],
        "settings": {"greeting": "Hi!", "default_team": "sales"},
        "teams": [{"team": "sales", "name": "Sales"}],
        "agents": [
            {
                "agent_id": "bench-live-anna",
                "email": AGENT_EMAIL,
                "password": AGENT_PASSWORD,
                "name": "Anna Bench",
                "teams": ["sales"],
                "max_chats": 5,
            }
        ],
    }
    return json.dumps({"sites": [site]})


class Visitor:
    """One simulated visitor's journey: pages, a cart that grows, a score that climbs."""

    def __init__(self, n: int, rng: random.Random, now: datetime) -> None:
        self.visitor_id = f"bv-{n:05d}-{uuid.uuid4().hex[:6]}"
        self.started = now - timedelta(seconds=rng.uniform(5, 1500))
        self.source = rng.choice(SOURCES)
        self.returning = rng.random() < 0.3
        self.sessions = rng.randint(2, 6) if self.returning else 1
        self.page = rng.randrange(len(PAGES))
        self.cart = 0.0
        self.items = 0
        self.score = rng.uniform(0, 40)

    def step(self, rng: random.Random) -> None:
        self.page = rng.randrange(len(PAGES))
        if PAGES[self.page][2] in ("product", "cart") and rng.random() < 0.3:
            self.items += 1
            self.cart = round(self.cart + rng.choice((19.9, 49.0, 89.5, 129.0)), 2)
        self.score = min(100.0, self.score + rng.uniform(0, 6))

    def record(self, now: datetime) -> bytes:
        url, title, page_type, product = PAGES[self.page]
        segment = "hot" if self.score >= 70 else "warm" if self.score >= 35 else "cold"
        source, medium, campaign = self.source
        return orjson.dumps(
            {
                "event_id": str(uuid7()),
                "type": "visitor.state",
                "occurred_at": now.isoformat(),
                "site_id": SITE_ID,
                "visitor_id": self.visitor_id,
                "session_id": f"s-{self.visitor_id}",
                "payload": {
                    "url": url,
                    "title": title,
                    "page_type": page_type,
                    "session_started_at": self.started.isoformat(),
                    "last_seen_at": now.isoformat(),
                    "time_on_site_s": round((now - self.started).total_seconds(), 1),
                    "sessions": self.sessions,
                    "returning": self.returning,
                    "source": source,
                    "medium": medium,
                    "campaign": campaign,
                    "cart_value": self.cart,
                    "cart_items": self.items,
                    "currency": "EUR",
                    "current_product": product,
                    "score": round(self.score, 1),
                    "segment": segment,
                    "score_breakdown": {"pages": round(self.score / 2, 1)},
                    "invited": False,
                    "chatting": False,
                },
            }
        )

    @property
    def key(self) -> bytes:
        return f"{SITE_ID}:{self.visitor_id}".encode()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.log_dir = Path(tempfile.mkdtemp(prefix="console-bench-"))
        self.stack = contextlib.ExitStack()
        self.services: list[Service] = []
        self.started_at = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started_at:6.1f}s] {text}", flush=True)

    # -- what it needs --

    def start_broker(self) -> str:
        bootstrap, _ = start_broker(self.stack, self.log_dir, self.args.bootstrap, self.say)
        return bootstrap

    def start_database(self) -> str:
        server_url, _ = start_postgres(self.stack, self.log_dir, self.say)
        name = f"console_bench_{self.run_id}"
        database_url = asyncio.run(create_database(self.stack, server_url, name))
        self.say(f"created database {name}")
        return database_url

    def chat_env(self, database_url: str, bootstrap: str, port: int) -> dict[str, str]:
        return python_env(
            CHAT_DATABASE_URL=database_url,
            CHAT_KAFKA_BOOTSTRAP=bootstrap,
            CHAT_HOST="127.0.0.1",
            CHAT_PORT=str(port),
            CHAT_INSTANCE_ID=f"bench-{self.run_id}",
            CHAT_SECRET_KEY=SECRET,
            CHAT_LOG_LEVEL="WARNING",
            CHAT_CREATE_TOPICS="false",
            CHAT_AGENT_OFFLINE_AFTER_S="86400",
        )

    def start_chat(self, database_url: str, bootstrap: str) -> str:
        port = free_port()
        env = self.chat_env(database_url, bootstrap, port)
        seed = self.log_dir / "seed.yaml"
        seed.write_text(seed_yaml())
        for argv in (["migrate"], ["seed", str(seed)]):
            done = subprocess.run(
                [sys.executable, "-m", "chat", *argv], env=env, capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"python -m chat {argv[0]} failed:\n{done.stdout}{done.stderr}")
        service = start_service("chat", [sys.executable, "-m", "chat"], env, self.log_dir)
        self.services.append(service)
        self.stack.callback(self._stop, service)
        wait_http_ok(service, f"http://127.0.0.1:{port}/readyz", timeout_s=120)
        url = f"http://127.0.0.1:{port}"
        self.say(f"started chat at {url} (logs in {self.log_dir})")
        return url

    @staticmethod
    def _stop(service: Service) -> None:
        if service.process.poll() is None:
            service.process.terminate()
            try:
                service.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                service.process.kill()

    # -- the run --

    async def wait_listed(self, chat_url: str, count: int) -> None:
        async with httpx.AsyncClient(base_url=chat_url, timeout=30) as client:
            login = await client.post(
                "/v1/console/login",
                json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD},
                headers={"Origin": chat_url},
            )
            login.raise_for_status()
            deadline = time.monotonic() + 120
            total = 0
            while time.monotonic() < deadline:
                answer = await client.get("/v1/console/visitors", params={"limit": 1})
                total = answer.json()["total"]
                if total >= count:
                    self.say(f"the live list holds {total} visitors")
                    return
                await asyncio.sleep(0.5)
        raise TimeoutError(f"only {total} of {count} visitors reached the live list")

    async def run(self, chat_url: str, bootstrap: str) -> dict[str, Any]:
        args = self.args
        rng = random.Random(args.seed)
        now = datetime.now(UTC)
        visitors = [Visitor(n, rng, now) for n in range(args.visitors)]
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=262_144
        )
        await producer.start()
        try:
            for visitor in visitors:
                await producer.send(VISITORS_STATE.name, visitor.record(now), key=visitor.key)
            await producer.flush()
            self.say(f"wrote {len(visitors)} visitors to {VISITORS_STATE.name}")
            await self.wait_listed(chat_url, len(visitors))
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=not args.headed
                )
                try:
                    page = await self.open_console(browser, chat_url, len(visitors))
                    return await self.stream(page, producer, visitors, rng)
                finally:
                    await browser.close()
        finally:
            await producer.stop()

    async def open_console(self, browser: Any, chat_url: str, count: int) -> Any:
        context = await browser.new_context(viewport={"width": 1440, "height": 900})
        page = await context.new_page()
        await page.goto(f"{chat_url}/console/")
        await page.get_by_test_id("login-email").fill(AGENT_EMAIL)
        await page.get_by_test_id("login-password").fill(AGENT_PASSWORD)
        await page.get_by_test_id("login-submit").click()
        await page.get_by_test_id("tab-visitors").click(timeout=30_000)
        await page.wait_for_function(
            "n => Number(document.querySelector('[data-testid=live-count]')"
            "?.getAttribute('data-total')) >= n",
            arg=count,
            timeout=60_000,
        )
        self.say(f"the console shows {count} visitors")
        return page

    async def stream(
        self, page: Any, producer: AIOKafkaProducer, visitors: list[Visitor], rng: random.Random
    ) -> dict[str, Any]:
        args = self.args
        rate = len(visitors) / args.update_every  # records per second
        tick = 0.05
        await page.evaluate(
            "() => { const p = window.__beckonLive; p.updates.length = 0; p.frames.length = 0;"
            " p.longTasks.length = 0; p.applied = 0; }"
        )
        self.say(
            f"streaming ~{rate:.0f} updates/s ({len(visitors)} visitors, each every "
            f"~{args.update_every:g} s) for {args.seconds:g} s"
        )
        start = time.monotonic()
        sent = 0
        owed = 0.0
        next_report = start + 5
        next_scroll = start + 2
        order = list(range(len(visitors)))
        rng.shuffle(order)
        cursor = 0
        while (elapsed := time.monotonic() - start) < args.seconds:
            owed += rate * tick
            batch = int(owed)
            owed -= batch
            now = datetime.now(UTC)
            for _ in range(batch):
                visitor = visitors[order[cursor]]
                cursor = (cursor + 1) % len(order)
                visitor.step(rng)
                await producer.send(VISITORS_STATE.name, visitor.record(now), key=visitor.key)
            sent += batch
            if time.monotonic() >= next_scroll:  # an agent scrolling the list meanwhile
                next_scroll += 2
                await page.mouse.move(700, 500)
                await page.mouse.wheel(0, rng.choice((-1, 1)) * rng.randint(200, 1600))
            if time.monotonic() >= next_report:
                next_report += 5
                seen = await page.evaluate(
                    "() => { const p = window.__beckonLive; return {applied: p.applied,"
                    " rows: p.rows, frames: p.frames.length}; }"
                )
                self.say(
                    f"  {elapsed:5.1f}s: sent {sent} records ({sent / elapsed:.0f}/s); the page "
                    f"applied {seen['applied']} deltas, {seen['frames']} frames, "
                    f"{seen['rows']} rows"
                )
            await asyncio.sleep(max(0.0, start + (elapsed // tick + 1) * tick - time.monotonic()))
        await producer.flush()
        await asyncio.sleep(1.0)  # the last deltas
        if args.screenshot is not None:
            await page.screenshot(path=str(args.screenshot))
        duration = time.monotonic() - start
        data = await page.evaluate(
            "() => { const p = window.__beckonLive; return {updates: p.updates, frames: p.frames,"
            " longTasks: p.longTasks, applied: p.applied, rows: p.rows,"
            " visibleRows: p.visibleRows, domRows: document.querySelectorAll("
            "'[data-testid=live-row]').length}; }"
        )
        updates: list[float] = data["updates"]
        frames: list[float] = data["frames"]
        long_tasks: list[float] = data["longTasks"]
        result = {
            "visitors": data["rows"],
            "records_sent": sent,
            "records_per_s": round(sent / duration, 1),
            "seconds": round(duration, 1),
            "updates_applied": data["applied"],
            "p50_update_ms": percentile(updates, 50),
            "p95_update_ms": percentile(updates, 95),
            "p99_update_ms": percentile(updates, 99),
            "max_update_ms": round(max(updates), 2) if updates else None,
            "p50_frame_ms": percentile(frames, 50),
            "p95_frame_ms": percentile(frames, 95),
            "p99_frame_ms": percentile(frames, 99),
            "frames": len(frames),
            "fps": round(len(frames) / duration, 1),
            "long_tasks": len(long_tasks),
            "long_task_ms_total": round(sum(long_tasks), 1),
            "visible_rows": data["visibleRows"],
            "dom_rows": data["domRows"],
            "machine": machine_facts(),
        }
        return result

    def main(self) -> dict[str, Any]:
        with self.stack:
            bootstrap = self.start_broker()
            database_url = self.start_database()
            chat_url = self.start_chat(database_url, bootstrap)
            try:
                return asyncio.run(self.run(chat_url, bootstrap))
            except Exception:
                for service in self.services:
                    print(f"--- {service.name} log tail ---\n{tail(service.log_path)}")
                raise


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--update-every", type=float, default=5.0, help="seconds between a visitor's updates"
    )
    parser.add_argument(
        "--bootstrap", help="use this Kafka broker instead of starting Apache Kafka"
    )
    parser.add_argument("--seed", type=int, default=5, help="random seed of the journeys")
    parser.add_argument("--headed", action="store_true", help="show the browser window")
    parser.add_argument("--screenshot", type=Path, help="save a screenshot of the list at the end")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    result = Bench(parse_args(argv)).main()
    print(
        f"live list: {result['visitors']} visitors, {result['records_per_s']:.0f} records/s; "
        f"update p50 {result['p50_update_ms']} ms, p95 {result['p95_update_ms']} ms; "
        f"frame p50 {result['p50_frame_ms']} ms, p95 {result['p95_frame_ms']} ms; "
        f"{result['updates_applied']} deltas applied; {result['visible_rows']} rows rendered"
    )
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
