"""The rules editor in a real browser on the real services: Anna (admin) creates a rule with the
condition builder, sees an inline error on the builder row of a bad value, fixes it, previews
the message, backtests and publishes; the triggers worker applies it, and a fresh visitor of
the store is invited by it. The builder and the JSON editor ("advanced") round-trip a tree,
and what the builder cannot show stays in the JSON editor with a note.

The new rule fires only on pages whose URL holds this run's marker, so other tests' visitors
never meet it, and the published set keeps every existing rule (`e2e-second-look`).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import pytest
from beckon_contracts.rules import PAGE_TYPES
from consoles import agent_console, triggers_knows
from playwright.async_api import Locator, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass (conftest is not importable by name here)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000


async def pick(row: Locator, values: list[str]) -> None:
    """Tick exactly `values` among a choice condition's checkboxes."""
    boxes = row.get_by_test_id("when-choice")
    for index in range(await boxes.count()):
        box = boxes.nth(index)
        await box.set_checked(await box.get_attribute("data-value") in values)


async def test_a_rule_created_in_the_editor_invites_a_visitor(
    chat_stack: ChatStack, new_context: Any
) -> None:
    marker = f"admin-e2e-{uuid.uuid4().hex[:8]}"
    rule_id = marker
    page = await agent_console(await new_context(), chat_stack)
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
    await page.get_by_test_id("rule-priority").fill("900")  # above the existing rule's 50
    await page.get_by_test_id("rule-message").fill(
        "Hi from {agent_name}: questions about {page_title}? (" + marker + ")"
    )
    # the conditions, built row by row: all of [page type category, URL ..., any of [...]]
    builder = page.get_by_test_id("when-builder")
    top = builder.get_by_test_id("when-group").first
    await expect(top).to_have_attribute("data-op", "all")
    first = builder.get_by_test_id("when-row").nth(0)
    await expect(first).to_have_attribute("data-kind", "page_type")
    # page types are checkboxes (not a four-row multi-select)
    await expect(first.locator("select[multiple]")).to_have_count(0)
    await expect(first.get_by_test_id("when-choice")).to_have_count(len(PAGE_TYPES))
    await pick(first, ["category"])
    await top.locator(":scope > .when-group-actions").get_by_test_id("when-add").click()
    url_row = builder.get_by_test_id("when-row").nth(1)
    await url_row.get_by_test_id("when-kind").select_option("url")
    url_row = builder.locator('[data-testid="when-row"][data-kind="url"]')
    await url_row.get_by_test_id("when-op").select_option("regex")
    # a bad value first: the error appears on the builder row it names
    await url_row.get_by_test_id("when-value").fill(marker + "([")
    error = url_row.get_by_test_id("rule-error")
    await expect(error).to_have_count(1, timeout=WAIT_MS)
    await expect(error).to_contain_text("invalid regular expression")
    loc = await error.get_attribute("data-loc")
    assert loc is not None
    assert loc.startswith("rules[")
    assert loc.endswith(".when.all[1].url.regex")
    await expect(first.get_by_test_id("rule-error")).to_have_count(0)
    await expect(page.get_by_test_id("rule-publish")).to_be_disabled()

    # fixed: no error left
    await url_row.get_by_test_id("when-op").select_option("contains")
    await url_row.get_by_test_id("when-value").fill(marker)
    await expect(page.locator('[data-testid="rule-error"]')).to_have_count(0, timeout=WAIT_MS)
    # a nested "Any of" group (category or product pages; several values in one row)
    await top.locator(":scope > .when-group-actions").get_by_test_id("when-add-group").click()
    nested = top.locator('[data-testid="when-group"][data-op="any"]')
    await expect(nested).to_have_count(1)
    await pick(nested, ["category", "product"])

    # the JSON editor shows the same tree, in the contracts' shape, and back again
    await page.get_by_test_id("when-advanced").click()
    written = json.loads(await page.get_by_test_id("rule-when").input_value())
    assert written == {
        "all": [
            {"page_type": ["category"]},
            {"url": {"contains": marker}},
            {"any": [{"page_type": ["category", "product"]}]},
        ]
    }
    await page.get_by_test_id("when-advanced").click()
    await expect(builder.get_by_test_id("when-row")).to_have_count(3)
    await expect(builder.locator('[data-testid="when-group"][data-op="any"]')).to_have_count(1)
    await expect(
        builder.locator('[data-testid="when-row"][data-kind="url"]').get_by_test_id("when-value")
    ).to_have_value(marker)

    # the preview reads as a visitor will read it
    await expect(page.locator('[data-testid="rule-error"]')).to_have_count(0, timeout=WAIT_MS)
    await expect(page.get_by_test_id("rule-publish")).to_be_enabled()
    # unpublished changes are pending work: not in the success colour
    validity = page.get_by_test_id("rules-validity")
    await expect(validity).to_have_text("Unpublished changes.")
    await expect(validity).to_have_class(re.compile(r"\bis-pending\b"))
    assert await validity.evaluate("(n) => getComputedStyle(n).color") == "rgb(230, 119, 0)"
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
    # listed in the order the worker weighs rules: the new priority 900 above the old 50
    await expect(rules.get_by_test_id("rule-row").first).to_have_attribute("data-rule-id", rule_id)

    # a fresh visitor on a page the rule names is invited by it
    site = await triggers_knows(chat_stack, rule_id)
    assert chat_stack.rule_id in site["rules"], site  # the existing rule was kept
    visitor = await (await new_context()).new_page()
    await visitor.goto(f"{chat_stack.store_url}/c/apparel?from={marker}")
    invitation = visitor.get_by_test_id("beckon-invitation")
    await expect(invitation).to_be_visible(timeout=60_000)
    await expect(visitor.get_by_test_id("beckon-invitation-text")).to_contain_text(marker)
    await expect(visitor.get_by_test_id("beckon-invitation-text")).to_contain_text("Anna")

    # the rules report names the rule once triggers counts its invitation
    report: list[dict[str, Any]] = []
    for _ in range(300):
        report = await page.evaluate(
            "async () => (await (await fetch('/v1/console/reports/rules')).json()).rules"
        )
        if any(rule["rule_id"] == rule_id for rule in report):
            break
        await asyncio.sleep(0.2)
    [counted] = [rule for rule in report if rule["rule_id"] == rule_id]
    assert (counted["name"], counted["enabled"]) == ("Browsing layers (admin e2e)", True)
    await page.get_by_test_id("tab-reports").click()
    await page.get_by_test_id("report-tab-rules").click()
    card = page.locator(f'[data-testid="report-rule"][data-rule="{rule_id}"]')
    await expect(card.get_by_test_id("rule-name")).to_have_text(
        "Browsing layers (admin e2e)", timeout=WAIT_MS
    )
    await expect(card.get_by_test_id("rule-id")).to_have_text(rule_id)

    # the rules list shows each rule's figures beside it (the report's numbers)
    for _ in range(300):
        report = await page.evaluate(
            "async () => (await (await fetch('/v1/console/reports/rules')).json()).rules"
        )
        [counted] = [rule for rule in report if rule["rule_id"] == rule_id]
        if counted["funnel"]["shown"] >= 1:
            break
        await asyncio.sleep(0.2)
    await page.get_by_test_id("tab-admin").click()
    row = rules.locator(f'[data-testid="rule-row"][data-rule-id="{rule_id}"]')
    await expect(row.get_by_test_id("rule-shown")).to_have_text(
        str(counted["funnel"]["shown"]), timeout=WAIT_MS
    )
    await expect(row.get_by_test_id("rule-accepted")).to_have_text(re.compile(r"^\d+$"))
    await expect(row.get_by_test_id("rule-orders")).to_have_text(re.compile(r"^\d+$"))

    # business hours: an empty day says "closed" (not an example time that looks saved)
    await page.get_by_test_id("admin-section-site").click()
    await expect(page.get_by_test_id("site-hours-mon")).to_have_attribute("placeholder", "closed")


