"""The tracker's edge when Kafka is away: the snippet keeps every event until the broker is back.

A broker of the test's own (it is SIGKILLed), a tracker and a demo store on it, and Chromium
browsing the store. The broker is down for 30 s while the visitor keeps browsing: events are
generated on three pages, the first navigation right after the kill (before the snippet has
seen any failure), the second after it has seen 503s. The broker then restarts on the same log
directory and port, and every event the pages generated must be on `tracking.events` exactly
once per `event_id`.

What the pages generated is read from the snippet itself: an init script records every event
id the snippet writes to its stored queue (`bk_q_<tab>`, written at each event) in
`sessionStorage`, which survives the navigations. What the pages sent is read from Playwright's
request and response events, with the browser's own timings for the Retry-After check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from beckon_contracts.topics import TRACKING_EVENTS
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker
from beckon_devstack.kafka_probe import read_records
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from playwright.async_api import BrowserContext, Page, Request, Response

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(420)]

HOST = "127.0.0.1"
SITE_ID = "degradation"
SITE_KEY = "pk_degradation_site"
OUTAGE_S = 30.0  # how long the broker stays down (the outage), not a wait for a state
START_TIMEOUT_S = 90.0
WAIT_MS = 120_000  # the snippet's back-off after a 30 s outage is tens of seconds
PRODUCT = "trail-runner-x"
CATEGORY = "shoes"

# Every event the snippet queues, by id, in sessionStorage (it survives the tab's navigations).
RECORD_GENERATED = """(() => {
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    setItem.call(this, key, value);
    if (this !== window.localStorage || String(key).indexOf('bk_q_') !== 0) return;
    const seen = JSON.parse(window.sessionStorage.getItem('test_generated') || '{}');
    for (const e of JSON.parse(value).e || []) seen[e.event_id] = e.type;
    setItem.call(window.sessionStorage, 'test_generated', JSON.stringify(seen));
  };
})();"""
GENERATED_JS = "() => JSON.parse(sessionStorage.getItem('test_generated') || '{}')"
QUEUED_JS = """() => Object.keys(localStorage)
    .filter((k) => k.startsWith('bk_q_'))
    .flatMap((k) => (JSON.parse(localStorage.getItem(k)).e || []).map((e) => e.event_id))"""
FAILED_JS = """() => Object.keys(localStorage)
    .filter((k) => k.startsWith('bk_q_'))
    .some((k) => JSON.parse(localStorage.getItem(k)).n >= 1)"""


@dataclass
class Private:
    """A broker, a tracker and a store of this test's own."""

    broker: KafkaBroker
    tracker_url: str
    store_url: str
    log_dir: Path
    processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + _tail(self.log_dir / f"{name}.log") for name, _ in self.processes
        )


def _tail(path: Path, lines: int = 30) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def _start(private: Private, name: str, argv: list[str], env: dict[str, str], health: str) -> None:
    log_path = private.log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    private.processes.append((name, process))
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited during start-up:\n{_tail(log_path)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(health, timeout=1.0).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} not healthy at {health}:\n{_tail(log_path)}")
        time.sleep(0.1)


@contextlib.contextmanager
def _services(broker: KafkaBroker, log_dir: Path) -> Iterator[Private]:
    tracker_port, store_port = free_port(), free_port()
    private = Private(
        broker, f"http://{HOST}:{tracker_port}", f"http://{HOST}:{store_port}", log_dir
    )
    site = {"site_id": SITE_ID, "site_key": SITE_KEY, "allowed_origins": [private.store_url]}
    try:
        _start(
            private,
            "tracker",
            [sys.executable, "-m", "tracker"],
            {
                **os.environ,
                "TRACKER_KAFKA_BOOTSTRAP": broker.bootstrap,
                "TRACKER_HOST": HOST,
                "TRACKER_PORT": str(tracker_port),
                "TRACKER_SITES": json.dumps([site]),
                "TRACKER_LOG_JSON": "false",
            },
            f"{private.tracker_url}/readyz",
        )
        _start(
            private,
            "store",
            [
                *(sys.executable, "-m", "beckon_devstack.demo_store"),
                *("--host", HOST, "--port", str(store_port)),
                *("--tracker-url", private.tracker_url, "--site-key", SITE_KEY),
                "--allow-automation",
            ],
            dict(os.environ),
            f"{private.store_url}/healthz",
        )
        yield private
    finally:
        for _, process in reversed(private.processes):
            stop_process(process)


@pytest.fixture
def private(private_broker: KafkaBroker, tmp_path: Path) -> Iterator[Private]:
    """Never the session's broker: this one is killed."""
    with _services(private_broker, tmp_path) as services:
        yield services


@dataclass
class Wire:
    """The collect requests the tab made and what the tracker answered."""

    sent: list[Request] = field(default_factory=list)
    answers: list[Response] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        context.on("request", lambda r: self.sent.append(r) if "/v1/collect" in r.url else None)
        context.on("response", lambda r: self.answers.append(r) if "/v1/collect" in r.url else None)

    def statuses(self) -> Counter[int]:
        return Counter(response.status for response in self.answers)


async def _page_ready(page: Page) -> str:
    await page.wait_for_function("window.beckon && window.beckon.loaded === true")
    visitor = await page.evaluate("window.beckon.visitorId()")
    assert isinstance(visitor, str)
    assert visitor
    return visitor


