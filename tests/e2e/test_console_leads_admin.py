"""The console's Leads admin screens in a real browser on the real services: per-agent caps,
lead teams, business hours and CRM webhook endpoints, each driven through its screen and
checked through the leads API (and, for webhooks, at a real HTTP receiver on this machine
that verifies every signature with the independent `standardwebhooks` package).

Each test leaves the site as it found it (the other console tests share the stack): caps,
teams, membership and hours are put back, the endpoint is removed, the chats closed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from consoles import (
    a_marked_lead,
    agent_console,
    close_opened_chats,
    console_api,
    leads_call,
    set_locale,
)
from playwright.async_api import Page, expect
from standardwebhooks.webhooks import Webhook

ChatStack = Any  # tests/e2e/conftest.py's dataclass (conftest is not importable by name here)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000
WAIT_S = 30.0


@pytest.fixture(autouse=True)
async def close_the_chats_it_opened(chat_stack: ChatStack) -> Any:
    yield
    await close_opened_chats(chat_stack)


async def open_admin(page: Page, section: str) -> None:
    await page.get_by_test_id("tab-leadadmin").click()
    await page.get_by_test_id(f"ladm-tab-{section}").click()
    body = page.locator(f'[data-testid="ladm-body"][data-section="{section}"]')
    await expect(body).to_be_visible(timeout=WAIT_MS)


async def agent_id_of(page: Page, email: str) -> str:
    agents = (await console_api(page, "GET", "/admin/agents"))["agents"]
    return str(next(a["id"] for a in agents if a["email"] == email))


async def leads_agent(page: Page, agent_id: str) -> dict[str, Any]:
    agents = (await leads_call(page, "GET", "/agents"))["agents"]
    return dict(next(a for a in agents if a["agent_id"] == agent_id))


async def eventually(check: Any, what: str) -> Any:
    """Ask `check()` (sync or async) until it answers something truthy; fail saying `what`
    if it never does."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.2)


# ---- agents ---------------------------------------------------------------------------------


async def test_an_agent_sees_no_leads_admin_and_the_api_refuses_them(
    chat_stack: ChatStack, new_context: Any
) -> None:
    # away: Ben must not be offered the chats the other tests start
    page = await agent_console(
        await new_context(), chat_stack, chat_stack.second_agent_email, status="away"
    )
    await expect(page.get_by_test_id("tab-leads")).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("tab-leadadmin")).to_have_count(0)
    for path in ("/agents", "/teams", "/business-hours", "/webhooks"):
        with pytest.raises(Exception, match="403 admin_only"):
            await leads_call(page, "GET", path)