async def test_the_builder_reads_any_tree_and_leaves_what_it_cannot_show_to_json(
    chat_stack: ChatStack, new_context: Any
) -> None:
    page = await agent_console(await new_context(), chat_stack)
    await page.get_by_test_id("tab-admin").click()
    rules = page.get_by_test_id("admin-rules")
    row = rules.locator(f'[data-testid="rule-row"][data-rule-id="{chat_stack.rule_id}"]')
    await row.get_by_test_id("rule-edit").click()
    builder = page.get_by_test_id("when-builder")
    # the existing rule (`all: [product_views: {gte: 2}]`, stored with seconds and nulls)
    views = builder.locator('[data-testid="when-row"][data-kind="product_views"]')
    await expect(views).to_have_count(1, timeout=WAIT_MS)
    await expect(views.get_by_test_id("when-op")).to_have_value("gte")
    await expect(views.get_by_test_id("when-value")).to_have_value("2")

    # JSON the builder cannot show: an unknown condition stays in the JSON editor, with a note,
    # and its error is shown there
    await page.get_by_test_id("when-advanced").click()
    await page.get_by_test_id("rule-when").fill('{"all": [{"categry": "shoes"}]}')
    await page.get_by_test_id("when-advanced").click()
    await expect(page.get_by_test_id("when-note")).to_contain_text("categry")
    await expect(page.get_by_test_id("rule-when")).to_be_visible()
    await expect(page.get_by_test_id("when-builder")).to_have_count(0)
    error = page.locator('.admin-field-when [data-testid="rule-error"]')
    await expect(error).to_contain_text("did you mean 'category'", timeout=WAIT_MS)

    # a tree it can show: ranges, `not`, durations, booleans; errors land on the nested row
    await page.get_by_test_id("rule-when").fill(
        json.dumps(
            {
                "any": [
                    {"cart_value": {"gte": 50, "lt": 500}},
                    {"not": {"returning": True}},
                    {"all": [{"time_on_site": {"gte": "3m"}}, {"segment": "hot"}]},
                ]
            }
        )
    )
    await page.get_by_test_id("when-advanced").click()
    await expect(page.get_by_test_id("when-note")).to_have_count(0)
    top = builder.get_by_test_id("when-group").first
    await expect(top).to_have_attribute("data-op", "any")
    cart = builder.locator('[data-testid="when-row"][data-kind="cart_value"]')
    await expect(cart.get_by_test_id("when-op")).to_have_count(2)
    await expect(cart.get_by_test_id("when-op").nth(1)).to_have_value("lt")
    await expect(cart.get_by_test_id("when-value").nth(1)).to_have_value("500")
    not_group = builder.locator('[data-testid="when-group"][data-op="not"]')
    await expect(not_group.get_by_test_id("when-kind")).to_have_value("returning")
    await expect(not_group.get_by_test_id("when-add")).to_have_count(0)  # one condition
    time_row = builder.locator('[data-testid="when-row"][data-kind="time_on_site"]')
    await expect(time_row.get_by_test_id("when-value")).to_have_value("3m")
    await time_row.get_by_test_id("when-value").fill("-3m")
    error = time_row.get_by_test_id("rule-error")
    await expect(error).to_have_count(1, timeout=WAIT_MS)
    assert (await error.get_attribute("data-loc") or "").endswith(
        ".when.any[2].all[0].time_on_site.gte"
    )
    # removing the row removes its error; the empty nested group is named instead
    await time_row.get_by_test_id("when-remove").click()
    segment_group = builder.locator('[data-testid="when-group"][data-op="all"]')
    await segment_group.locator('[data-testid="when-row"] [data-testid="when-remove"]').click()
    await expect(
        segment_group.locator(':scope > .when-errors [data-testid="rule-error"]')
    ).to_have_count(1, timeout=WAIT_MS)
    await segment_group.locator(':scope > .when-group-head [data-testid="when-remove"]').click()
    await expect(page.locator('[data-testid="rule-error"]')).to_have_count(0, timeout=WAIT_MS)
    await page.get_by_test_id("rule-cancel").click()
    await expect(page.get_by_test_id("rule-editor")).to_have_count(0)


