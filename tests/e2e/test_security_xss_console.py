"""Stored XSS in the agent console (issue 19's attack battery; the payloads and their README are
in tests/security/xss). It lives here because it runs on this folder's running system: one
chat stack per test session (a second one would share the site and the broker with it).

Every payload of the corpus goes through the public edges into visitor-controlled fields —
the tracker's /v1/collect (page titles, page URLs, referrers, the five UTM values, product names
and categories, cart item names, identify traits: name, e-mail, company, phone and custom
traits) and the widget API (chat text, the offline form's name and text) — and through Kafka
and the services into the console, rendered by Chromium: the visitor card of every visitor,
the conversation view of every chat, the live visitors list. Payloads are batched: each visitor
carries ten of them in every field, so 30 visitors carry the whole corpus.

In the page, an init script (xss_corpus.INIT_SCRIPT) records any call of the payloads' marker
or of alert/prompt/confirm, and CSP violations; a `dialog` handler records dialogs; a scan
(xss_corpus.DOM_SCAN) looks for elements, handlers and URLs a payload would have brought.
Nothing may run and nothing may be injected, and the payloads must be on screen as text (or
the test could pass by showing nothing).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from beckon_contracts.ids import uuid7
from consoles import agent_console, console_api, free_slots
from playwright.async_api import ConsoleMessage, Dialog, Page, expect
from xss_corpus import DOM_SCAN, INIT_SCRIPT, Payload, corpus

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]

WAIT_MS = 30_000
PER_VISITOR = 10
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


def _stamp() -> dict[str, str]:
    return {"event_id": str(uuid7()), "occurred_at": datetime.now(UTC).isoformat()}


def _events(store: str, batch: list[Payload]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for p in batch:
        events.append(
            {
                **_stamp(),
                "type": "page_viewed",
                "payload": {"page_type": "content"},
                "context": {
                    "page": {
                        "url": f"{store}/pages/{p.number}?q={quote(p.text)}#{p.text}",
                        "title": p.text,
                        "referrer": p.text,
                    },
                    "campaign": {
                        k: p.text for k in ("source", "medium", "name", "term", "content")
                    },
                },
            }
        )
        events.append(
            {
                **_stamp(),
                "type": "product_viewed",
                "payload": {
                    "product_id": f"xss-{p.number}",
                    "name": p.text,
                    "category": p.text,
                    "price": 1.0,
                    "currency": "EUR",
                },
            }
        )
    events.append(
        {
            **_stamp(),
            "type": "cart_updated",
            "payload": {
                "items": [
                    {"product_id": f"xss-{p.number}", "name": p.text, "category": p.text}
                    for p in batch
                ],
                "value": float(len(batch)),
                "currency": "EUR",
            },
        }
    )
    traits: dict[str, Any] = {f"trait_{p.number}": p.text for p in batch}
    for key, p in zip(("name", "email", "company", "phone"), batch, strict=False):
        traits[key] = p.text
    events.append(
        {
            **_stamp(),
            "type": "identified",
            "payload": {"traits": traits},
        }
    )
    return events


async def _admitted(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """The widget API's answer once its rate limit admits the call (30 visitors chatting from
    one address is more than it lets through at once); waits as its Retry-After says."""
    for _ in range(600):
        answer = await client.post(url, json=body, headers=headers)
        if answer.status_code != 429:
            return answer
        await asyncio.sleep(max(0.25, float(answer.headers.get("retry-after", "0"))))
    return answer


async def _visitor(client: httpx.AsyncClient, stack: ChatStack, batch: list[Payload]) -> str:
    """A visitor who browses, identifies and chats with the batch's payloads; their id."""
    visitor_id = f"v-xss-{uuid.uuid4().hex[:12]}"
    origin = {"Origin": stack.store_url, "User-Agent": CHROME}
    collected = await client.post(
        f"{stack.tracker_url}/v1/collect",
        params={"k": stack.site_key},
        json={
            "visitor_id": visitor_id,
            "session_id": f"s-{visitor_id}",
            "context": {"page": {"url": f"{stack.store_url}/", "title": "Home"}},
            "events": _events(stack.store_url, batch),
        },
        headers=origin,
    )
    assert collected.status_code in (200, 202), collected.text
    session = await _admitted(
        client,
        f"{stack.chat_url}/v1/widget/session",
        {"site_key": stack.site_key, "visitor_id": visitor_id},
        origin,
    )
    assert session.status_code == 200, session.text
    auth = {**origin, "Authorization": f"Bearer {session.json()['token']}"}
    started = await _admitted(
        client, f"{stack.chat_url}/v1/widget/conversations", {"text": batch[0].text}, auth
    )
    assert started.status_code in (200, 201), started.text
    for p in batch[1:]:
        sent = await _admitted(
            client, f"{stack.chat_url}/v1/widget/messages", {"text": p.text}, auth
        )
        assert sent.status_code == 201, sent.text
    return visitor_id


