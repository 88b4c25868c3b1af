"""A visitor's reply by e-mail in real browsers on the real services.

The notifier's command (`conversation.add_email_reply` on `chat.inbound`) is published on the
broker as the notifier would; the agent's open conversation shows it at once as the visitor's
message with the "by e-mail" badge (Finnish: "sähköpostitse") and its attachment listed, not
downloadable; the visitor's widget shows it as their own, live and after a reload.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from beckon_contracts.ids import uuid7
from beckon_contracts.inbound import AddEmailReply, command_key
from beckon_contracts.topics import CHAT_INBOUND
from consoles import agent_console, free_slots, open_chat, set_locale, visitor_starts_chat
from playwright.async_api import expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_MS = 30_000
# the first command may wait for chat's `<group>-inbound` consumer group to form
FIRST_COMMAND_MS = 60_000


async def publish_email_reply(stack: ChatStack, conversation_id: str, text: str) -> None:
    """What the notifier publishes for a visitor's answer to one of Beckon's e-mails."""
    now = datetime.now(UTC)
    command = AddEmailReply.model_validate(
        {
            "event_id": uuid7(),
            "occurred_at": now,
            "site_id": stack.site_id,
            "payload": {
                "conversation_id": conversation_id,
                "text": text,
                "from_email": "visitor@example.com",
                "subject": "Re: your chat with Ridgeline Outfitters",
                "attachments": [
                    {"filename": "tent.jpg", "content_type": "image/jpeg", "size": 245_760}
                ],
                "received_at": now,
            },
        }
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    await producer.start()
    try:
        await producer.send_and_wait(
            CHAT_INBOUND.name,
            command.model_dump_json().encode(),
            key=command_key(command.payload.conversation_id),
        )
    finally:
        await producer.stop()


async def test_an_emailed_reply_shows_in_the_agents_open_conversation_with_the_badge(
    chat_stack: ChatStack, new_context: Any
) -> None:
    uid = uuid.uuid4().hex[:8]
    anna = await agent_console(await new_context(), chat_stack)
    await free_slots(anna)
    visitor = await visitor_starts_chat(
        await new_context(), chat_stack, f"Does the tent fit three? ({uid})"
    )
    await expect(visitor.get_by_test_id("beckon-agent-name").last).to_have_text(
        "Anna Virtanen", timeout=WAIT_MS
    )
    cid = await open_chat(anna, uid)
    typed = anna.locator('[data-testid="message"][data-author="visitor"]')
    await expect(typed).to_have_count(1, timeout=WAIT_MS)
    await expect(anna.get_by_test_id("message-email-badge")).to_have_count(0)

    reply = f"Thanks! Here is a photo of my old one. ({uid})"
    await publish_email_reply(chat_stack, cid, reply)

    emailed = anna.locator('[data-testid="message"][data-author="visitor"]').filter(has_text=reply)
    await expect(emailed).to_have_count(1, timeout=FIRST_COMMAND_MS)
    badge = emailed.get_by_test_id("message-email-badge")
    await expect(badge).to_have_text("by e-mail")
    attachment = emailed.get_by_test_id("message-attachment")
    await expect(attachment).to_have_count(1)
    await expect(attachment).to_contain_text("tent.jpg")
    await expect(attachment).to_contain_text("240")
    await expect(emailed.locator("a")).to_have_count(0)  # listed, never a download
    # the typed message has no badge; the e-mailed one comes after it
    await expect(anna.get_by_test_id("message-email-badge")).to_have_count(1)
    await expect(typed.last).to_contain_text(reply)
    await set_locale(anna, "fi")
    await expect(badge).to_have_text("sähköpostitse")
    await set_locale(anna, "en")

    # the visitor's widget shows it as their own, live and after a reload (the history)
    mine = visitor.locator('[data-testid="beckon-message"][data-author="visitor"]')
    await expect(mine.filter(has_text=reply)).to_have_count(1, timeout=WAIT_MS)
    await visitor.reload()
    await expect(visitor.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await visitor.get_by_test_id("beckon-launcher").click()
    await expect(mine.filter(has_text=reply)).to_have_count(1, timeout=WAIT_MS)

    # the history keeps the badge: the conversation opened again from the server
    await anna.reload()
    await expect(anna.get_by_test_id("ws-status")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await open_chat(anna, uid)
    again = anna.locator('[data-testid="message"]').filter(has_text=reply)
    await expect(again.get_by_test_id("message-email-badge")).to_have_text(
        "by e-mail", timeout=WAIT_MS
    )
    await expect(again.get_by_test_id("message-attachment")).to_contain_text("tent.jpg")

    await anna.get_by_test_id("close-conversation").click()
    await expect(anna.get_by_test_id("conversation-status")).to_have_attribute(
        "data-status", "closed", timeout=WAIT_MS
    )
