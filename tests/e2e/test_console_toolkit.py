"""The agent's toolkit in real browsers on the real services.

A private note never reaches the visitor; a transfer from Anna to Ben (both logged in, in
browser contexts of their own) shows Ben to the visitor, and both agents' timelines show
"Anna → Ben" with its note (not as a note); a
canned reply with variables is picked with "/", filled, edited and sent, and the visitor
reads it; a tag puts the conversation in the Answers search; the conversation is marked as
a lead.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from consoles import (
    agent_console,
    choose_locale,
    free_slots,
    open_chat,
    set_status,
    visitor_starts_chat,
)
from playwright.async_api import Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_MS = 30_000


async def widget_text(page: Page) -> str:
    """Everything the widget shows or holds, inside its shadow root, plus the page's own."""
    return str(
        await page.evaluate(
            """() => {
                const host = document.getElementById('beckon-chat');
                const shadow = host && host.shadowRoot ? host.shadowRoot.innerHTML : '';
                return document.documentElement.outerHTML + shadow;
            }"""
        )
    )


async def test_a_note_stays_with_agents_and_a_transfer_shows_the_new_agent(
    chat_stack: ChatStack, new_context: Any
) -> None:
    uid = uuid.uuid4().hex[:8]
    ben = await agent_console(
        await new_context(), chat_stack, chat_stack.second_agent_email, status="away"
    )
    anna = await agent_console(await new_context(), chat_stack)
    await free_slots(anna)
    question = f"Hello, do these run small? ({uid})"
    visitor = await visitor_starts_chat(await new_context(), chat_stack, question)
    panel = visitor.get_by_test_id("beckon-panel")
    await expect(panel.get_by_test_id("beckon-agent-name")).to_have_text(
        "Anna Virtanen", timeout=WAIT_MS
    )
    cid = await open_chat(anna, uid)

    # a private note, written in the composer's note mode
    note = f"NOTE-{uid}: regular customer, offer the loyalty discount"
    await anna.get_by_test_id("composer-mode-note").click()
    await anna.get_by_test_id("reply-input").fill(note)
    await anna.get_by_test_id("reply-input").press("Enter")
    shown = anna.get_by_test_id("note")
    await expect(shown).to_have_count(1, timeout=WAIT_MS)
    await expect(shown).to_contain_text(note)
    await expect(shown).to_contain_text("only agents see this")
    await expect(anna.locator('[data-testid="message"]').filter(has_text=note)).to_have_count(0)

    # a real reply after it: once the visitor has the reply, the note would have come first
    await anna.get_by_test_id("composer-mode-reply").click()
    await anna.get_by_test_id("reply-input").fill(f"They run true to size ({uid})")
    await anna.get_by_test_id("reply-send").click()
    await expect(
        visitor.locator('[data-testid="beckon-message"][data-author="agent"]')
    ).to_have_text([f"They run true to size ({uid})"], timeout=WAIT_MS)
    assert f"NOTE-{uid}" not in await widget_text(visitor)

    # Ben comes online; Anna transfers the chat to him with a note
    await set_status(ben, "online")
    transfer_note = f"TRANSFER-{uid}: asked about sizes, wants 44"
    await anna.get_by_test_id("transfer-open").click()
    target = anna.get_by_test_id("transfer-agent").filter(has_text="Ben Koski")
    await expect(target).to_have_count(1, timeout=WAIT_MS)
    await target.click()
    await anna.get_by_test_id("transfer-note").fill(transfer_note)
    await anna.get_by_test_id("transfer-submit").click()
    await expect(anna.get_by_test_id("transfer-popover")).to_have_count(0, timeout=WAIT_MS)

    # the visitor sees who writes now
    await expect(panel.get_by_test_id("beckon-agent-name")).to_have_text(
        "Ben Koski", timeout=WAIT_MS
    )
    # Ben has it, with Anna's note and the transfer ("Anna → Ben") carrying its own note,
    # after the reply it followed; his reply reaches the visitor
    await open_chat(ben, uid)
    ben_notes = ben.get_by_test_id("note")
    await expect(ben_notes).to_have_count(1, timeout=WAIT_MS)
    await expect(ben_notes).to_contain_text(note)
    moved = ben.get_by_test_id("transfer-event")
    await expect(moved).to_have_count(1, timeout=WAIT_MS)
    await expect(moved.get_by_test_id("transfer-event-text")).to_have_text(
        "Anna Virtanen → Ben Koski"
    )
    await expect(moved.get_by_test_id("transfer-event-note")).to_contain_text(transfer_note)
    timeline = await ben.locator("#messages > li").evaluate_all(
        "items => items.map(li => li.getAttribute('data-testid'))"
    )
    assert timeline[-2:] == ["message", "transfer-event"], timeline
    # Anna's console shows the same event at once
    await expect(anna.get_by_test_id("transfer-event")).to_have_count(1, timeout=WAIT_MS)
    await ben.get_by_test_id("reply-input").fill(f"Ben here, I can help ({uid})")
    await ben.get_by_test_id("reply-send").click()
    await expect(
        visitor.locator('[data-testid="beckon-message"][data-author="agent"]').last
    ).to_have_text(f"Ben here, I can help ({uid})", timeout=WAIT_MS)

    # nothing of either note ever reached the visitor's page, even after a reload
    assert f"NOTE-{uid}" not in await widget_text(visitor)
    assert f"TRANSFER-{uid}" not in await widget_text(visitor)
    await visitor.reload()
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await visitor.get_by_test_id("beckon-launcher").click()
    await expect(
        visitor.locator('[data-testid="beckon-message"][data-author="agent"]').last
    ).to_have_text(f"Ben here, I can help ({uid})", timeout=WAIT_MS)
    text = await widget_text(visitor)
    assert f"NOTE-{uid}" not in text
    assert f"TRANSFER-{uid}" not in text

    await ben.get_by_test_id("close-conversation").click()
    await expect(ben.get_by_test_id("conversation-status")).to_have_attribute(
        "data-status", "closed", timeout=WAIT_MS
    )
    await set_status(ben, "away")
    assert cid


