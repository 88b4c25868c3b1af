"""The running system for browser tests: the real tracker and the demo store as processes,
Chromium driven by Playwright, and a reader for what reached `tracking.events`.

The broker comes from `kafka_bootstrap` (beckon_devstack.pytest_plugin: a real Apache Kafka
with every topic created).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import ConsumerRecord
from beckon_contracts.topics import TRACKING_EVENTS
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker
from beckon_devstack.kafka_probe import read_records
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from beckon_messaging import ensure_topics
from playwright.async_api import Browser, BrowserContext, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SITE_ID = "demo"
SITE_KEY = "pk_demo_beckon"
START_TIMEOUT_S = 60.0
HOST = "127.0.0.1"


@pytest.fixture
async def private_broker(tmp_path: Path) -> AsyncIterator[KafkaBroker]:
    """A broker of the test's own, with the registry's topics: for a test that kills the
    broker, or that must know no other test's worker reads its records (the session's chat
    scenario runs a triggers worker over every site's tracking on the session broker)."""
    import asyncio

    broker = KafkaBroker(tmp_path / "kafka", progress=lambda _message: None)
    await asyncio.to_thread(broker.start)
    try:
        await wait_until_serving(broker.bootstrap, timeout_s=60)
        await ensure_topics(broker.bootstrap)
        yield broker
    finally:
        await asyncio.to_thread(broker.stop)


@dataclass
class Service:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _start(
    name: str, argv: list[str], env: dict[str, str], health_url: str, log_dir: Path
) -> Service:
    """Start a process and wait until health_url answers 200; fail with its log otherwise."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    service = Service(name, health_url.rsplit("/", 1)[0], process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {process.returncode} during start-up:\n{service.log_tail()}"
            )
        try:
            if httpx.get(health_url, timeout=1.0).status_code == 200:
                return service
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            _stop(service)
            raise TimeoutError(f"{name} not healthy at {health_url}:\n{service.log_tail()}")
        time.sleep(0.1)


def _stop(service: Service) -> None:
    stop_process(service.process)


@dataclass(frozen=True)
class Stack:
    tracker_url: str
    store_url: str  # the snippet may track automated browsers (--allow-automation)
    strict_store_url: str  # started without --allow-automation, as in production
    bootstrap: str


@pytest.fixture(scope="session")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("e2e-logs")
    tracker_port, store_port, strict_port = free_port(), free_port(), free_port()
    tracker_url = f"http://{HOST}:{tracker_port}"
    store_url = f"http://{HOST}:{store_port}"
    strict_store_url = f"http://{HOST}:{strict_port}"
    site = {
        "site_id": SITE_ID,
        "site_key": SITE_KEY,
        "write_key": "wk_demo_beckon",
        "allowed_origins": [store_url, strict_store_url],
    }
    tracker_env = {
        **os.environ,
        "TRACKER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "TRACKER_HOST": HOST,
        "TRACKER_PORT": str(tracker_port),
        "TRACKER_SITES": json.dumps([site]),
    }
    services: list[Service] = []
    try:
        services.append(
            _start(
                "tracker",
                [sys.executable, "-m", "tracker"],
                tracker_env,
                f"{tracker_url}/readyz",
                log_dir,
            )
        )
        for name, port, extra in (
            ("store", store_port, ["--allow-automation"]),
            ("strict-store", strict_port, []),
        ):
            argv = [
                *(sys.executable, "-m", "beckon_devstack.demo_store"),
                *("--host", HOST, "--port", str(port)),
                *("--tracker-url", tracker_url, "--site-key", SITE_KEY),
                *extra,
            ]
            services.append(
                _start(name, argv, dict(os.environ), f"http://{HOST}:{port}/healthz", log_dir)
            )
        yield Stack(tracker_url, store_url, strict_store_url, kafka_bootstrap)
    finally:
        for service in reversed(services):
            _stop(service)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Chromium presenting itself as desktop Chrome, as the visitors these tests play would.

    The tracker rightly flags "HeadlessChrome" as a bot. A per-context user agent does not
    reach sendBeacon / keepalive requests, so the browser gets --user-agent at launch.
    """
    async with async_playwright() as playwright:
        probe = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await probe.new_page()
            headless_agent: str = await page.evaluate("navigator.userAgent")
        finally:
            await probe.close()
        user_agent = headless_agent.replace("HeadlessChrome", "Chrome")
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--user-agent={user_agent}"]
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def new_context(browser: Browser) -> AsyncIterator[Callable[..., Any]]:
    """Fresh browser contexts (a new visitor each: empty cookies and storage)."""
    contexts: list[BrowserContext] = []

    async def make(**options: Any) -> BrowserContext:
        context = await browser.new_context(**options)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