async def _tick(page: Page, label: str, n: int) -> None:
    await page.evaluate("([label, n]) => beckon('track', label, {n})", [label, n])


async def _browse_until(page: Page, label: str, until: float, counter: list[int]) -> None:
    """Generate events on this page until `until` (monotonic): the outage's traffic."""
    while time.monotonic() < until:
        counter[0] += 1
        await _tick(page, label, counter[0])
        await asyncio.sleep(0.5)


async def test_no_event_is_lost_or_doubled_across_a_30s_broker_outage(
    private: Private, new_context: Any
) -> None:
    context = await new_context()
    await context.add_init_script(RECORD_GENERATED)
    wire = Wire()
    wire.watch(context)
    page = await context.new_page()
    store = private.store_url

    # before: a product page, its events delivered (a quiet moment: nothing in flight)
    await page.goto(f"{store}/p/{PRODUCT}")
    visitor = await _page_ready(page)
    await page.get_by_test_id("add-to-cart").click()
    await page.evaluate("beckon('flush')")
    await page.wait_for_function(f"({QUEUED_JS})().length == 0", timeout=WAIT_MS)
    assert wire.statuses()
    assert set(wire.statuses()) == {200}

    # the broker dies; the visitor adds to the cart and leaves the page at once, before the
    # snippet has seen any failure (what it sends at pagehide must not be lost)
    await asyncio.to_thread(private.broker.kill)
    killed_at = time.monotonic()
    await page.get_by_test_id("add-to-cart").click()
    await page.get_by_test_id(f"nav-{CATEGORY}").click()
    await page.wait_for_url(f"**/c/{CATEGORY}")
    assert await _page_ready(page) == visitor

    # the second page: events while the tracker answers 503, until the snippet has seen one
    counter = [0]
    while not await page.evaluate(FAILED_JS):
        counter[0] += 1
        await _tick(page, "outage-category", counter[0])
        await asyncio.sleep(0.5)
    assert time.monotonic() - killed_at < OUTAGE_S, "the first 503 came after the outage"

    # a third page while the broker is still down: the stored queue must come along
    await page.get_by_test_id(f"product-link-{PRODUCT}").click()
    await page.wait_for_url(f"**/p/{PRODUCT}")
    assert await _page_ready(page) == visitor
    await page.get_by_test_id("add-to-cart").click()
    await _browse_until(page, "outage-product", killed_at + OUTAGE_S, counter)

    restarting_at = time.monotonic()
    await asyncio.to_thread(private.broker.start)
    await wait_until_serving(private.broker.bootstrap, timeout_s=60)
    restarted_at = time.monotonic()
    # events after the broker is back, on the same page, then the queue must drain
    await _tick(page, "after", 0)
    try:
        await page.wait_for_function(f"({QUEUED_JS})().length == 0", timeout=WAIT_MS)
    except Exception as exc:
        raise AssertionError(f"the queue did not drain\n{private.logs()}") from exc
    drained_at = time.monotonic()

    generated: dict[str, str] = await page.evaluate(GENERATED_JS)

    def mine(record: Any) -> bool:
        return bool(json.loads(record.value).get("visitor_id") == visitor)

    try:
        records = await read_records(
            private.broker.bootstrap,
            TRACKING_EVENTS.name,
            match=mine,
            until=lambda found: set(generated) <= {json.loads(r.value)["event_id"] for r in found},
            drain=True,
            timeout_s=30,
        )
    except TimeoutError:  # some never arrived: read what did, to say which are missing
        records = await read_records(
            private.broker.bootstrap,
            TRACKING_EVENTS.name,
            match=mine,
            until=lambda _found: True,
            drain=True,
            timeout_s=30,
        )
    counts = Counter(json.loads(r.value)["event_id"] for r in records)
    statuses = wire.statuses()
    print(
        f"\nbroker down {restarting_at - killed_at:.1f} s, serving again after "
        f"{restarted_at - killed_at:.1f} s; {len(generated)} events generated "
        f"({Counter(generated.values())}); {len(records)} records for {len(counts)} ids; "
        f"answers {dict(statuses)}; queue drained {drained_at - restarted_at:.1f} s after the "
        f"restart"
    )
    missing = set(generated) - set(counts)
    assert not missing, f"lost: {sorted((generated[i], i) for i in missing)}"
    assert {i: n for i, n in counts.items() if n > 1} == {}, "delivered twice"
    assert set(counts) == set(generated)
    assert statuses[503] >= 1  # the outage was seen as 503s, not as network errors
    _assert_retry_after_honoured(wire)


def _assert_retry_after_honoured(wire: Wire) -> None:
    """No collect request starts sooner than the previous 503's Retry-After allowed (browser
    timestamps; 50 ms for the clocks' resolution)."""
    starts = sorted(request.timing["startTime"] for request in wire.sent)
    for response in wire.answers:
        if response.status != 503:
            continue
        retry_after = response.headers.get("retry-after")
        assert retry_after is not None
        assert retry_after.isdigit()
        timing = response.request.timing
        answered = timing["startTime"] + timing["responseStart"]
        later = [start for start in starts if start > answered]
        if later:
            assert later[0] >= answered + int(retry_after) * 1000 - 50, (
                f"a request {later[0] - answered:.0f} ms after a 503 with Retry-After {retry_after}"
            )
