"""The rules editor in a real browser on the real services: Anna (admin) creates a rule, sees an
inline error for a bad value, fixes it, previews the message, backtests and publishes; the
triggers worker applies it, and a fresh visitor of the store is invited by it.

The new rule fires only on pages whose URL holds this run's marker, so other tests' visitors
never meet it, and the published set keeps every existing rule (`e2e-second-look`).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass (conftest is not importable by name here)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000


async def admin_console(context: BrowserContext, stack: ChatStack) -> Page:
    page = await context.new_page()
    await page.goto(f"{stack.chat_url}/console/")
    await page.get_by_test_id("login-email").fill(stack.agent_email)
    await page.get_by_test_id("login-password").fill(stack.agent_password)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("agent-name")).to_have_text("Anna Virtanen", timeout=WAIT_MS)
    toggle = page.get_by_test_id("status-toggle")
    if await toggle.get_attribute("data-status") != "online":
        await toggle.click()
    await expect(toggle).to_have_attribute("data-status", "online", timeout=WAIT_MS)
    return page


async def triggers_applies(stack: ChatStack, rule_id: str) -> None:
    """Until the worker runs the new rule (next to the old one) and sees Anna's free slots."""
    site: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=stack.triggers_url, timeout=5) as client:
        for _ in range(300):
            site = (await client.get(f"/v1/sites/{stack.site_id}")).json()
            sales = site["teams"].get("sales", {})
            if rule_id in site["rules"] and sales.get("free_slots", 0) > 0:
                assert stack.rule_id in site["rules"], site  # the existing rule was kept
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"triggers never applied {rule_id} or saw Anna online: {site}")


def when(page_type: str, marker: str) -> str:
    return '{"all": [{"page_type": "' + page_type + '"}, {"url": {"contains": "' + marker + '"}}]}'


async def test_a_rule_created_in_the_editor_invites_a_visitor(
    chat_stack: ChatStack, new_context: Any
) -> None:
    marker = f"admin-e2e-{uuid.uuid4().hex[:8]}"
    rule_id = marker
    page = await admin_console(await new_context(), chat_stack)
    await page.get_by_test_id("tab-admin").click()
    rules = page.get_by_test_id("admin-rules")
    await expect(
        rules.locator(f'[data-testid="rule-row"][data-rule-id="{chat_stack.rule_id}"]')
    ).to_be_visible(timeout=WAIT_MS)
    version_before = await page.get_by_test_id("rules-version").text_content()

    await page.get_by_test_id("rule-new").click()
    await page.get_by_test_id("rule-id").fill(rule_id)
    await page.get_by_test_id("rule-name").fill("Browsing layers (admin e2e)")
    await page.get_by_test_id("rule-holdout").fill("0")
    await page.get_by_test_id("rule-message").fill(
        "Hi from {agent_name}: questions about {page_title}? (" + marker + ")"
    )
    # a bad value first: the error appears next to the conditions, naming its place
    await page.get_by_test_id("rule-when").fill(when("categry", marker))
    error = page.locator('.admin-field-when [data-testid="rule-error"]')
    await expect(error).to_have_count(1, timeout=WAIT_MS)
    await expect(error).to_contain_text("did you mean 'category'")
    loc = await error.get_attribute("data-loc")
    assert loc is not None
    assert loc.startswith("rules[")
    assert loc.endswith(".when.all[0].page_type")
    await expect(page.get_by_test_id("rule-publish")).to_be_disabled()

    # fixed: no error left, the preview reads as a visitor will read it
    await page.get_by_test_id("rule-when").fill(when("category", marker))
    await expect(page.locator('[data-testid="rule-error"]')).to_have_count(0, timeout=WAIT_MS)
    await expect(page.get_by_test_id("rule-publish")).to_be_enabled()
    await expect(page.get_by_test_id("rule-preview")).to_contain_text(
        f"Hi from Anna Virtanen: questions about Trail Runner X - Ridgeline Outfitters? ({marker})"
    )

    # the backtest shows per-rule figures for the new set before anything is published
    await page.get_by_test_id("rule-backtest").click()
    result = page.get_by_test_id("backtest-result")
    await expect(result).to_have_attribute("data-state", "done", timeout=60_000)
    await expect(
        result.locator(f'[data-testid="backtest-row"][data-rule-id="{rule_id}"]')
    ).to_have_count(1)
    await expect(
        result.locator(f'[data-testid="backtest-row"][data-rule-id="{chat_stack.rule_id}"]')
    ).to_have_count(1)

    await page.get_by_test_id("rule-publish").click()
    await expect(page.get_by_test_id("publish-status")).to_contain_text(
        "Published version", timeout=WAIT_MS
    )
    await expect(page.get_by_test_id("rules-version")).to_contain_text("Anna Virtanen")
    assert await page.get_by_test_id("rules-version").text_content() != version_before
    await expect(
        rules.locator(f'[data-testid="rule-row"][data-rule-id="{rule_id}"]')
    ).to_have_count(1)

    # a fresh visitor on a page the rule names is invited by it
    await triggers_applies(chat_stack, rule_id)
    visitor = await (await new_context()).new_page()
    await visitor.goto(f"{chat_stack.store_url}/c/apparel?from={marker}")
    invitation = visitor.get_by_test_id("beckon-invitation")
    await expect(invitation).to_be_visible(timeout=60_000)
    await expect(visitor.get_by_test_id("beckon-invitation-text")).to_contain_text(marker)
    await expect(visitor.get_by_test_id("beckon-invitation-text")).to_contain_text("Anna")