# ---- reading tracking.events ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str
    headers: dict[str, bytes]
    event: dict[str, Any]


def _as_record(message: ConsumerRecord) -> Record:
    return Record(
        partition=message.partition,
        offset=message.offset,
        key=(message.key or b"").decode(),
        headers={k: bytes(v) for k, v in message.headers},
        event=json.loads(message.value),
    )


async def read_tracking_events(
    bootstrap: str,
    until: Callable[[list[Record]], bool],
    *,
    visitor_ids: Collection[str],
    deadline_s: float = 60.0,
) -> list[Record]:
    """These visitors' records in partition order, read from the earliest offset.

    Reads until `until(records)` holds, then drains every partition to its high watermark so
    late duplicates would be seen too.
    """
    messages = await read_records(
        bootstrap,
        TRACKING_EVENTS.name,
        match=lambda message: _visitor_of(message) in visitor_ids,
        until=lambda found: until([_as_record(message) for message in found]),
        drain=True,
        timeout_s=deadline_s,
    )
    return [_as_record(message) for message in messages]


def _visitor_of(message: ConsumerRecord) -> object:
    """The record's visitor id; None for records that aren't JSON objects (other tests on
    the shared broker write deliberately broken ones to check they are dead-lettered)."""
    try:
        data = json.loads(message.value)
    except ValueError:
        return None
    return data.get("visitor_id") if isinstance(data, dict) else None


@pytest.fixture
def tracking_events(stack: Stack) -> Callable[..., Any]:
    """`await tracking_events(visitor_id(s), until)`: their records on tracking.events."""

    async def read(
        visitors: str | Collection[str],
        until: Callable[[list[Record]], bool],
        deadline_s: float = 60.0,
    ) -> list[Record]:
        ids = {visitors} if isinstance(visitors, str) else set(visitors)
        return await read_tracking_events(
            stack.bootstrap, until, visitor_ids=ids, deadline_s=deadline_s
        )

    return read


# ---- the chat scenario: triggers + chat + tracker + a store that loads the widget ------------

CHAT_SECRET = "e2e-chat-secret-not-for-production"
TRIGGERS_TOKEN = "e2e-triggers-token-not-for-production"  # chat's, and this scenario's, key to it
# the notifier's: reply tokens, and what the SMTP sink sends to its inbound endpoint
REPLY_SECRET = "e2e-reply-secret-not-for-production"
INBOUND_SECRET = "e2e-inbound-secret-not-for-production"
REPLY_DOMAIN = "reply.e2e-chat.test"
# A site of its own: the shared broker holds other tests' events for `demo`, and a worker
# replaying them would spend the team's invitation budget on those visitors.
CHAT_SITE_ID = "e2e-chat"
CHAT_SITE_KEY = "pk_e2e_chat_site"
AGENT_EMAIL = "anna@e2e-chat.test"  # an admin of the site, in both teams
AGENT_PASSWORD = "e2e-password"
SECOND_AGENT_EMAIL = "ben@e2e-chat.test"  # an agent in sales
SUPPORT_AGENT_EMAIL = "cecilia@e2e-chat.test"  # an agent in support
E2E_SEED = f"""\
sites:
  - site_id: {CHAT_SITE_ID}
    site_key: {CHAT_SITE_KEY}
    name: Ridgeline Outfitters (e2e)
    identity_verification: false  # the storefront identifies without a store server's hash
    settings: {{greeting: "Hi! Questions?", default_team: sales, typing_preview: true}}
    teams: [{{team: sales, name: Sales}}, {{team: support, name: Customer service}}]
    agents:
      - {{email: {AGENT_EMAIL}, password: {AGENT_PASSWORD}, name: Anna Virtanen,
         role: admin, teams: [sales, support]}}
      - {{email: {SECOND_AGENT_EMAIL}, password: {AGENT_PASSWORD}, name: Ben Koski,
         teams: [sales]}}
      - {{email: {SUPPORT_AGENT_EMAIL}, password: {AGENT_PASSWORD}, name: Cecilia Laine,
         teams: [support]}}
"""
E2E_RULES = f"""\
site_id: {CHAT_SITE_ID}
min_browsing: 0s
rules:
  - id: e2e-second-look
    name: Second look at a product
    priority: 50
    when:
      all:
        - page_type: product
        - product_views: {{gte: 2}}
    message: "Still thinking about the {{product_name}}? Ask me anything about it."
    limits: {{once_per: visitor}}
    holdout_percent: 0   # the default holds 10 % of visitors out; this one must be invited
"""