async def test_an_invited_agent_sets_a_password_with_the_link_once(
    chat_stack: ChatStack, new_context: Any
) -> None:
    marker = uuid.uuid4().hex[:8]
    email = f"invited-{marker}@example.com"
    page = await agent_console(await new_context(), chat_stack)
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
    # the console behind the page boots and shows its login form: it must not take the focus
    # (keystrokes of the new password went into the login's e-mail field; CI on a4ef91b)
    await expect(newcomer.locator("#login-view")).not_to_have_attribute(
        "hidden", "", timeout=WAIT_MS
    )
    await expect(newcomer.get_by_test_id("setpw-password")).to_be_focused()
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


async def test_a_section_tab_clicked_while_the_admin_view_redraws_takes_the_click(
    chat_stack: ChatStack, new_context: Any
) -> None:
    """The admin view redraws when its data arrives (and on a new language). A tab pressed
    before and released after such a redraw was a new button under the mouse: the browser
    fired no click and the section stayed (CI on 4e8b665: "Site" clicked as the data came)."""
    page = await agent_console(await new_context(), chat_stack)
    await page.get_by_test_id("tab-admin").click()
    await expect(page.get_by_test_id("admin-rules-table")).to_be_visible(timeout=WAIT_MS)
    box = await page.get_by_test_id("admin-section-site").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.down()
    await page.evaluate("async () => (await import('/console/core/events.js')).emit('locale')")
    await page.mouse.up()
    await expect(page.get_by_test_id("admin-section-site")).to_have_attribute(
        "aria-pressed", "true", timeout=WAIT_MS
    )
    await expect(page.get_by_test_id("site-allowed-origins")).to_be_visible()