async def test_canned_reply_tags_answers_and_a_lead(
    chat_stack: ChatStack, new_context: Any
) -> None:
    uid = uuid.uuid4().hex[:8]
    anna = await agent_console(await new_context(), chat_stack)
    await free_slots(anna)
    question = f"Is shipping to Finland free? ({uid})"
    visitor = await visitor_starts_chat(await new_context(), chat_stack, question)
    await expect(visitor.get_by_test_id("beckon-agent-name").last).to_have_text(
        "Anna Virtanen", timeout=WAIT_MS
    )
    cid = await open_chat(anna, uid)

    # Anna saves a reply of her own with variables, in the canned replies panel
    shortcut = f"ship{uid}"
    await anna.get_by_test_id("canned-manage").click()
    panel = anna.get_by_test_id("canned-panel")
    await expect(panel).to_be_visible()
    await panel.get_by_test_id("canned-shortcut").fill(shortcut)
    await panel.get_by_test_id("canned-text").fill(
        "Hi {visitor_name}! {agent_first_name} here ({agent_name}): shipping is free over 50 €."
    )
    await panel.get_by_test_id("canned-save").click()
    await expect(
        panel.locator(f'[data-testid="canned-row"][data-shortcut="{shortcut}"]')
    ).to_have_count(1, timeout=WAIT_MS)
    await panel.get_by_test_id("canned-close").click()

    # "/" + shortcut opens the picker; Enter puts the filled reply in the composer
    composer = anna.get_by_test_id("reply-input")
    await composer.press_sequentially(f"/ship{uid[:4]}", delay=20)
    item = anna.get_by_test_id("canned-picker").locator(
        f'[data-testid="canned-item"][data-shortcut="{shortcut}"]'
    )
    await expect(item).to_have_count(1, timeout=WAIT_MS)
    await expect(anna.get_by_test_id("canned-item")).to_have_count(1)
    await expect(item).to_have_class("tk-pick is-active")
    await composer.press("Enter")
    # the visitor's name is not known: it leaves nothing behind, never "{visitor_name}"
    filled = "Hi! Anna here (Anna Virtanen): shipping is free over 50 €."
    await expect(composer).to_have_value(filled, timeout=WAIT_MS)
    await expect(anna.get_by_test_id("canned-picker")).to_have_count(0)
    # edited before sending
    await composer.press("End")
    await composer.press_sequentially(f" Delivery in 2 days ({uid})")
    await composer.press("Enter")
    sent = f"{filled} Delivery in 2 days ({uid})"
    await expect(
        visitor.locator('[data-testid="beckon-message"][data-author="agent"]')
    ).to_have_text([sent], timeout=WAIT_MS)
    assert "{" not in sent

    # a tag from the objection set
    await anna.get_by_test_id("tags-open").click()
    await anna.locator('[data-testid="tag-option"][data-tag="shipping"]').check()
    await anna.get_by_test_id("tags-save").click()
    await expect(
        anna.locator('[data-testid="conversation-tag"][data-tag="shipping"]')
    ).to_have_count(1, timeout=WAIT_MS)

    # marked as a lead, with how far it was validated; a double click makes one mark
    await anna.get_by_test_id("lead-open").click()
    await anna.get_by_test_id("lead-validation").select_option("qualified")
    await anna.get_by_test_id("lead-note").fill(f"Orders for a running club ({uid})")
    await anna.get_by_test_id("lead-save").dblclick()
    await expect(anna.get_by_test_id("lead-open")).to_have_attribute(
        "data-validation", "qualified", timeout=WAIT_MS
    )
    conn = await asyncpg.connect(chat_stack.database_url)
    try:
        marks = await conn.fetch(
            "SELECT validation, note FROM chat.lead_marks WHERE conversation_id = $1::uuid", cid
        )
    finally:
        await conn.close()
    assert [(m["validation"], m["note"]) for m in marks] == [
        ("qualified", f"Orders for a running club ({uid})")
    ]

    # the Answers view finds it by tag and text, question and answer side by side
    await anna.get_by_test_id("tab-answers").click()
    await anna.get_by_test_id("answers-tag").select_option("shipping")
    await anna.get_by_test_id("answers-q").fill(uid)
    await anna.get_by_test_id("answers-search").click()
    found = anna.locator(f'[data-testid="answer-item"][data-conversation-id="{cid}"]')
    await expect(found).to_have_count(1, timeout=WAIT_MS)
    await expect(found.get_by_test_id("answer-question").first).to_have_text(question)
    await expect(found.get_by_test_id("answer-text").first).to_have_text(sent)
    # and an answer can become a canned reply
    await found.get_by_test_id("answer-save").first.click()
    await expect(anna.get_by_test_id("canned-text")).to_have_value(sent)
    await anna.get_by_test_id("canned-close").click()

    # back in the chats view: Finnish is one click away, and the view speaks it
    await anna.get_by_test_id("tab-chats").click()
    await choose_locale(anna, "fi")
    await expect(anna.get_by_test_id("reply-send")).to_have_text("Lähetä")
    await expect(anna.get_by_test_id("composer-mode-note")).to_have_text("Yksityinen muistiinpano")
    await choose_locale(anna, "en")
    await expect(anna.get_by_test_id("reply-send")).to_have_text("Send")

    await anna.get_by_test_id("close-conversation").click()
    await expect(anna.get_by_test_id("conversation-status")).to_have_attribute(
        "data-status", "closed", timeout=WAIT_MS
    )
