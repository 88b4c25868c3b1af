"""Reports in the console, in a real browser on the real services: Anna has a chat (a visitor
starts it through the widget's API, she answers and closes it in her console's session), an
order follows; the Reports view counts the chat in her row, draws its charts, switches to
Finnish labels and number formats, and exports the agents' table as CSV."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_contracts.rule_stats import (
    RuleCounts,
    RuleStats,
    RuleStatsPayload,
    Uplift,
    rule_stats_key,
)
from beckon_contracts.topics import RULES_STATS
from consoles import agent_console, agent_id, choose_locale, console_api, widget_chat
from playwright.async_api import Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass (conftest is not importable by name here)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000


async def anna_has_a_chat(page: Page, stack: ChatStack, visitor_id: str) -> str:
    """A visitor starts a chat through the widget API; Anna takes it, answers and closes it."""
    conversation_id = await widget_chat(stack, visitor_id, "Does this come in blue?")
    me = await agent_id(page)
    found = (await console_api(page, "GET", f"/conversations/{conversation_id}"))["conversation"]
    if found["status"] == "queued":
        await console_api(page, "POST", f"/conversations/{conversation_id}/pickup")
    elif found["agent_id"] != me:  # another agent was free first: hand it to Anna
        await console_api(
            page, "POST", f"/conversations/{conversation_id}/transfer", {"agent_id": me}
        )
    await console_api(
        page, "POST", f"/conversations/{conversation_id}/messages", {"text": "Yes, in navy."}
    )
    await console_api(page, "POST", f"/conversations/{conversation_id}/close")
    return conversation_id


async def an_order(stack: ChatStack, visitor_id: str, value: str, currency: str) -> None:
    """What the activity consumer writes for an `order.completed` from the store's server."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            """INSERT INTO chat.activity
                   (event_id, site_id, visitor_id, type, occurred_at, value, currency, detail)
               VALUES ($1, $2, $3, 'order.completed', $4, $5::numeric, $6, $7::jsonb)""",
            uuid7(),
            stack.site_id,
            visitor_id,
            datetime.now(UTC),
            value,
            currency,
            orjson.dumps(
                {"order_id": f"e2e-{uuid.uuid4().hex[:10]}", "reported_by": "server"}
            ).decode(),
        )
    finally:
        await conn.close()


async def rule_stats(stack: ChatStack, rule_id: str) -> None:
    """What the triggers worker publishes for a rule: a cumulative funnel snapshot."""
    record = RuleStats(
        event_id=uuid7(),
        occurred_at=datetime.now(UTC),
        site_id=stack.site_id,
        payload=RuleStatsPayload(
            rule_id=rule_id,
            counts=RuleCounts(
                eligible=1000,
                invited=900,
                held_out=100,
                shown=850,
                accepted=120,
                conversations=110,
                orders_invited=90,
                orders_held_out=4,
                revenue_invited=9000.0,
                revenue_held_out=380.0,
            ),
            uplift=Uplift(
                conversion_invited=0.1,
                conversion_held_out=0.04,
                absolute=0.06,
                relative=1.5,
                z=1.93,
                p_value=0.0536,
                significant=False,
            ),
        ),
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(
            RULES_STATS.name,
            record.model_dump_json().encode(),
            key=rule_stats_key(stack.site_id, rule_id),
        )
    finally:
        await producer.stop()


async def test_anna_sees_her_chat_in_reports_in_two_languages_and_exports_csv(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(accept_downloads=True), chat_stack)
    me = await agent_id(page)
    rule_id = f"e2e-reports-{uuid.uuid4().hex[:8]}"
    await rule_stats(chat_stack, rule_id)

    async def my_count() -> int:
        rows = (await console_api(page, "GET", "/reports/agents"))["agents"]
        return int(next(row["conversations"] for row in rows if row["agent"] == me))

    before = await my_count()
    visitor_id = f"e2e-reports-{uuid.uuid4().hex[:10]}"
    await anna_has_a_chat(page, chat_stack, visitor_id)
    # a currency nobody else's test uses, so the revenue cell is this order's alone
    await an_order(chat_stack, visitor_id, "1234.50", "CHF")
    assert await my_count() == before + 1

    await page.get_by_test_id("tab-reports").click()
    report = page.get_by_test_id("report-agents")
    await expect(report).to_be_visible(timeout=WAIT_MS)
    row = report.locator(f'[data-testid="report-agent-row"][data-agent="{me}"]')
    await expect(row.locator('[data-col="agent"]')).to_have_text("Anna Virtanen", timeout=WAIT_MS)
    await expect(row.locator('[data-col="conversations"]')).to_have_text(str(before + 1))
    await expect(row.locator('[data-col="revenue"]')).to_contain_text("CHF")
    await expect(row.locator('[data-col="revenue"]')).to_contain_text("1,234.50")
    # the charts are drawn: a bar per agent, Anna's among them
    chart = page.get_by_test_id("agents-chart")
    await expect(chart).to_be_visible()
    await expect(chart.locator(f'g[data-label="{me}"] rect.rpt-bar')).to_have_count(1)
    assert (
        float(await chart.locator(f'g[data-label="{me}"] rect.rpt-bar').get_attribute("width") or 0)
        > 0
    )
    await expect(page.get_by_test_id("report-tab-agents")).to_have_text("Agents")

    # the assisted share: at least this order was assisted
    await page.get_by_test_id("report-tab-assisted").click()
    share = page.get_by_test_id("assisted-share")
    await expect(share).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("assisted-donut")).to_be_visible()
    chf = page.locator('[data-testid="report-assisted-row"][data-currency="CHF"]')
    await expect(chf.locator('[data-col="revenue_assisted"]')).to_contain_text("1,234.50")

    # the rule's funnel as a chart, with its uplift and (lack of) significance
    for _ in range(150):
        rules = (await console_api(page, "GET", "/reports/rules"))["rules"]
        if any(rule["rule_id"] == rule_id for rule in rules):
            break
        await asyncio.sleep(0.2)
    await page.get_by_test_id("report-tab-rules").click()
    card = page.locator(f'[data-testid="report-rule"][data-rule="{rule_id}"]')
    await expect(card).to_be_visible(timeout=WAIT_MS)
    funnel = card.get_by_test_id("rule-funnel-chart")
    await expect(funnel.locator("rect.rpt-bar")).to_have_count(8)
    await expect(funnel.locator('g[data-label="eligible"] text.rpt-value')).to_have_text("1,000")
    await expect(card.get_by_test_id("rule-significance")).to_have_attribute(
        "data-significant", "false"
    )
    await expect(card.get_by_test_id("rule-uplift")).to_contain_text("p = 0.054")
    await page.get_by_test_id("report-tab-assisted").click()

    # Finnish: the labels and the number format change
    await choose_locale(page, "fi")
    await expect(page.get_by_test_id("report-tab-agents")).to_have_text("Agentit")
    await expect(page.get_by_test_id("report-tab-assisted")).to_have_text("Avustettu myynti")
    await expect(chf.locator('[data-col="revenue_assisted"]')).to_contain_text(
        re.compile(r"1\s234,50")
    )
    await page.get_by_test_id("report-tab-agents").click()
    await expect(row.locator('[data-col="revenue"]')).to_contain_text(re.compile(r"1\s234,50"))
    await expect(page.get_by_test_id("csv-agents")).to_have_text("Vie CSV")

    # CSV export: a file with the expected header and Anna's row
    async with page.expect_download() as waiting:
        await page.get_by_test_id("csv-agents").click()
    download = await waiting.value
    assert re.fullmatch(
        r"beckon-agents-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename
    )
    path = await download.path()
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0].startswith(
        "agent,name,conversations,unanswered,first_response_median_s,first_response_mean_s,"
        "response_mean_s,responses,load_mean,load_busy_mean,load_max,orders,"
    )
    assert "revenue_CHF" in lines[0]
    anna_line = next(line for line in lines[1:] if line.startswith(f"{me},"))
    assert ",1234.5" in anna_line  # numbers unformatted, whatever the console's language

    # back to English for whoever logs in as Anna next
    await choose_locale(page, "en")
    await expect(page.get_by_test_id("report-tab-agents")).to_have_text("Agents")