async def test_an_invited_agent_sets_a_password_with_the_link_once(
    chat_stack: ChatStack, new_context: Any
) -> None:
    marker = uuid.uuid4().hex[:8]
    email = f"invited-{marker}@example.com"
    page = await admin_console(await new_context(), chat_stack)
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.get_by_test_id("tab-admin").click()
    await page.get_by_test_id("admin-section-agents").click()
    form = page.get_by_test_id("agent-invite")
    await form.get_by_test_id("invite-name").fill(f"Iida {marker}")
    await form.get_by_test_id("invite-email").fill(email)
    await form.get_by_test_id("invite-max-chats").fill("3")
    await form.get_by_test_id("invite-submit").click()
    link = await page.get_by_test_id("invite-link").input_value(timeout=WAIT_MS)
    assert "#set-password=" in link
    row = page.locator(f'[data-testid="agent-row"]:has-text("{email}")')
    await expect(row.get_by_test_id("agent-load")).to_have_text("0 / 3")

    newcomer = await (await new_context()).new_page()
    await newcomer.goto(link)
    await newcomer.get_by_test_id("setpw-password").fill("a long new password")
    await newcomer.get_by_test_id("setpw-confirm").fill("a long new password")
    await newcomer.get_by_test_id("setpw-submit").click()
    await expect(newcomer.get_by_test_id("setpw-done")).to_contain_text(email, timeout=WAIT_MS)
    await newcomer.get_by_test_id("setpw-login").click()
    await newcomer.get_by_test_id("login-email").fill(email)
    await newcomer.get_by_test_id("login-password").fill("a long new password")
    await newcomer.get_by_test_id("login-submit").click()
    await expect(newcomer.get_by_test_id("agent-name")).to_have_text(
        f"Iida {marker}", timeout=WAIT_MS
    )
    await expect(newcomer.get_by_test_id("tab-admin")).to_have_count(0)  # not an admin

    # the link works once
    again = await (await new_context()).new_page()
    await again.goto(link)
    await again.get_by_test_id("setpw-password").fill("yet another password")
    await again.get_by_test_id("setpw-confirm").fill("yet another password")
    await again.get_by_test_id("setpw-submit").click()
    await expect(again.get_by_test_id("setpw-error")).to_be_visible(timeout=WAIT_MS)

    # deactivated, the account is greyed out in the list
    await row.get_by_test_id("agent-deactivate").click()
    await expect(row).to_have_attribute("data-active", "false", timeout=WAIT_MS)