@dataclass(frozen=True)
class ChatStack:
    store_url: str
    chat_url: str
    tracker_url: str
    triggers_url: str
    database_url: str
    bootstrap: str
    leads_url: str = ""  # the leads service next to chat (same database, schema `leads`)
    notifier_url: str = ""  # the notifier next to chat (same database, schema `notifier`)
    sink_url: str = ""  # the SMTP sink the notifier sends to: its HTTP API (/api/messages)
    sink_smtp_port: int = 0  # and its SMTP port (mail for reply_domain goes to the notifier)
    reply_domain: str = ""
    site_id: str = CHAT_SITE_ID
    site_key: str = CHAT_SITE_KEY
    agent_email: str = AGENT_EMAIL
    agent_password: str = AGENT_PASSWORD
    second_agent_email: str = SECOND_AGENT_EMAIL
    support_agent_email: str = SUPPORT_AGENT_EMAIL
    rule_id: str = "e2e-second-look"
    triggers_token: str = TRIGGERS_TOKEN


@pytest.fixture
def start_store(
    chat_stack: ChatStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], str]]:
    """`start_store()`: one more demo store of the chat stack's site on a port (an origin)
    of its own, stopped after the test; its URL."""
    log_dir = tmp_path_factory.mktemp("e2e-stores")
    started: list[Service] = []

    def start() -> str:
        port = free_port()
        argv = [
            *(sys.executable, "-m", "beckon_devstack.demo_store"),
            *("--host", HOST, "--port", str(port)),
            *("--tracker-url", chat_stack.tracker_url, "--site-key", chat_stack.site_key),
            *("--chat-url", chat_stack.chat_url, "--allow-automation"),
        ]
        url = f"http://{HOST}:{port}"
        name = f"store-{port}"
        started.append(_start(name, argv, dict(os.environ), f"{url}/healthz", log_dir))
        return url

    yield start
    for service in started:
        _stop(service)


