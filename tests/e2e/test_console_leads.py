"""The console's leads views in a real browser on the real services: chat serves the console,
the leads service (another origin) answers its calls with the agent's session cookie (CORS
with credentials), captures leads from chat.events and runs their SLA clocks.

A lead is made the real way: a visitor starts a chat through the widget's API and Anna marks
it as a lead with the console's lead toolkit (chat publishes `conversation.lead_marked`;
leads captures, routes and assigns it).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from consoles import a_marked_lead, agent_console, close_opened_chats, leads_call, set_locale
from playwright.async_api import Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass (conftest is not importable by name here)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000


@pytest.fixture(autouse=True)
async def close_the_chats_it_opened(chat_stack: ChatStack) -> Any:
    yield
    await close_opened_chats(chat_stack)


async def open_leads(page: Page) -> None:
    await page.get_by_test_id("tab-leads").click()
    await expect(page.get_by_test_id("leads-scope")).to_be_visible(timeout=WAIT_MS)


async def test_an_agent_sees_a_captured_lead_and_contacts_it_with_a_note(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    await open_leads(page)
    visitor_id, conversation_id = await a_marked_lead(page, chat_stack, "ready_to_buy")

    # it appears by itself (the list is polled), with a running first-contact clock
    row = page.locator(f'[data-testid="lead-row"][data-visitor="{visitor_id}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await expect(row).to_have_attribute("data-sla", "running")
    await expect(row.get_by_test_id("lead-sla")).to_contain_text("left")

    await row.click()
    detail = page.get_by_test_id("lead-detail")
    await expect(detail.get_by_test_id("lead-transcript")).to_have_attribute(
        "data-conversation", conversation_id
    )
    claim = detail.get_by_test_id("lead-claim")
    if await claim.count():  # nobody free in the team: it waits in the queue
        await claim.click()
    await detail.get_by_test_id("lead-change").select_option("contact")
    await detail.get_by_test_id("lead-channel").select_option("phone")
    await detail.get_by_test_id("lead-note").fill("Called: sending a quote for two tents")
    await detail.get_by_test_id("lead-submit").click()

    await expect(detail.get_by_test_id("lead-detail-status")).to_have_attribute(
        "data-status", "contacted", timeout=WAIT_MS
    )
    await expect(row).to_have_attribute("data-status", "contacted", timeout=WAIT_MS)
    await expect(row).to_have_attribute("data-sla", "none")
    await expect(row.get_by_test_id("lead-sla")).to_have_text("Contacted")
    contacted = detail.locator('[data-testid="lead-touch"][data-kind="contacted"]')
    await expect(contacted).to_contain_text("Called: sending a quote for two tents")
    await expect(contacted).to_contain_text("Phone")

    # the transcript opens in the chats view
    await detail.get_by_test_id("lead-transcript").click()
    await expect(page.get_by_test_id("conversation")).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#messages")).to_contain_text("Can someone call me about the tent?")


async def test_the_sla_clock_turns_amber_then_red(chat_stack: ChatStack, new_context: Any) -> None:
    page = await agent_console(await new_context(), chat_stack)
    # the site's teams, then a policy of seconds (the admin's PUTs cross origins: a CORS
    # preflight, then the call with the console's cookie)
    await leads_call(
        page,
        "PUT",
        "/teams",
        {"teams": [{"team": "sales", "name": "Sales"}, {"team": "support", "name": "Support"}]},
    )
    saved = await leads_call(
        page,
        "PUT",
        "/sla-policies",
        {
            "policies": [
                {
                    "team": "sales",
                    "validation": "interested",
                    "first_contact": 6,
                    "warn_at": [0.5],
                    "escalate": False,
                    "reassign": False,
                    "business_hours_only": False,
                }
            ]
        },
    )
    assert saved["policies"][0]["first_contact"] == 6
    await open_leads(page)
    visitor_id, _ = await a_marked_lead(page, chat_stack, "interested")
    row = page.locator(f'[data-testid="lead-row"][data-visitor="{visitor_id}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await expect(row).to_have_attribute("data-sla", "warning", timeout=WAIT_MS)
    await expect(row).to_have_attribute("data-sla", "breached", timeout=WAIT_MS)
    await expect(row.get_by_test_id("lead-sla")).to_contain_text("late")
    # the filter by SLA state asks the leads service
    await page.get_by_test_id("leads-filter-sla").select_option("breached")
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await page.get_by_test_id("leads-filter-sla").select_option("running")
    await expect(row).to_have_count(0, timeout=WAIT_MS)


async def test_the_finnish_console_shows_finnish_leads(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    visitor_id, _ = await a_marked_lead(page, chat_stack, "qualified")
    await set_locale(page, "fi")
    await expect(page.get_by_test_id("tab-leads")).to_have_text("Liidit")
    await open_leads(page)
    row = page.locator(f'[data-testid="lead-row"][data-visitor="{visitor_id}"]')
    await expect(row).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator(".leads-table th").first).to_have_text("Liidi")
    await expect(row).to_contain_text("Kvalifioitu")  # the validation level
    await expect(row.get_by_test_id("lead-sla")).to_contain_text("jäljellä")
    await expect(page.get_by_test_id("leads-scope")).to_contain_text("Tiimieni liidit")


async def test_lead_reports_in_two_languages_with_a_csv_link(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    await open_leads(page)
    visitor_id, _ = await a_marked_lead(page, chat_stack, "ready_to_buy")
    captured = page.locator(f'[data-testid="lead-row"][data-visitor="{visitor_id}"]')
    await expect(captured).to_be_visible(timeout=WAIT_MS)
    await page.get_by_test_id("tab-leadreports").click()
    table = page.get_by_test_id("lrpt-table")
    await expect(table).to_be_visible(timeout=WAIT_MS)
    total = table.locator('[data-total="true"]')
    await expect(total).to_contain_text("Total")
    await expect(total.locator('[data-col="leads"]')).not_to_have_text("0")

    await page.get_by_test_id("lrpt-tab-conversion").click()
    await expect(page.get_by_test_id("lrpt-by")).to_have_value("validation")
    ready = table.locator('[data-testid="lrpt-row"][data-key="ready_to_buy"]')
    await expect(ready).to_contain_text("Ready to buy", timeout=WAIT_MS)

    # the CSV link is the same report as a download, with the console's cookie
    href = await page.get_by_test_id("lrpt-csv").get_attribute("href")
    assert href is not None
    assert href.startswith(f"{chat_stack.leads_url}/v1/leads/reports/conversion?")
    assert "format=csv" in href
    csv = await page.evaluate(
        "async (href) => { const r = await fetch(href, {credentials: 'include'});"
        " return [r.status, r.headers.get('content-type'), await r.text()]; }",
        href,
    )
    assert csv[0] == 200
    assert csv[1].startswith("text/csv")
    assert "ready_to_buy" in csv[2]

    await page.get_by_test_id("lrpt-tab-sla").click()
    await set_locale(page, "fi")
    await expect(page.get_by_test_id("lrpt-tab-sla")).to_have_text("SLA-tavoitteiden toteutuminen")
    await expect(table.locator('[data-total="true"]')).to_contain_text("Yhteensä")
    await expect(page.locator(".lrpt-table th").nth(7)).to_have_text("Toteutuma")


async def test_an_admin_saves_routing_rules_and_sees_a_bad_one_located(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    await leads_call(
        page,
        "PUT",
        "/teams",
        {"teams": [{"team": "sales", "name": "Sales"}, {"team": "support", "name": "Support"}]},
    )
    await page.get_by_test_id("tab-leadadmin").click()
    editor = page.get_by_test_id("ladm-routing")
    await expect(editor).to_have_value(re.compile(r"default_team"), timeout=WAIT_MS)
    good = {
        "default_team": "sales",
        "rules": [
            {
                "id": "finns-to-support",
                "name": "Finnish speakers",
                "conditions": [{"language": ["fi"]}],
                "team": "support",
            }
        ],
    }
    await editor.fill(json.dumps(good, indent=2))
    await page.get_by_test_id("ladm-routing-save").click()
    await expect(page.get_by_test_id("ladm-routing-status")).to_contain_text(
        "Saved as version", timeout=WAIT_MS
    )
    # the tester: the sample lead (language fi) goes to support by the rule
    await page.get_by_test_id("ladm-test").click()
    await expect(page.get_by_test_id("ladm-test-team")).to_have_attribute(
        "data-team", "support", timeout=WAIT_MS
    )

    bad = json.loads(json.dumps(good))
    bad["rules"][0]["conditions"] = [{"language": ["fi"]}, {"contry": ["FI"]}]
    bad["rules"][0]["team"] = "nobody"
    text = json.dumps(bad, indent=2)
    await editor.fill(text)
    await page.get_by_test_id("ladm-routing-save").click()
    problems = page.get_by_test_id("ladm-problem")
    await expect(problems.first).to_be_visible(timeout=WAIT_MS)
    lines = text.splitlines()
    contry_line = next(i for i, line in enumerate(lines, 1) if '"contry"' in line)
    team_line = next(i for i, line in enumerate(lines, 1) if '"nobody"' in line)
    located = {
        str(await p.get_attribute("data-loc")): int(str(await p.get_attribute("data-line")))
        for p in await problems.all()
    }
    # each problem at its place: the line of the unknown key's value, the team's line
    assert any(loc.startswith("rules[0].conditions[1]") for loc in located), located
    assert (
        contry_line - 1
        <= located[next(loc for loc in located if loc.startswith("rules[0].conditions[1]"))]
        <= contry_line
    ), located
    assert located.get("rules[0].team") == team_line, located
    gutter = page.locator(f'.ladm-gutter span[data-error="true"]:text-is("{team_line}")')
    await expect(gutter).to_have_count(1)
    # nothing saved: the rules in force are still the good ones
    assert (await leads_call(page, "GET", "/routing"))["document"]["rules"][0]["team"] == "support"