async def _findings(page: Page) -> dict[str, Any]:
    return {
        "ran": await page.evaluate("window.__xss"),
        "csp": await page.evaluate("window.__xssCsp"),
        "injected": await page.evaluate(DOM_SCAN),
    }


async def test_no_payload_runs_or_is_injected_in_the_console(
    chat_stack: ChatStack, new_context: Any
) -> None:
    payloads = list(corpus())
    batches = [payloads[i : i + PER_VISITOR] for i in range(0, len(payloads), PER_VISITOR)]
    context = await new_context()
    await context.add_init_script(INIT_SCRIPT)
    dialogs: list[str] = []
    pending: set[asyncio.Future[None]] = set()
    errors: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        pending.add(asyncio.ensure_future(dialog.dismiss()))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            errors.append(message.text)

    context.on("dialog", on_dialog)
    agent = await agent_console(context, chat_stack)
    agent.on("console", on_console)
    await free_slots(agent)

    async with httpx.AsyncClient(timeout=30) as client:
        visitors = [await _visitor(client, chat_stack, batch) for batch in batches]

    shown: set[int] = set()
    problems: list[str] = []
    card_ready = agent.get_by_test_id("card-drawer").get_by_test_id("visitor-card")
    for visitor_id, batch in zip(visitors, batches, strict=True):
        # the visitor card: history (titles, URLs, products, cart), source (referrer, UTM),
        # traits; the recorder may still be storing: wait for the last product
        await agent.evaluate(
            "async (id) => (await import('/console/card.js')).showCard(id)", visitor_id
        )
        await expect(card_ready).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
        history = card_ready.get_by_test_id("card-history")
        await expect(history.locator('[data-testid="card-event"]')).not_to_have_count(
            0, timeout=WAIT_MS
        )
        card_text = await card_ready.inner_text()
        found = await _findings(agent)
        if any(found.values()):
            problems.append(f"card of {visitor_id}: {found}")
        shown.update(p.number for p in batch if p.text.strip() and p.text.strip()[:30] in card_text)
        await agent.get_by_test_id("card-close").click()

    shown_in_chats: set[int] = set()
    # every chat in the conversation view: the visitor's messages as the agent reads them
    conversations = await agent.evaluate(
        """async (ids) => {
            const { api } = await import('/console/core/api.js');
            const data = await api('GET', '/conversations?scope=all');
            return (data.conversations || []).filter((c) => ids.includes(c.visitor_id))
                                             .map((c) => c.id);
        }""",
        visitors,
    )
    assert len(conversations) == len(visitors)
    for conversation_id in conversations:
        await agent.evaluate(
            "async (id) => (await import('/console/chats/conversation.js')).showConversation(id)",
            conversation_id,
        )
        await expect(agent.get_by_test_id("conversation")).to_have_attribute(
            "data-conversation-id", conversation_id, timeout=WAIT_MS
        )
        messages = agent.locator('#messages [data-author="visitor"]')
        stored = await console_api(agent, "GET", f"/conversations/{conversation_id}")
        from_visitor = [m for m in stored["messages"] if m["author"] == "visitor"]
        assert from_visitor, f"no visitor messages in {conversation_id}"
        try:
            await expect(messages).to_have_count(len(from_visitor), timeout=WAIT_MS)
        except AssertionError:  # markup in a message can swallow or split the list items
            problems.append(
                f"conversation {conversation_id}: {len(from_visitor)} visitor messages "
                f"stored, {await messages.count()} shown"
            )
        chat_text = await agent.locator("#messages").inner_text()
        shown_in_chats.update(p.number for p in payloads if p.text.strip()[:30] in chat_text)
        found = await _findings(agent)
        if any(found.values()):
            problems.append(f"conversation {conversation_id}: {found}")

    # the live visitors list
    await agent.evaluate("async () => (await import('/console/core/views.js')).views.show('live')")
    found = await _findings(agent)
    if any(found.values()):
        problems.append(f"live list: {found}")

    assert not dialogs, dialogs
    assert not errors, errors
    assert not problems, "\n".join(problems)
    # the payloads were on screen (as text): a battery that shows nothing proves nothing
    assert len(shown) >= len(payloads) * 0.9, f"only {len(shown)} of {len(payloads)} shown"
    assert shown_in_chats, "no payload shown in a conversation"
