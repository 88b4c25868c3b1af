"""A proactive chat from start to end, in real browsers on the real services.

A visitor browses the demo store; the triggers worker's rule fires on their second look at a
product; the chat widget (loaded by the tracking snippet) shows the invitation with the
agent's name; the visitor accepts and writes; the agent, in a second browser context, sees
the visitor's typing preview and the message, and replies; the visitor sees the reply. Then
the visitor's network drops and comes back, and nothing is lost or shown twice. Plus: 200 XSS
payloads from a visitor execute nothing in the agent console.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from consoles import agent_console, triggers_knows
from playwright.async_api import BrowserContext, Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass (conftest is not importable by name here)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

PRODUCT = "/p/trail-runner-x"
WAIT_MS = 30_000


def console_messages(page: Page, author: str) -> Any:
    """The text of each message in the console's open conversation (without name and time)."""
    return page.locator(f'[data-testid="message"][data-author="{author}"] .msg-text')


def widget_messages(page: Page, author: str) -> Any:
    return page.locator(f'[data-testid="beckon-message"][data-author="{author}"]')


async def test_a_rule_invites_the_visitor_and_the_agent_answers(
    chat_stack: ChatStack, new_context: Any
) -> None:
    agent_page = await agent_console(await new_context(), chat_stack)
    await triggers_knows(chat_stack)
    visitor_context: BrowserContext = await new_context()
    visitor = await visitor_context.new_page()
    dialogs: list[str] = []
    visitor.on("dialog", lambda dialog: dialogs.append(dialog.message))

    # the second look at the same product makes the rule fire
    await visitor.goto(f"{chat_stack.store_url}{PRODUCT}")
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await visitor.reload()
    invitation = visitor.get_by_test_id("beckon-invitation")
    await expect(invitation).to_be_visible(timeout=60_000)
    await expect(visitor.get_by_test_id("beckon-invitation-text")).to_contain_text("Trail Runner X")
    await expect(invitation.get_by_test_id("beckon-agent-name")).to_contain_text("Anna")
    invited = await visitor.get_by_test_id("beckon-invitation-text").inner_text()

    await visitor.get_by_test_id("beckon-accept").click()
    panel = visitor.get_by_test_id("beckon-panel")
    await expect(panel).to_be_visible()
    # the visitor sees who is writing: the agent the conversation went to
    await expect(panel.get_by_test_id("beckon-agent-name")).to_have_text(
        "Anna Virtanen", timeout=WAIT_MS
    )

    # the agent sees what the visitor types before it is sent
    draft = "Do you have it in size 44"
    await visitor.get_by_test_id("beckon-input").press_sequentially(draft, delay=20)
    conversation = agent_page.get_by_test_id("mine-item")
    await expect(conversation).to_have_count(1, timeout=WAIT_MS)
    await conversation.click()
    # the invitation's words open the conversation for the agent, as they did for the visitor,
    # with the rule that sent them
    opening = agent_page.get_by_test_id("opening")
    await expect(opening.locator(".msg-text")).to_have_text(invited, timeout=WAIT_MS)
    await expect(opening.get_by_test_id("opening-source")).to_contain_text(
        "Second look at a product"
    )
    await expect(agent_page.locator("#messages > li").first).to_have_attribute(
        "data-testid", "opening"
    )
    await expect(visitor.get_by_test_id("beckon-opening")).to_have_text(invited)
    await expect(agent_page.get_by_test_id("typing-preview")).to_contain_text(
        "size 44", timeout=WAIT_MS
    )
    await visitor.get_by_test_id("beckon-input").press_sequentially("?")
    await visitor.get_by_test_id("beckon-send").click()
    await expect(console_messages(agent_page, "visitor")).to_have_text(
        [f"{draft}?"], timeout=WAIT_MS
    )

    await agent_page.get_by_test_id("reply-input").fill("Yes, 44 is in stock. Want me to hold one?")
    await agent_page.get_by_test_id("reply-send").click()
    await expect(widget_messages(visitor, "agent")).to_have_text(
        ["Yes, 44 is in stock. Want me to hold one?"], timeout=WAIT_MS
    )

    # the network drops: the agent writes twice, the visitor writes once, offline
    await visitor_context.set_offline(True)
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "reconnecting", timeout=WAIT_MS
    )
    for text in ("Here is the size guide: /sizes", "And delivery is free this week."):
        await agent_page.get_by_test_id("reply-input").fill(text)
        await agent_page.get_by_test_id("reply-send").click()
    await visitor.get_by_test_id("beckon-input").fill("Great, please hold one for me")
    await visitor.get_by_test_id("beckon-input").press("Enter")
    await visitor_context.set_offline(False)

    await expect(widget_messages(visitor, "agent")).to_have_text(
        [
            "Yes, 44 is in stock. Want me to hold one?",
            "Here is the size guide: /sizes",
            "And delivery is free this week.",
        ],
        timeout=60_000,
    )
    await expect(console_messages(agent_page, "visitor")).to_have_text(
        [f"{draft}?", "Great, please hold one for me"], timeout=60_000
    )
    # every message once on both sides, in the same order
    await expect(widget_messages(visitor, "visitor")).to_have_text(
        [f"{draft}?", "Great, please hold one for me"]
    )
    ids = await visitor.locator('[data-testid="beckon-message"]').evaluate_all(
        "els => els.map(e => e.dataset.id)"
    )
    assert len(ids) == len(set(ids)) == 5
    assert dialogs == []

    # the widget has the opening from the server, not only from its own record in storage
    await visitor.evaluate(
        "key => localStorage.removeItem(key)", f"beckon_chat_{chat_stack.site_key}"
    )
    await visitor.reload()
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await visitor.get_by_test_id("beckon-launcher").click()
    await expect(visitor.get_by_test_id("beckon-opening")).to_have_text(invited, timeout=WAIT_MS)


