"""An origin added in the console reaches the tracker. Anna (admin) adds a new
store address under Admin → Site; within seconds the tracker accepts that origin (chat
publishes the site on `sites.config`, the tracker follows it), and a visitor on a page
there is tracked and invited by the site's rule, with no restart of anything."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from consoles import agent_console, triggers_knows
from playwright.async_api import expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass (conftest is not importable by name here)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000
PRODUCT = "/p/trail-runner-x"


async def _tracker_allows(stack: ChatStack, origin: str) -> bool:
    """The tracker's CORS preflight for the site's key from `origin` (what the browser asks)."""
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.options(
            f"{stack.tracker_url}/v1/collect?k={stack.site_key}",
            headers={"origin": origin, "access-control-request-method": "POST"},
        )
    return answer.status_code == 204


async def test_an_origin_added_in_the_console_is_tracked_and_invited_within_seconds(
    chat_stack: ChatStack, new_context: Any, start_store: Any
) -> None:
    new_store = start_store()
    assert not await _tracker_allows(chat_stack, new_store)  # not one of the site's origins

    page = await agent_console(await new_context(), chat_stack)
    await page.get_by_test_id("tab-admin").click()
    await page.get_by_test_id("admin-section-site").click()
    origins = page.get_by_test_id("site-allowed-origins")
    await expect(origins).to_have_value(chat_stack.store_url, timeout=WAIT_MS)
    # the keys a store owner pastes into the snippet are on the same page
    await expect(page.get_by_test_id("site-site-key")).to_have_value(chat_stack.site_key)
    await origins.fill(f"{chat_stack.store_url}\n{new_store}")
    await page.get_by_test_id("site-save").click()
    await expect(page.get_by_test_id("site-status")).to_have_text("Saved.", timeout=WAIT_MS)
    await expect(page.get_by_test_id("site-allowed-origins")).to_have_value(
        f"{chat_stack.store_url}\n{new_store}"
    )

    # within seconds, with no restart: the tracker takes the new origin
    for _ in range(300):
        if await _tracker_allows(chat_stack, new_store):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the tracker never accepted the origin added in the console")

    # a visitor there is tracked (the rule counts their product views) and invited
    await triggers_knows(chat_stack)
    visitor = await (await new_context()).new_page()
    refused: list[int] = []
    visitor.on(
        "response",
        lambda r: refused.append(r.status) if "/v1/collect" in r.url and r.status >= 400 else None,
    )
    await visitor.goto(f"{new_store}{PRODUCT}")
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await visitor.reload()
    invitation = visitor.get_by_test_id("beckon-invitation")
    await expect(invitation).to_be_visible(timeout=60_000)
    await expect(visitor.get_by_test_id("beckon-invitation-text")).to_contain_text("Trail Runner X")
    assert refused == []
