"""With the triggers worker stopped, no invitation is shown and chat keeps working.

The whole path of a proactive chat as processes of the test's own (tracker, chat, the demo
store that loads the snippet and the widget; the triggers worker not running), on a broker of
the test's own (the session broker has the session chat scenario's triggers worker, which reads
every site's rules and tracking: it would invite here) and the session's Postgres. A visitor
makes the site's rule true (a second look at a product): the events are on `tracking.events`,
no invitation comes, and the visitor still opens the widget, writes, and gets the agent's
answer. Then the worker starts, and the next visitor who makes the rule true is invited: the
"no invitation" above is what a stopped worker means, not a rule that could never fire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from beckon_contracts.topics import TRACKING_EVENTS
from beckon_devstack.kafka import KafkaBroker
from beckon_devstack.kafka_probe import read_records
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from chat_testing import (
    AgentClient,
    ChatProcess,
    SiteSpec,
    add_site,
    frame_is,
    scratch_database,
    site_spec,
    start_chat,
    stop_chat,
    unique,
)
from playwright.async_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

HOST = "127.0.0.1"
WAIT_MS = 60_000
START_TIMEOUT_S = 90.0
TOKEN = "degradation-triggers-token-not-for-production"
PRODUCT = "/p/trail-runner-x"
RULES = """\
site_id: {site_id}
min_browsing: 0s
rules:
  - id: second-look
    name: Second look at a product
    priority: 50
    when:
      all:
        - page_type: product
        - product_views: {{gte: 2}}
    message: "Still thinking about the {{product_name}}?"
    limits: {{once_per: visitor}}
    holdout_percent: 0
