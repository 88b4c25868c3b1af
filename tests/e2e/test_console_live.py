"""The live visitor list in a real browser on the real services.

1. Visitors whose `visitor.state` records are written to the stack's broker appear in the
   Visitors view, a filter narrows the list, and a new record changes the row in place.
2. A real visitor browses the demo store (tracker → triggers → `visitors.state`); an agent
   finds them in the list and sends a personal invitation with an edited message; the widget
   shows it with that agent's name, and accepting gives the chat to that agent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import VISITORS_STATE
from chat.visitors import pseudonym
from consoles import agent_console, choose_locale
from playwright.async_api import BrowserContext, Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000
BEN = "Ben Koski"


def state_record(site_id: str, visitor_id: str, **payload: Any) -> bytes:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "url": "https://store.test/p/trail-runner-x",
        "title": "Trail Runner X",
        "page_type": "product",
        "session_started_at": (now - timedelta(minutes=4)).isoformat(),
        "last_seen_at": now.isoformat(),
        "time_on_site_s": 240.0,
        "sessions": 1,
        "returning": False,
        "source": "google",
        "medium": "cpc",
        "campaign": "e2e-live",
        "cart_value": 0.0,
        "currency": "EUR",
        "score": 15.0,
        "segment": "cold",
        "invited": False,
    }
    values.update(payload)
    return orjson.dumps(
        {
            "event_id": str(uuid7()),
            "type": "visitor.state",
            "occurred_at": now.isoformat(),
            "site_id": site_id,
            "visitor_id": visitor_id,
            "session_id": f"s-{visitor_id}",
            "payload": values,
        }
    )


async def write_states(stack: ChatStack, *states: tuple[str, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    await producer.start()
    try:
        for visitor_id, value in states:
            key = f"{stack.site_id}:{visitor_id}".encode()
            await producer.send_and_wait(VISITORS_STATE.name, value, key=key)
    finally:
        await producer.stop()


def row(page: Page, visitor_id: str) -> Any:
    return page.locator(f'[data-testid="live-row"][data-visitor="{visitor_id}"]')


async def test_visitors_appear_live_filter_and_update_in_place(
    chat_stack: ChatStack, new_context: Any
) -> None:
    tag = uuid.uuid4().hex[:8]
    big, small = f"e2e-live-big-{tag}", f"e2e-live-small-{tag}"
    page = await agent_console(await new_context(), chat_stack, status=None)
    await page.get_by_test_id("tab-visitors").click()
    await expect(page.get_by_test_id("live-count")).to_be_visible()
    # only this test's visitors (the stack is shared with other tests' visitors)
    await page.get_by_test_id("live-filter-search").fill(tag)

    await write_states(
        chat_stack,
        (
            big,
            state_record(
                chat_stack.site_id,
                big,
                cart_value=149.0,
                cart_items=2,
                score=80.0,
                segment="hot",
                device="mobile",
                browser="Safari",
            ),
        ),
        (small, state_record(chat_stack.site_id, small, cart_value=20.0, cart_items=1)),
    )
    await expect(row(page, big)).to_be_visible(timeout=WAIT_MS)
    await expect(row(page, small)).to_be_visible(timeout=WAIT_MS)
    await expect(page.get_by_test_id("live-count")).to_have_attribute("data-shown", "2")
    await expect(row(page, big)).to_contain_text("149")
    await expect(row(page, big)).to_contain_text("google")
    await expect(row(page, small)).to_contain_text("Trail Runner X")
    # a name to tell rows apart and say aloud, the same the server gives every view
    await expect(row(page, big).get_by_test_id("live-label")).to_have_text(pseudonym(big)["en"])
    await expect(row(page, big).get_by_test_id("live-device")).to_have_text("Mobile · Safari · new")
    await expect(row(page, big).get_by_test_id("live-source")).to_have_text("google")

    # cart at least 100: only the big cart stays
    await page.get_by_test_id("live-filter-cart").fill("100")
    await expect(row(page, small)).to_have_count(0)
    await expect(row(page, big)).to_be_visible()
    await expect(page.get_by_test_id("live-count")).to_have_attribute("data-shown", "1")
    # hot leads: still the big one; then cleared, both again
    await page.get_by_test_id("live-filter-cart").fill("")
    await page.get_by_test_id("live-filter-hot").click()
    await expect(page.get_by_test_id("live-count")).to_have_attribute("data-shown", "1")
    await expect(row(page, big)).to_be_visible()
    await page.get_by_test_id("live-filter-hot").click()
    await expect(page.get_by_test_id("live-count")).to_have_attribute("data-shown", "2")

    # sorting by cart puts the bigger cart first, then flips
    await page.get_by_test_id("live-sort-cart").click()
    ids = page.locator('[data-testid="live-row"]:visible')
    assert await first_visitor(page) == big
    await page.get_by_test_id("live-sort-cart").click()
    assert await first_visitor(page) == small
    assert await ids.count() == 2

    # the small visitor moves to checkout with a bigger cart: the same row changes
    await write_states(
        chat_stack,
        (
            small,
            state_record(
                chat_stack.site_id,
                small,
                url="https://store.test/checkout",
                title="Checkout",
                page_type="checkout",
                cart_value=230.5,
                cart_items=3,
                invited=True,
                chatting=True,
            ),
        ),
    )
    await expect(row(page, small)).to_contain_text("Checkout", timeout=WAIT_MS)
    await expect(row(page, small)).to_contain_text("230")
    await page.get_by_test_id("live-filter-checkout").click()
    await expect(page.get_by_test_id("live-count")).to_have_attribute("data-shown", "1")
    await expect(row(page, small)).to_be_visible()
    await expect(row(page, big)).to_have_count(0)

    # Finnish: the same list, in the agent's language and money format
    await choose_locale(page, "fi")
    await expect(page.get_by_test_id("live-filter-checkout")).to_have_text(
        "Ostoskorissa tai kassalla"
    )
    await expect(row(page, small)).to_contain_text("230,50")
    await expect(row(page, small).get_by_test_id("live-label")).to_have_text(pseudonym(small)["fi"])
    await expect(row(page, small).get_by_test_id("live-chatting")).to_have_text("Keskustelee")
    await expect(row(page, small).get_by_test_id("live-invited")).to_have_text("Kutsuttu")
    # nothing of the Finnish labels is cut off: the status and segment chips, the cells that
    # hold them, the cart's item count and the column headers
    clipped = await page.evaluate(
        """() => [...document.querySelectorAll(
              '.live-row:not([hidden]) .live-c-status, .live-row:not([hidden]) .live-c-score,'
              + ' .live-row:not([hidden]) .live-badge:not([hidden]),'
              + ' .live-row:not([hidden]) .live-seg,'
              + ' .live-row:not([hidden]) .live-c-cart > span, .live-head .live-sort')]
            .filter((n) => n.scrollWidth > n.clientWidth)
            .map((n) => n.textContent)"""
    )
    assert clipped == []
    await choose_locale(page, "en")


async def first_visitor(page: Page) -> str | None:
    """The visitor of the top row on screen (rows are positioned, not in DOM order)."""
    result: str | None = await page.evaluate(
        """() => {
          const rows = [...document.querySelectorAll('[data-testid="live-row"]')]
            .filter(r => !r.hidden)
            .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
          return rows.length ? rows[0].getAttribute('data-visitor') : null;
        }"""
    )
    return result


async def test_a_personal_invitation_from_the_list_reaches_the_visitor_and_its_chat_the_agent(
    chat_stack: ChatStack, new_context: Any
) -> None:
    agent = await agent_console(
        await new_context(), chat_stack, chat_stack.second_agent_email, status=None
    )
    toggle = agent.get_by_test_id("status-toggle")
    if await toggle.get_attribute("data-status") != "online":
        await toggle.click()
    await expect(toggle).to_have_attribute("data-status", "online", timeout=WAIT_MS)

    # a real visitor on the store: one page, so no rule invites them meanwhile
    visitor_context: BrowserContext = await new_context()
    visitor = await visitor_context.new_page()
    await visitor.goto(f"{chat_stack.store_url}/")
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    visitor_id = await visitor.evaluate(
        "() => window.beckon && window.beckon.visitorId && window.beckon.visitorId()"
    )
    assert isinstance(visitor_id, str)
    assert visitor_id

    await agent.get_by_test_id("tab-visitors").click()
    await agent.get_by_test_id("live-filter-search").fill(visitor_id)
    listed = row(agent, visitor_id)
    await expect(listed).to_be_visible(timeout=60_000)  # tracker → triggers → visitors.state

    await listed.get_by_test_id("live-invite").click()
    message = agent.get_by_test_id("invite-message")
    await expect(message).to_be_visible()
    assert BEN.split()[0] in await message.input_value()  # pre-filled, signed by the agent
    await expect(agent.get_by_test_id("invite-agent")).to_contain_text(BEN)
    # an empty message is refused inline
    await message.fill("   ")
    await agent.get_by_test_id("invite-send").click()
    await expect(agent.get_by_test_id("invite-error")).to_be_visible()
    text = f"Hi, I'm Ben from the store. Can I help you find the right shoes? ({visitor_id[:6]})"
    await message.fill(text)
    await agent.get_by_test_id("invite-send").click()
    await expect(agent.get_by_test_id("invite-dialog")).to_have_count(0, timeout=WAIT_MS)
    await expect(listed.get_by_test_id("live-invited")).to_be_visible(timeout=WAIT_MS)

    invitation = visitor.get_by_test_id("beckon-invitation")
    await expect(invitation).to_be_visible(timeout=WAIT_MS)
    await expect(visitor.get_by_test_id("beckon-invitation-text")).to_have_text(text)
    await expect(invitation.get_by_test_id("beckon-agent-name")).to_contain_text("Ben")

    await visitor.get_by_test_id("beckon-accept").click()
    panel = visitor.get_by_test_id("beckon-panel")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_test_id("beckon-agent-name")).to_have_text(BEN, timeout=WAIT_MS)
    # no e-mail is sent by this site yet: the widget asks for an address, promises no transcript
    mail = panel.get_by_test_id("beckon-email")
    await expect(mail).to_have_attribute("data-kind", "contact")
    await expect(mail).not_to_contain_text("transcript")
    # and the chat is Ben's in his console
    await agent.get_by_test_id("tab-chats").click()
    await expect(agent.get_by_test_id("mine-item")).to_have_count(1, timeout=WAIT_MS)
    # the list shows the visitor as chatting now
    await agent.get_by_test_id("tab-visitors").click()
    await expect(row(agent, visitor_id).get_by_test_id("live-chatting")).to_be_visible(
        timeout=WAIT_MS
    )
    # the live row and the chat row name the visitor alike, and say how they came
    label = pseudonym(visitor_id)["en"]
    await expect(row(agent, visitor_id).get_by_test_id("live-label")).to_have_text(label)
    await expect(row(agent, visitor_id).get_by_test_id("live-source")).to_have_text("Direct")
    # close what this test opened
    await agent.get_by_test_id("tab-chats").click()
    chat_row = agent.get_by_test_id("mine-item").first
    await expect(chat_row.get_by_test_id("row-visitor")).to_have_text(label)
    await expect(chat_row.get_by_test_id("row-meta")).to_contain_text("Direct", timeout=WAIT_MS)
    await chat_row.click()
    # and so does the open conversation's header
    await expect(agent.locator("#conv-visitor")).to_have_text(label)
    await agent.get_by_test_id("close-conversation").click()
    # the widget no longer says "online" once the chat is over
    status = panel.get_by_test_id("beckon-status")
    await expect(status).to_have_attribute("data-status", "ended", timeout=WAIT_MS)
    await expect(status).to_have_text("chat ended")