@pytest.fixture(scope="session")
def chat_stack(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChatStack]:
    """The whole path of a proactive chat as processes: tracker → triggers → chat → widget,
    on the session's broker (site `e2e-chat` is this scenario's alone)."""
    import asyncio

    import asyncpg

    log_dir = tmp_path_factory.mktemp("e2e-chat-logs")
    tracker_port, store_port, chat_port, triggers_port, leads_port = (free_port() for _ in range(5))
    notifier_port, sink_smtp_port, sink_http_port = (free_port() for _ in range(3))
    tracker_url = f"http://{HOST}:{tracker_port}"
    store_url = f"http://{HOST}:{store_port}"
    chat_url = f"http://{HOST}:{chat_port}"
    leads_url = f"http://{HOST}:{leads_port}"
    notifier_url = f"http://{HOST}:{notifier_port}"
    sink_url = f"http://{HOST}:{sink_http_port}"
    rules_file = log_dir / "rules.yaml"
    rules_file.write_text(E2E_RULES)
    seed_file = log_dir / "seed.yaml"
    seed_file.write_text(E2E_SEED)

    # a database of its own, so the tenant's rows are this scenario's alone
    db_name = f"chat_e2e_{os.getpid()}"

    async def create_db() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db_name}"')
            await conn.execute(f'CREATE DATABASE "{db_name}"')
        finally:
            await conn.close()
        base, _, query = database_url.partition("?")
        return f"{base.rsplit('/', 1)[0]}/{db_name}" + (f"?{query}" if query else "")

    chat_db = asyncio.run(create_db())
    base_env = dict(os.environ)
    services: list[Service] = []
    try:
        services.append(
            _start(
                "chat",
                [sys.executable, "-m", "chat"],
                {
                    **base_env,
                    "CHAT_DATABASE_URL": chat_db,
                    "CHAT_KAFKA_BOOTSTRAP": kafka_bootstrap,
                    # the console tests' chat shares the session broker: groups of its own,
                    # or the two split chat.invitations and each misses invitations
                    "CHAT_CONSUMER_GROUP": f"chat-e2e-scenario-{os.getpid()}",
                    "CHAT_PORT": str(chat_port),
                    "CHAT_SECRET_KEY": CHAT_SECRET,
                    "CHAT_MIGRATE_ON_START": "true",
                    "CHAT_TRIGGERS_URL": f"http://{HOST}:{triggers_port}",
                    "CHAT_TRIGGERS_TOKEN": TRIGGERS_TOKEN,
                    "CHAT_SEED_FILE": str(seed_file),
                    "CHAT_SEED_ORIGINS": json.dumps([store_url]),
                    "CHAT_LEADS_URL": leads_url,
                    "CHAT_NOTIFIER_URL": notifier_url,
                    "CHAT_LOG_JSON": "false",
                },
                f"{chat_url}/readyz",
                log_dir,
            )
        )
        # leads next to chat: the console's session works there (chat's secret, confirmed by
        # chat's /v1/console/me), the console's origin may call it (CORS), it captures the
        # scenario's leads from chat.events and follows agents.presence
        services.append(
            _start(
                "leads",
                [sys.executable, "-m", "leads"],
                {
                    **base_env,
                    "LEADS_DATABASE_URL": chat_db,  # its own schema, `leads`, migrated
                    "LEADS_MIGRATE_ON_START": "true",
                    "LEADS_KAFKA_BOOTSTRAP": kafka_bootstrap,
                    "LEADS_CONSUMER_GROUP": f"leads-e2e-scenario-{os.getpid()}",
                    "LEADS_HOST": HOST,
                    "LEADS_PORT": str(leads_port),
                    "LEADS_CHAT_URL": chat_url,
                    "LEADS_AGENT_SESSION_SECRET": CHAT_SECRET,
                    "LEADS_CONSOLE_ORIGINS": chat_url,
                    "LEADS_CAPTURE_VISITOR_STATES_WAIT_S": "5",
                    # the console's webhook tests deliver to a receiver on this machine
                    "LEADS_WEBHOOK_ALLOW_HTTP": "true",
                    "LEADS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
                    "LEADS_LOG_JSON": "false",
                },
                f"{leads_url}/readyz",
                log_dir,
            )
        )
        # the notifier next to chat, sending to an SMTP sink that hands mail for the reply
        # domain back to its inbound endpoint (a mail provider's inbound webhook, locally);
        # the console's session works there as on leads
        services.append(
            _start(
                "smtp-sink",
                [
                    *(sys.executable, "-m", "beckon_devstack.smtp_sink", "--host", HOST),
                    *("--smtp-port", str(sink_smtp_port), "--http-port", str(sink_http_port)),
                    *("--handoff-domain", REPLY_DOMAIN),
                    *("--handoff-url", f"{notifier_url}/v1/inbound/mail"),
                    *("--handoff-secret", INBOUND_SECRET),
                ],
                base_env,
                f"{sink_url}/healthz",
                log_dir,
            )
        )
        services.append(
            _start(
                "notifier",
                [sys.executable, "-m", "notifier"],
                {
                    **base_env,
                    "NOTIFIER_DATABASE_URL": chat_db,  # its own schema, `notifier`, migrated
                    "NOTIFIER_MIGRATE_ON_START": "true",
                    "NOTIFIER_ENVIRONMENT": "test",
                    "NOTIFIER_KAFKA_BOOTSTRAP": kafka_bootstrap,
                    "NOTIFIER_CREATE_TOPICS": "false",
                    "NOTIFIER_CONSUMER_GROUP": f"notifier-e2e-scenario-{os.getpid()}",
                    "NOTIFIER_INSTANCE_ID": f"notifier-e2e-{os.getpid()}",
                    "NOTIFIER_HOST": HOST,
                    "NOTIFIER_PORT": str(notifier_port),
                    "NOTIFIER_SMTP_HOST": HOST,
                    "NOTIFIER_SMTP_PORT": str(sink_smtp_port),
                    "NOTIFIER_REPLY_DOMAIN": REPLY_DOMAIN,
                    "NOTIFIER_REPLY_SECRETS": REPLY_SECRET,
                    "NOTIFIER_INBOUND_SECRET": INBOUND_SECRET,
                    "NOTIFIER_CHAT_URL": chat_url,
                    "NOTIFIER_AGENT_SESSION_SECRET": CHAT_SECRET,
                    "NOTIFIER_CONSOLE_ORIGINS": chat_url,
                    "NOTIFIER_CONSOLE_URL": f"{chat_url}/console/",
                    "NOTIFIER_PUBLIC_URL": notifier_url,
                    "NOTIFIER_DIRECTORY_WAIT_S": "5",
                    "NOTIFIER_SEND_POLL_S": "0.2",
                    "NOTIFIER_LOG_JSON": "false",
                },
                f"{notifier_url}/readyz",
                log_dir,
            )
        )
        services.append(
            _start(
                "triggers",
                [sys.executable, "-m", "triggers"],
                {
                    **base_env,
                    "TRIGGERS_KAFKA_BOOTSTRAP": kafka_bootstrap,
                    "TRIGGERS_APP_ID": f"triggers-e2e-chat-{os.getpid()}",
                    "TRIGGERS_PORT": str(triggers_port),
                    "TRIGGERS_DATA_DIR": str(log_dir / "triggers-data"),
                    "TRIGGERS_SESSION_TIMEOUT_S": "6",
                    "TRIGGERS_API_TOKEN": TRIGGERS_TOKEN,
                    # the session broker holds every earlier test's tracking: this scenario's
                    # worker starts at the end, or its visitors wait behind that whole backlog
                    # (a full run timed out four invitations so)
                    "TRIGGERS_START_FROM": "latest",
                },
                f"http://{HOST}:{triggers_port}/readyz",
                log_dir,
            )
        )
        # published after the worker is up: the latest record of the site wins
        subprocess.run(
            [
                sys.executable,
                "-m",
                "triggers.cli",
                "rules",
                "apply",
                str(rules_file),
                "--bootstrap",
                kafka_bootstrap,
            ],
            check=True,
            capture_output=True,
        )
        site = {
            "site_id": CHAT_SITE_ID,
            "site_key": CHAT_SITE_KEY,
            "allowed_origins": [store_url],
        }
        services.append(
            _start(
                "chat-tracker",
                [sys.executable, "-m", "tracker"],
                {
                    **base_env,
                    "TRACKER_KAFKA_BOOTSTRAP": kafka_bootstrap,
                    "TRACKER_HOST": HOST,
                    "TRACKER_PORT": str(tracker_port),
                    "TRACKER_SITES": json.dumps([site]),
                },
                f"{tracker_url}/readyz",
                log_dir,
            )
        )
        services.append(
            _start(
                "chat-store",
                [
                    *(sys.executable, "-m", "beckon_devstack.demo_store"),
                    *("--host", HOST, "--port", str(store_port)),
                    *("--tracker-url", tracker_url, "--site-key", CHAT_SITE_KEY),
                    *("--chat-url", chat_url, "--allow-automation"),
                ],
                base_env,
                f"{store_url}/healthz",
                log_dir,
            )
        )
        yield ChatStack(
            store_url,
            chat_url,
            tracker_url,
            f"http://{HOST}:{triggers_port}",
            chat_db,
            kafka_bootstrap,
            leads_url=leads_url,
            notifier_url=notifier_url,
            sink_url=sink_url,
            sink_smtp_port=sink_smtp_port,
            reply_domain=REPLY_DOMAIN,
        )
    finally:
        for service in reversed(services):
            _stop(service)
