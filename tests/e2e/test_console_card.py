"""The visitor card, in real browsers on the real services.

A visitor browses the demo store (real snippet → tracker → Kafka → chat's activity recorder),
looks at two products, puts one in the cart and, on the second look at it, is invited by the
triggers worker's rule. They accept and write. The agent (Anna) opens the conversation: the
card beside it shows the pages and products the visitor viewed and the cart's value, in the
agent's locale; the same card opens as a drawer from anywhere (`showCard` in card.js). The
conversation is closed at the end.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from chat.visitors import pseudonym
from consoles import agent_console, console_api, set_locale, triggers_knows
from playwright.async_api import Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_MS = 30_000
TRAIL = "trail-runner-x"
SNEAKER = "city-sneaker"


async def conversation_of(page: Page, visitor_id: str) -> str:
    """The id of the visitor's conversation, as the agent's console lists it."""
    for _ in range(150):
        found = await page.evaluate(
            """async (visitor) => {
                const { api } = await import('/console/core/api.js');
                const data = await api('GET', '/conversations?scope=all');
                const list = Array.isArray(data) ? data : (data.conversations || []);
                const mine = list.find((c) => c.visitor_id === visitor
                                              && (c.status === 'open' || c.status === 'queued'));
                return mine ? mine.id : null;
            }""",
            visitor_id,
        )
        if found:
            return str(found)
        await asyncio.sleep(0.2)
    raise AssertionError(f"no conversation for {visitor_id}")


async def status_of(page: Page, conversation_id: str) -> str:
    found = await console_api(page, "GET", f"/conversations/{conversation_id}")
    return str(found["conversation"]["status"])


async def test_the_card_beside_the_conversation_shows_what_the_visitor_did(
    chat_stack: ChatStack, new_context: Any
) -> None:
    agent = await agent_console(await new_context(), chat_stack)
    await triggers_knows(chat_stack)
    visitor = await (await new_context()).new_page()
    store = chat_stack.store_url

    await visitor.goto(f"{store}/")
    await visitor.goto(f"{store}/p/{SNEAKER}")
    await visitor.wait_for_function("window.beckon && window.beckon.loaded === true")
    visitor_id = await visitor.evaluate("window.beckon.visitorId()")
    assert isinstance(visitor_id, str)
    assert visitor_id
    await visitor.goto(f"{store}/p/{TRAIL}")
    await visitor.get_by_test_id("add-to-cart").click()
    await visitor.get_by_test_id("added-notice").wait_for()
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await visitor.reload()  # the second look at the Trail Runner: the rule invites
    await expect(visitor.get_by_test_id("beckon-invitation")).to_be_visible(timeout=60_000)
    await visitor.get_by_test_id("beckon-accept").click()
    await expect(visitor.get_by_test_id("beckon-panel")).to_be_visible()
    await visitor.get_by_test_id("beckon-input").fill("Does it run true to size?")
    await visitor.get_by_test_id("beckon-send").click()

    conversation_id = await conversation_of(agent, visitor_id)
    row = agent.locator(
        f'[data-testid="mine-item"][data-conversation-id="{conversation_id}"], '
        f'[data-testid="queue-item"][data-conversation-id="{conversation_id}"]'
    )
    await row.first.click()

    card = agent.get_by_test_id("card-panel").get_by_test_id("visitor-card")
    await expect(card).to_be_visible(timeout=WAIT_MS)
    await expect(card).to_have_attribute("data-visitor", visitor_id)
    history = card.get_by_test_id("card-history")
    # the recorder may still be storing the last events: the card refreshes itself
    products = history.locator('[data-testid="card-event"][data-type="product.viewed"]')
    await expect(products.filter(has_text="Trail Runner X")).to_have_count(2, timeout=WAIT_MS)
    await expect(products.filter(has_text="City Sneaker")).to_have_count(1)
    await expect(products.filter(has_text="Trail Runner X").first).to_contain_text("€129.90")
    # the home page; a product page's own page view is folded into its product view
    pages = history.locator('[data-testid="card-event"][data-type="page.viewed"]')
    await expect(pages).to_have_count(1)
    await expect(pages.locator("a")).to_have_attribute("href", f"{store}/")
    cart = history.locator('[data-testid="card-event"][data-type="cart.updated"]')
    await expect(cart).to_have_count(1)
    await expect(cart).to_contain_text("€129.90")
    await expect(card.get_by_test_id("card-cart-value")).to_have_text("€129.90")
    await expect(card.get_by_test_id("card-summary")).to_contain_text("Viewed 2 products · 4 pages")
    await expect(card.get_by_test_id("card-summary")).to_contain_text("cart €129.90")
    await expect(card.get_by_test_id("card-email")).to_have_count(1)
    await expect(card.get_by_test_id("card-score")).to_be_visible()
    await expect(card.get_by_test_id("card-segment")).to_be_visible()
    await expect(card.get_by_test_id("card-breakdown")).to_be_visible()
    # the score is explained, even after the chat's feedback re-sent the visitor's state
    await expect(card.get_by_test_id("card-factor").first).to_be_visible(timeout=WAIT_MS)
    await expect(card.get_by_test_id("card-breakdown")).not_to_contain_text("No scored behaviour")
    # the title is the name the lists use, not "Anonymous"; the chat row says the same
    label = pseudonym(visitor_id)["en"]
    await expect(card.get_by_test_id("card-name")).to_have_text(label)
    await expect(row.first.get_by_test_id("row-visitor")).to_have_text(label)
    # a direct visit: the store's own pages are not a referrer
    await expect(card.get_by_test_id("card-source-name")).to_have_attribute(
        "data-landing", "direct"
    )
    await expect(card.get_by_test_id("card-source")).not_to_contain_text("Referrer")
    await expect(card.get_by_test_id("card-leads")).to_be_visible()

    # this conversation, with its transcript on demand: current, not under "Past"
    current = card.get_by_test_id("card-current-conversation")
    conversation = current.locator(
        f'[data-testid="card-conversation"][data-id="{conversation_id}"]'
    )
    await expect(conversation).to_have_count(1, timeout=WAIT_MS)
    await expect(card.get_by_test_id("card-conversations")).to_contain_text(
        "No earlier conversations."
    )
    count = conversation.get_by_test_id("card-conversation-count")
    await expect(count).to_have_text(re.compile(r"^(1 message|[02-9]\d* messages)$"))
    await conversation.get_by_test_id("card-conversation-toggle").click()
    await expect(conversation.get_by_test_id("card-transcript")).to_contain_text(
        "Does it run true to size?", timeout=WAIT_MS
    )

    # in Finnish: the card's words and the money format follow the agent's language
    await set_locale(agent, "fi")
    await expect(card.get_by_test_id("card-history").locator("h3")).to_have_text("Historia")
    await expect(card.get_by_test_id("card-cart-value")).to_have_text("129,90\u00a0€")
    await expect(card.get_by_test_id("card-name")).to_have_text(pseudonym(visitor_id)["fi"])
    await expect(count).to_have_text(re.compile(r"^(1 viesti|[02-9]\d* viestiä)$"))
    # the language's own plural forms (Intl.PluralRules), in both languages
    plurals = """async (ns) => {
        const { plural } = await import('/console/core/i18n.js');
        return ns.map((n) => plural('card.conversation.messages', n));
    }"""
    forms = await agent.evaluate(plurals, [1, 2, 0])
    assert forms == ["1 viesti", "2 viestiä", "0 viestiä"]
    await set_locale(agent, "en")
    forms = await agent.evaluate(plurals, [1, 2, 0, 1.5])
    assert forms == ["1 message", "2 messages", "0 messages", "1.5 messages"]
    await set_locale(agent, "fi")
    await set_locale(agent, "en")

    # the same card as a drawer over another view (what the live visitors list opens)
    await agent.evaluate(
        "async (id) => (await import('/console/card.js')).showCard(id)", visitor_id
    )
    drawer = agent.get_by_test_id("card-drawer")
    await expect(drawer.get_by_test_id("visitor-card")).to_have_attribute(
        "data-state", "ready", timeout=WAIT_MS
    )
    await expect(
        drawer.locator('[data-testid="card-event"][data-type="cart.updated"]')
    ).to_contain_text("€129.90")
    await drawer.get_by_test_id("card-close").click()
    await expect(drawer).to_have_count(0)

    await agent.get_by_test_id("close-conversation").click()
    for _ in range(150):
        if await status_of(agent, conversation_id) == "closed":
            break
        await asyncio.sleep(0.2)
    assert await status_of(agent, conversation_id) == "closed"