async def test_an_admin_sets_an_agents_cap_taking_leads_and_teams(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    ben = await agent_id_of(page, chat_stack.second_agent_email)
    await eventually(lambda: leads_agent_or_none(page, ben), "leads knows Ben")
    await open_admin(page, "agents")
    row = page.locator(f'[data-testid="ladm-agent"][data-agent-id="{ben}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)
    try:
        # a cap of 3, saved through the leads API
        await row.get_by_test_id("ladm-agent-cap").fill("3")
        await row.get_by_test_id("ladm-agent-save").click()
        await expect(row.get_by_test_id("ladm-agent-status")).to_have_text(
            "Saved.", timeout=WAIT_MS
        )
        assert (await leads_agent(page, ben))["max_open_leads"] == 3
        await expect(row.get_by_test_id("ladm-agent-open")).to_have_text(re.compile(r"^\d+ of 3$"))

        # out of range: the server's problem at the field, nothing saved
        await row.get_by_test_id("ladm-agent-cap").fill("5000")
        await row.get_by_test_id("ladm-agent-save").click()
        problem = row.locator('[data-testid="ladm-field-error"][data-loc="max_open_leads"]')
        await expect(problem).to_contain_text("1000", timeout=WAIT_MS)
        assert (await leads_agent(page, ben))["max_open_leads"] == 3

        # no leads for Ben for a while, then again
        await row.get_by_test_id("ladm-agent-cap").fill("3")
        await row.get_by_test_id("ladm-agent-active").uncheck()
        await row.get_by_test_id("ladm-agent-save").click()
        await expect(row).to_have_attribute("data-deactivated", "true", timeout=WAIT_MS)
        await expect(problem).to_have_count(0)
        assert (await leads_agent(page, ben))["deactivated"] is True
        await row.get_by_test_id("ladm-agent-active").check()
        await row.get_by_test_id("ladm-agent-save").click()
        await expect(row).to_have_attribute("data-deactivated", "false", timeout=WAIT_MS)
        assert (await leads_agent(page, ben))["deactivated"] is False

        # Ben joins support: chat's membership, which leads follows through agents.presence
        await row.locator('[data-testid="ladm-agent-teams"] input[value="support"]').check()
        await row.get_by_test_id("ladm-agent-save").click()
        await expect(row.get_by_test_id("ladm-agent-status")).to_have_text(
            "Saved.", timeout=WAIT_MS
        )
        chat_agents = (await console_api(page, "GET", "/admin/agents"))["agents"]
        assert sorted(next(a for a in chat_agents if a["id"] == ben)["teams"]) == [
            "sales",
            "support",
        ]
        await eventually(
            lambda: has_teams(page, ben, ["sales", "support"]), "leads sees Ben in support"
        )
        await open_admin(page, "agents")  # shown again: as the leads service has it now
        box = row.locator('[data-testid="ladm-agent-teams"] input[value="support"]')
        await expect(box).to_be_checked(timeout=WAIT_MS)
        await expect(row.get_by_test_id("ladm-agent-cap")).to_have_value("3")
    finally:
        await console_api(page, "POST", f"/admin/agents/{ben}", {"teams": ["sales"]})
        await leads_call(
            page, "PUT", f"/agents/{ben}", {"max_open_leads": None, "deactivated": False}
        )
    await eventually(lambda: has_teams(page, ben, ["sales"]), "leads sees Ben out of support")


async def leads_agent_or_none(page: Page, agent_id: str) -> dict[str, Any] | None:
    agents = (await leads_call(page, "GET", "/agents"))["agents"]
    return next((a for a in agents if a["agent_id"] == agent_id), None)


async def has_teams(page: Page, agent_id: str, teams: list[str]) -> bool:
    return sorted((await leads_agent(page, agent_id))["teams"]) == teams


# ---- teams ----------------------------------------------------------------------------------


async def test_an_admin_creates_a_lead_team_with_a_team_lead(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    anna = await agent_id_of(page, chat_stack.agent_email)
    before = (await leads_call(page, "GET", "/teams"))["teams"]
    await open_admin(page, "teams")
    await expect(page.get_by_test_id("ladm-team")).to_have_count(len(before), timeout=WAIT_MS)
    try:
        await page.get_by_test_id("ladm-team-add").click()
        new = page.get_by_test_id("ladm-team").last
        await new.get_by_test_id("ladm-team-id").fill("e2e-partners")
        await new.get_by_test_id("ladm-team-name").fill("Partner sales")
        await new.get_by_test_id("ladm-team-lead").select_option(anna)
        await page.get_by_test_id("ladm-teams-save").click()
        await expect(page.get_by_test_id("ladm-teams-status")).to_have_text(
            "Saved.", timeout=WAIT_MS
        )
        saved = {t["team"]: t for t in (await leads_call(page, "GET", "/teams"))["teams"]}
        assert saved["e2e-partners"] == {
            "team": "e2e-partners",
            "name": "Partner sales",
            "lead_agent_id": anna,
        }
        assert {t["team"] for t in before} <= set(saved)  # the others kept
        row = page.locator('[data-testid="ladm-team"][data-team="e2e-partners"]')
        await expect(row.get_by_test_id("ladm-team-lead")).to_have_value(anna)

        # the same id twice: refused, the problem in the second one's row
        await page.get_by_test_id("ladm-team-add").click()
        twin = page.get_by_test_id("ladm-team").last
        await twin.get_by_test_id("ladm-team-id").fill("e2e-partners")
        await page.get_by_test_id("ladm-teams-save").click()
        await expect(twin.get_by_test_id("ladm-field-error")).to_contain_text(
            "listed twice", timeout=WAIT_MS
        )
        assert len((await leads_call(page, "GET", "/teams"))["teams"]) == len(saved)

        # removed again through the screen
        await twin.get_by_test_id("ladm-team-remove").click()
        await row.get_by_test_id("ladm-team-remove").click()
        await page.get_by_test_id("ladm-teams-save").click()
        await expect(page.get_by_test_id("ladm-teams-status")).to_have_text(
            "Saved.", timeout=WAIT_MS
        )
        assert (await leads_call(page, "GET", "/teams"))["teams"] == before
    finally:
        await leads_call(page, "PUT", "/teams", {"teams": before})


# ---- business hours -------------------------------------------------------------------------


async def test_an_admin_saves_business_hours_and_sees_bad_ones_at_their_fields(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    before = await leads_call(page, "GET", "/business-hours")
    await open_admin(page, "hours")
    hours = page.get_by_test_id("ladm-hours-section")
    try:
        await hours.get_by_test_id("ladm-hours-timezone").fill("Europe/Helsinki")
        await hours.get_by_test_id("ladm-hours-always").uncheck()
        for day in ("mon", "tue", "wed", "thu", "fri"):
            await hours.get_by_test_id(f"ladm-hours-{day}").fill("09:00-17:00")
        await hours.get_by_test_id("ladm-hours-sat").fill("10:00-14:00, 15:00-16:00")
        await hours.get_by_test_id("ladm-hours-sun").fill("")
        await hours.get_by_test_id("ladm-hours-holidays").fill("2030-12-25\n2030-12-24")
        await hours.get_by_test_id("ladm-hours-save").click()
        await expect(hours.get_by_test_id("ladm-hours-status")).to_have_text(
            "Saved.", timeout=WAIT_MS
        )
        saved = await leads_call(page, "GET", "/business-hours")
        assert saved["timezone"] == "Europe/Helsinki"
        assert saved["hours"]["mon"] == ["09:00-17:00"]
        assert saved["hours"]["sat"] == ["10:00-14:00", "15:00-16:00"]
        assert saved["hours"]["sun"] == []
        assert saved["holidays"] == ["2030-12-24", "2030-12-25"]

        # a bad timezone and a bad range: each at its field; nothing saved
        await hours.get_by_test_id("ladm-hours-timezone").fill("Mars/Olympus")
        await hours.get_by_test_id("ladm-hours-mon").fill("9 to 5")
        await hours.get_by_test_id("ladm-hours-save").click()
        errors = hours.get_by_test_id("ladm-field-error")
        await expect(errors.first).to_be_visible(timeout=WAIT_MS)
        at = hours.locator('[data-error-for="timezone"] [data-testid="ladm-field-error"]')
        await expect(at).to_contain_text("Mars/Olympus")
        mon = hours.locator('[data-error-for="hours.mon"] [data-testid="ladm-field-error"]')
        await expect(mon).to_have_count(1)
        assert await leads_call(page, "GET", "/business-hours") == saved

        # around the clock again
        await hours.get_by_test_id("ladm-hours-timezone").fill("UTC")
        await hours.get_by_test_id("ladm-hours-holidays").fill("")
        await hours.get_by_test_id("ladm-hours-always").check()
        await hours.get_by_test_id("ladm-hours-save").click()
        await expect(hours.get_by_test_id("ladm-hours-status")).to_have_text(
            "Saved.", timeout=WAIT_MS
        )
        await expect(errors).to_have_count(0)
        assert (await leads_call(page, "GET", "/business-hours"))["hours"] is None

        # in Finnish
        await set_locale(page, "fi")
        await expect(page.get_by_test_id("ladm-tab-hours")).to_have_text("Aukioloajat")
        await expect(page.get_by_test_id("ladm-hours-save")).to_have_text("Tallenna aukioloajat")
    finally:
        await leads_call(page, "PUT", "/business-hours", before)


# ---- webhooks -------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def type(self) -> str:
        return str(json.loads(self.body)["type"])


@dataclass
class Receiver:
    url: str
    got: list[Received] = field(default_factory=list)

    def of(self, kind: str, contains: str = "") -> list[Received]:
        return [r for r in self.got if r.type == kind and contains.encode() in r.body]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A CRM's webhook receiver on this machine: records each request, answers 200."""
    lock = threading.Lock()
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                found.got.append(Received({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/beckon"
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


def verified(secret: str, request: Received) -> Any:
    """The body, if the request's signature verifies with `secret` (else raises)."""
    return Webhook(secret).verify(request.body, request.headers)


async def test_an_admin_adds_a_webhook_endpoint_tests_it_and_replays_a_delivery(
    chat_stack: ChatStack, new_context: Any, receiver: Receiver
) -> None:
    context = await new_context()
    await context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=chat_stack.chat_url
    )
    page = await agent_console(context, chat_stack)
    await open_admin(page, "webhooks")
    try:
        # a new endpoint: its secret is shown once, with a copy button
        await page.get_by_test_id("ladm-hook-add").click()
        form = page.get_by_test_id("ladm-hook-new")
        await form.get_by_test_id("ladm-hook-url").fill(receiver.url)
        await form.get_by_test_id("ladm-hook-description").fill("e2e CRM")
        await form.locator('[data-testid="ladm-hook-events"] input[value="lead.created"]').check()
        await form.get_by_test_id("ladm-hook-save").click()
        card = page.get_by_test_id("ladm-hook").filter(has_text=receiver.url)
        await expect(card).to_have_count(1, timeout=WAIT_MS)
        box = card.get_by_test_id("ladm-hook-secret-box")
        await expect(box).to_contain_text("you won't see it again")
        secret = await card.get_by_test_id("ladm-hook-secret").input_value()
        assert secret.startswith("whsec_")
        await card.get_by_test_id("ladm-hook-secret-copy").click()
        await expect(card.get_by_test_id("ladm-hook-secret-copied")).to_have_text("Copied.")
        assert await page.evaluate("navigator.clipboard.readText()") == secret
        endpoint_id = str(await card.get_attribute("data-endpoint-id"))
        listed = (await leads_call(page, "GET", "/webhooks"))["endpoints"]
        assert all("secret" not in e for e in listed)
        await card.get_by_test_id("ladm-hook-secret-done").click()
        await expect(page.get_by_test_id("ladm-hook-secret")).to_have_count(0)
        await open_admin(page, "webhooks")  # shown again: no secret anywhere
        await expect(card).to_have_count(1, timeout=WAIT_MS)
        await expect(page.get_by_test_id("ladm-hook-secret")).to_have_count(0)

        # a test send: the receiver gets a request signed with that secret
        await card.get_by_test_id("ladm-hook-test").click()
        result = card.get_by_test_id("ladm-hook-result")
        await expect(result).to_have_attribute("data-delivered", "true", timeout=WAIT_MS)
        await expect(result).to_contain_text("HTTP 200")
        (test,) = receiver.of("webhook.test")
        assert verified(secret, test)["payload"]["endpoint_id"] == endpoint_id
        await expect(result).to_contain_text(test.id)

        # the delivery log shows it
        await card.get_by_test_id("ladm-hook-log-open").click()
        logged = card.locator(f'[data-testid="ladm-delivery"][data-message-id="{test.id}"]')
        await expect(logged).to_have_attribute("data-status", "delivered", timeout=WAIT_MS)
        await expect(logged.locator('[data-col="response"]')).to_have_text("200")
        await expect(logged.get_by_test_id("ladm-delivery-replay")).to_have_count(0)

        # a lead: lead.created reaches the receiver, signed; replayed from the log, it comes
        # again with the same webhook-id
        visitor_id, _ = await a_marked_lead(page, chat_stack, "qualified")
        created = await eventually(
            lambda: receiver.of("lead.created", visitor_id), "lead.created sent"
        )
        (first,) = created
        verified(secret, first)
        await card.get_by_test_id("ladm-hook-log-refresh").click()
        row = card.locator(f'[data-testid="ladm-delivery"][data-message-id="{first.id}"]')
        await expect(row).to_have_attribute("data-status", "delivered", timeout=WAIT_MS)
        await expect(row.locator('[data-col="attempts"]')).to_have_text("1")
        await row.get_by_test_id("ladm-delivery-replay").click()
        await expect(card.get_by_test_id("ladm-hook-log-result")).to_contain_text(
            "Queued again", timeout=WAIT_MS
        )
        await eventually(
            lambda: len(receiver.of("lead.created", visitor_id)) == 2, "the replay sent"
        )
        second = receiver.of("lead.created", visitor_id)[1]
        assert second.id == first.id
        assert second.body == first.body
        verified(secret, second)
        await card.get_by_test_id("ladm-hook-log-refresh").click()
        await expect(row.locator('[data-col="attempts"]')).to_have_text("2", timeout=WAIT_MS)

        # rotation: a new secret shown once; both sign during the overlap
        await card.get_by_test_id("ladm-hook-rotate").click()
        await card.get_by_test_id("ladm-hook-rotate-go").click()
        await expect(card.get_by_test_id("ladm-hook-secret")).to_be_visible(timeout=WAIT_MS)
        rotated = await card.get_by_test_id("ladm-hook-secret").input_value()
        await open_admin(page, "hours")  # left and come back: not shown again
        await open_admin(page, "webhooks")
        await expect(card).to_have_count(1, timeout=WAIT_MS)
        await expect(page.get_by_test_id("ladm-hook-secret")).to_have_count(0)
        assert rotated.startswith("whsec_")
        assert rotated != secret
        await card.get_by_test_id("ladm-hook-test").click()
        await expect(card.get_by_test_id("ladm-hook-result")).to_have_attribute(
            "data-delivered", "true", timeout=WAIT_MS
        )
        latest = receiver.of("webhook.test")[-1]
        assert len(latest.headers["webhook-signature"].split()) == 2
        verified(rotated, latest)
        verified(secret, latest)

        # edit: a refused URL at its field; then disabled
        await card.get_by_test_id("ladm-hook-edit-open").click()
        edit = card.get_by_test_id("ladm-hook-edit")
        await edit.get_by_test_id("ladm-hook-url").fill("ftp://crm.example.com/hook")
        await edit.get_by_test_id("ladm-hook-save").click()
        await expect(
            edit.locator('[data-error-for="url"] [data-testid="ladm-field-error"]')
        ).to_be_visible(timeout=WAIT_MS)
        await edit.get_by_test_id("ladm-hook-url").fill(receiver.url)
        await edit.get_by_test_id("ladm-hook-enabled").uncheck()
        await edit.get_by_test_id("ladm-hook-save").click()
        await expect(card).to_have_attribute("data-enabled", "false", timeout=WAIT_MS)
        await expect(card.get_by_test_id("ladm-hook-state")).to_have_text("Disabled: by an admin")

        # removed through the screen (two clicks)
        await card.get_by_test_id("ladm-hook-delete").click()
        await card.get_by_test_id("ladm-hook-delete").click()
        await expect(card).to_have_count(0, timeout=WAIT_MS)
    finally:
        for endpoint in (await leads_call(page, "GET", "/webhooks"))["endpoints"]:
            if endpoint["url"] == receiver.url:
                await leads_call(page, "DELETE", f"/webhooks/{endpoint['endpoint_id']}")