"""


@dataclass
class Pipeline:
    chat: ChatProcess
    site: SiteSpec
    store_url: str
    triggers_url: str
    triggers_port: int
    bootstrap: str
    log_dir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], health: str) -> None:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.processes.append(process)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited during start-up:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=1.0).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not healthy at {health}:\n{log_path.read_text()}")
            time.sleep(0.1)

    def start_triggers(self) -> None:
        self.start(
            "triggers",
            [sys.executable, "-m", "triggers"],
            {
                **os.environ,
                "TRIGGERS_KAFKA_BOOTSTRAP": self.bootstrap,
                "TRIGGERS_APP_ID": unique("triggers-degradation"),
                "TRIGGERS_PORT": str(self.triggers_port),
                "TRIGGERS_DATA_DIR": str(self.log_dir / "triggers-data"),
                "TRIGGERS_SESSION_TIMEOUT_S": "6",
                "TRIGGERS_API_TOKEN": TOKEN,
                # the visitor before it started is not this worker's to invite
                "TRIGGERS_START_FROM": "latest",
            },
            f"{self.triggers_url}/readyz",
        )


@pytest.fixture
async def pipeline(
    database_url: str, private_broker: KafkaBroker, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    kafka_bootstrap = private_broker.bootstrap
    store_port, tracker_port, triggers_port = free_port(), free_port(), free_port()
    store_url = f"http://{HOST}:{store_port}"
    tracker_url = f"http://{HOST}:{tracker_port}"
    triggers_url = f"http://{HOST}:{triggers_port}"
    async with scratch_database(database_url, "chat_no_triggers") as (url, _pool):
        site = await add_site(
            url,
            site_spec(unique("notrig"), agents=[("ann", ["sales"], 5)], origin=store_url),
        )
        rules = tmp_path / "rules.yaml"
        rules.write_text(RULES.format(site_id=site.site_id))
        subprocess.run(
            [
                *(sys.executable, "-m", "triggers.cli", "rules", "apply", str(rules)),
                *("--bootstrap", kafka_bootstrap),
            ],
            check=True,
            capture_output=True,
        )
        chat = await start_chat(
            "no-triggers",
            database_url=url,
            bootstrap=kafka_bootstrap,
            log_dir=tmp_path,
            CHAT_TRIGGERS_URL=triggers_url,  # nothing listens there until the worker starts
            CHAT_TRIGGERS_TOKEN=TOKEN,
        )
        pipeline = Pipeline(
            chat, site, store_url, triggers_url, triggers_port, kafka_bootstrap, tmp_path
        )
        try:
            tracker_site = {
                "site_id": site.site_id,
                "site_key": site.site_key,
                "allowed_origins": [store_url],
            }
            await asyncio.to_thread(
                pipeline.start,
                "tracker",
                [sys.executable, "-m", "tracker"],
                {
                    **os.environ,
                    "TRACKER_KAFKA_BOOTSTRAP": kafka_bootstrap,
                    "TRACKER_HOST": HOST,
                    "TRACKER_PORT": str(tracker_port),
                    "TRACKER_SITES": json.dumps([tracker_site]),
                },
                f"{tracker_url}/readyz",
            )
            await asyncio.to_thread(
                pipeline.start,
                "store",
                [
                    *(sys.executable, "-m", "beckon_devstack.demo_store"),
                    *("--host", HOST, "--port", str(store_port)),
                    *("--tracker-url", tracker_url, "--site-key", site.site_key),
                    *("--chat-url", chat.url, "--allow-automation"),
                ],
                dict(os.environ),
                f"{store_url}/healthz",
            )
            yield pipeline
        finally:
            for process in reversed(pipeline.processes):
                stop_process(process)
            stop_chat(chat)


async def _second_look(page: Page, store_url: str) -> str:
    """Two views of one product: the rule's condition. Returns the visitor id."""
    await page.goto(f"{store_url}{PRODUCT}")
    await expect(page.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await page.reload()
    await expect(page.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    visitor: str = await page.evaluate("window.beckon.visitorId()")
    return visitor


async def test_without_triggers_no_invitation_is_shown_and_chat_keeps_working(
    pipeline: Pipeline, new_context: Any
) -> None:
    chat, site = pipeline.chat, pipeline.site
    agent = AgentClient(chat.url, site.agent("ann"))
    try:
        await agent.login()
        await agent.status("online")
        console = await agent.connect()

        page = await (await new_context()).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        visitor = await _second_look(page, pipeline.store_url)
        # the rule's condition is on tracking.events: a running worker would invite now
        await read_records(
            pipeline.bootstrap,
            TRACKING_EVENTS.name,
            match=lambda r: _is_view_of(r.value, visitor),
            count=2,
            timeout_s=60,
        )

        # chat works: the visitor writes, the agent gets it and answers
        await page.get_by_test_id("beckon-launcher").click()
        await page.get_by_test_id("beckon-input").fill("Is this waterproof?")
        await page.get_by_test_id("beckon-input").press("Enter")
        await page.wait_for_function(
            "(window.BeckonChat.state().conversation || {}).status", timeout=WAIT_MS
        )
        cid = (await page.evaluate("window.BeckonChat.state()"))["conversation"]["id"]
        await console.recv_until(
            lambda f: (
                frame_is("message", conversation_id=cid)(f)
                and f["message"]["text"] == "Is this waterproof?"
            ),
            timeout=WAIT_MS / 1000,
        )
        answer = await agent.post(f"/conversations/{cid}/messages", {"text": "Yes, fully"})
        assert answer.status_code == 201, answer.text
        await expect(
            page.get_by_test_id("beckon-messages").get_by_text("Yes, fully")
        ).to_be_visible(timeout=WAIT_MS)
        # and nothing was shown that a stopped worker could not have sent, nor an error
        await expect(page.get_by_test_id("beckon-invitation")).to_be_hidden()
        assert (await page.evaluate("window.BeckonChat.state()"))["invitation"] is None
        await expect(page.get_by_test_id("beckon-error")).to_be_hidden()
        assert (await page.evaluate("window.BeckonChat.state()"))["away"] is False
        assert errors == []

        # the worker starts: the next visitor who makes the rule true is invited
        await asyncio.to_thread(pipeline.start_triggers)
        await agent.status("away")  # presence told again, after the worker started
        await agent.status("online")
        await _worker_knows(pipeline)
        invited = await (await new_context()).new_page()
        await _second_look(invited, pipeline.store_url)
        await expect(invited.get_by_test_id("beckon-invitation")).to_be_visible(timeout=WAIT_MS)
    finally:
        await agent.aclose()


async def _worker_knows(pipeline: Pipeline) -> None:
    """Until the worker runs the site's rule and sees a free slot in sales."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    found: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=pipeline.triggers_url, headers=auth, timeout=5) as client:
        for _ in range(300):
            found = (await client.get(f"/v1/sites/{pipeline.site.site_id}")).json()
            if "second-look" in found.get("rules", []) and found.get("teams", {}).get(
                "sales", {}
            ).get("free_slots", 0):
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"the worker never ran the rule or saw an agent online: {found}")


def _is_view_of(value: bytes | None, visitor: str) -> bool:
    """A `product_viewed` of `visitor`; other tests leave records on the shared broker's
    tracking.events that are not JSON (the malformed ones of the dead-letter tests)."""
    try:
        event = json.loads(value or b"")
    except ValueError:
        return False
    return isinstance(event, dict) and (event.get("visitor_id"), event.get("type")) == (
        visitor,
        "product_viewed",
    )