XSS_PAYLOADS = [
    template.format(n=n)
    for n in range(20)
    for template in (
        "<script>window.__xss={n}</script>",
        '<img src=x onerror="window.__xss={n}">',
        "<svg onload=window.__xss={n}>",
        '"><script>window.__xss={n}</script>',
        '<iframe src="javascript:window.parent.__xss={n}"></iframe>',
        '<a href="javascript:window.__xss={n}">click</a>',
        "<body onload=window.__xss={n}>",
        "'';!--\"<XSS>=&{{()}} {n}",
        "<details open ontoggle=window.__xss={n}>",
        "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss={n}>",
    )
]


async def test_xss_from_a_visitor_executes_nothing_in_the_console(
    chat_stack: ChatStack, new_context: Any
) -> None:
    assert len(XSS_PAYLOADS) == 200
    agent_page = await agent_console(await new_context(), chat_stack)
    dialogs: list[str] = []
    agent_page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    origin = chat_stack.store_url
    async with httpx.AsyncClient(base_url=chat_stack.chat_url, timeout=10) as client:
        session = await client.post(
            "/v1/widget/session",
            json={"site_key": chat_stack.site_key, "visitor_id": "e2e-xss-visitor"},
            headers={"Origin": origin},
        )
        assert session.status_code == 200, session.text
        headers = {"Authorization": f"Bearer {session.json()['token']}", "Origin": origin}
        started = await client.post(
            "/v1/widget/conversations", json={"text": "hello"}, headers=headers
        )
        assert started.status_code in (200, 201), started.text
        headers["Authorization"] = f"Bearer {started.json()['token']}"
        for index, payload in enumerate(XSS_PAYLOADS):
            for _ in range(20):
                answer = await client.post(
                    "/v1/widget/messages",
                    json={"client_id": f"xss-{index}", "text": payload},
                    headers=headers,
                )
                if answer.status_code != 429:
                    break
                await asyncio.sleep(float(answer.headers.get("retry-after", "1")))
            assert answer.status_code == 201, answer.text

    item = agent_page.locator(
        f'[data-testid="mine-item"][data-conversation-id="{started.json()["conversation"]["id"]}"]'
    )
    await expect(item).to_have_count(1, timeout=WAIT_MS)
    await item.click()
    visitor_messages = console_messages(agent_page, "visitor")
    await expect(visitor_messages).to_have_count(201, timeout=WAIT_MS)
    shown = await visitor_messages.evaluate_all("els => els.map(e => e.textContent)")
    assert shown[1:] == [payload.strip() for payload in XSS_PAYLOADS]
    # the payloads are text: no element they describe exists in the conversation, and no
    # element there carries an event handler, so nothing can run later (no need to wait)
    injected = await agent_page.locator(
        '[data-testid="conversation"] script, [data-testid="conversation"] img[src="x"], '
        '[data-testid="conversation"] iframe, [data-testid="conversation"] svg'
    ).count()
    assert injected == 0
    handlers = await agent_page.locator('[data-testid="conversation"] *').evaluate_all(
        "els => els.flatMap(e => [...e.attributes].map(a => a.name))"
        ".filter(n => n.startsWith('on'))"
    )
    assert handlers == []
    assert await agent_page.evaluate("window.__xss") is None
    assert dialogs == []
