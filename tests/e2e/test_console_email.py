"""E-mail in the console, on the real services: chat, the notifier and an SMTP sink that hands
mail for the reply domain to the notifier's inbound endpoint (tests/e2e/conftest.py).

- A visitor who left an address gets the transcript when the agent closes the chat; their
  reply to it (sent over SMTP to its Reply-To) comes back through the sink, the notifier and
  `chat.inbound` into the same conversation, where the agent sees it live with the e-mail
  badge. Nothing here publishes chat.inbound itself: a broken inbound path fails this test.
- Admins: the delivery log shows the transcript as sent with its try, and Resend makes a
  second entry; the e-mail settings are saved and read back, the server's validation errors
  shown at their fields; each template previews in English and Finnish (HTML in a sandboxed
  frame).
- Every agent: the offline inbox lists an offline message; opening it opens its conversation,
  where the agent answers it, and the inbox then says it is answered.
- Deep links: `#conversation=<id>` opens that conversation, `#lead=<id>` that lead.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
import pytest
from consoles import (
    a_marked_lead,
    agent_console,
    choose_locale,
    close_opened_chats,
    free_slots,
    leads_call,
    open_chat,
    visitor_starts_chat,
)
from playwright.async_api import Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_MS = 30_000
# the notifier's first fact may wait for its consumer group to form and read the backlog
FIRST_MAIL_S = 90.0
# the first reply command may wait for chat's `<group>-inbound` consumer group to form
FIRST_COMMAND_MS = 60_000


async def mail_to(stack: ChatStack, address: str, *, count: int = 1) -> list[dict[str, Any]]:
    """The sink's messages to `address` once there are `count` of them (oldest first)."""
    deadline = time.monotonic() + FIRST_MAIL_S
    async with httpx.AsyncClient(base_url=stack.sink_url, timeout=10) as client:
        while True:
            found: list[dict[str, Any]] = (
                await client.get("/api/messages", params={"to": address})
            ).json()
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} e-mail(s) to {address} expected, got {found}")
            await asyncio.sleep(0.2)


async def reply_by_email(stack: ChatStack, letter: dict[str, Any], sender: str, text: str) -> None:
    """What a visitor's mail program does: a reply to `letter` (its Reply-To, its threading
    headers, the quoted original below), delivered over SMTP to the stack's mail server."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = letter["reply_to"][0]
    reply["Subject"] = f"Re: {letter['subject']}"
    reply["In-Reply-To"] = letter["message_id"]
    reply["References"] = letter["message_id"]
    quoted = "\n".join(f"> {line}" for line in (letter["text"] or "").splitlines())
    reply.set_content(f"{text}\n\nOn Monday, the shop wrote:\n{quoted}\n")
    await aiosmtplib.send(reply, hostname="127.0.0.1", port=stack.sink_smtp_port, timeout=15)


async def chat_with_an_address(
    anna: Page, new_context: Any, stack: ChatStack, uid: str
) -> tuple[str, str]:
    """A visitor chats with Anna and leaves an address; Anna answers and closes the chat
    (the transcript goes out). The conversation's id and the visitor's address."""
    await free_slots(anna)
    address = f"buyer-{uid}@example.com"
    visitor = await visitor_starts_chat(
        await new_context(), stack, f"Do you have the tent in green? ({uid})"
    )
    await expect(visitor.get_by_test_id("beckon-agent-name").last).to_have_text(
        "Anna Virtanen", timeout=WAIT_MS
    )
    await visitor.get_by_test_id("beckon-email-input").fill(address)
    await visitor.get_by_test_id("beckon-email-send").click()
    cid = await open_chat(anna, uid)
    await expect(anna.get_by_test_id("conversation-email")).to_have_text(address, timeout=WAIT_MS)
    await anna.get_by_test_id("reply-input").fill(f"Yes, two left in green. ({uid})")
    await anna.get_by_test_id("reply-input").press("Enter")
    await expect(
        anna.locator('[data-testid="message"][data-author="agent"]').filter(has_text=uid)
    ).to_have_count(1, timeout=WAIT_MS)
    await expect(
        visitor.locator('[data-testid="beckon-message"][data-author="agent"]').filter(has_text=uid)
    ).to_have_count(1, timeout=WAIT_MS)
    await anna.get_by_test_id("close-conversation").click()
    await expect(anna.get_by_test_id("conversation-status")).to_have_attribute(
        "data-status", "closed", timeout=WAIT_MS
    )
    return cid, address


async def test_a_reply_by_email_lands_in_the_conversation_and_the_agent_sees_it(
    chat_stack: ChatStack, new_context: Any
) -> None:
    uid = uuid.uuid4().hex[:8]
    anna = await agent_console(await new_context(), chat_stack)
    cid, address = await chat_with_an_address(anna, new_context, chat_stack, uid)

    [transcript] = await mail_to(chat_stack, address)
    assert uid in transcript["text"]
    [reply_to] = transcript["reply_to"]
    assert reply_to.endswith(f"@{chat_stack.reply_domain}")

    # Anna still has the closed conversation in front of her
    assert await anna.get_by_test_id("conversation").get_attribute("data-conversation-id") == cid
    text = f"Great, I'll pick it up on Friday. ({uid})"
    await reply_by_email(chat_stack, transcript, address, text)

    emailed = anna.locator('[data-testid="message"][data-author="visitor"]').filter(has_text=text)
    await expect(emailed).to_have_count(1, timeout=FIRST_COMMAND_MS)
    await expect(emailed.get_by_test_id("message-email-badge")).to_have_text("by e-mail")
    await expect(emailed).not_to_contain_text("the shop wrote")  # the quoted history is cut
    # the reply reopened the chat (back to the team's queue, or to Anna): close it again
    await free_slots(anna)


async def test_the_delivery_log_shows_the_transcript_sent_and_resend_adds_an_entry(
    chat_stack: ChatStack, new_context: Any
) -> None:
    uid = uuid.uuid4().hex[:8]
    anna = await agent_console(await new_context(), chat_stack)
    _cid, address = await chat_with_an_address(anna, new_context, chat_stack, uid)
    await mail_to(chat_stack, address)

    await anna.get_by_test_id("tab-emailadmin").click()
    await expect(anna.get_by_test_id("email-admin-body")).to_have_attribute("data-section", "log")
    await anna.get_by_test_id("email-log-recipient").fill(address)
    await anna.get_by_test_id("email-log-refresh").click()
    # the transcript, sent; the "unread answers" e-mail Anna's answer scheduled was cancelled
    # by it (the transcript says it all)
    rows = anna.locator('[data-testid="email-log-row"][data-template="transcript"]')
    await expect(rows).to_have_count(1, timeout=WAIT_MS)
    await expect(rows.get_by_test_id("email-status")).to_have_text("Sent")
    unread = anna.locator('[data-testid="email-log-row"][data-template="unread_messages"]')
    await expect(unread.get_by_test_id("email-status")).to_have_text("Cancelled")

    await rows.click()
    detail = anna.get_by_test_id("email-detail")
    tries = detail.get_by_test_id("email-try")
    await expect(tries).to_have_count(1, timeout=WAIT_MS)
    await expect(tries).to_have_attribute("data-outcome", "sent")
    await expect(tries).to_contain_text("SMTP 250")

    await detail.get_by_test_id("email-resend").click()
    await expect(detail.get_by_test_id("email-resend-result")).to_contain_text(
        "Sent again", timeout=WAIT_MS
    )
    await expect(rows).to_have_count(2, timeout=WAIT_MS)
    # the second copy arrives, and the log says so once the sink has it
    await mail_to(chat_stack, address, count=2)
    await anna.get_by_test_id("email-log-refresh").click()
    await expect(rows.get_by_test_id("email-status")).to_have_text(["Sent", "Sent"])

    # in Finnish too
    await choose_locale(anna, "fi")
    await expect(anna.get_by_test_id("email-tab-log")).to_have_text("Lähetysloki")
    await choose_locale(anna, "en")


async def test_email_settings_are_saved_and_read_back_with_errors_at_their_fields(
    chat_stack: ChatStack, new_context: Any
) -> None:
    anna = await agent_console(await new_context(), chat_stack)
    await anna.get_by_test_id("tab-emailadmin").click()
    await anna.get_by_test_id("email-tab-settings").click()
    settings = anna.get_by_test_id("email-settings")
    await expect(settings).to_be_visible(timeout=WAIT_MS)

    await anna.get_by_test_id("email-from-name").fill("Ridgeline Outfitters")
    await anna.get_by_test_id("email-from-address").fill("not an address")
    sales = anna.locator('[data-testid="email-inbox"][data-team="sales"]')
    await sales.fill("sales@ridgeline.test\nnot-an-address")
    await anna.get_by_test_id("email-settings-save").click()
    slot = '[data-testid="email-settings-field-error"][data-field="{}"]'
    from_error = anna.locator(slot.format("from_address"))
    await expect(from_error.get_by_test_id("email-settings-problem")).to_have_count(
        1, timeout=WAIT_MS
    )
    sales_error = anna.locator(slot.format("team_inboxes.sales"))
    await expect(sales_error.get_by_test_id("email-settings-problem")).to_have_attribute(
        "data-loc", "team_inboxes.sales.1"
    )

    await anna.get_by_test_id("email-from-address").fill("hello@ridgeline.test")
    await sales.fill("Sales@Ridgeline.test, team@ridgeline.test")
    # the stack's own reply domain: the sink hands replies for it to the notifier
    await anna.get_by_test_id("email-reply-domain").fill(chat_stack.reply_domain)
    await anna.get_by_test_id("email-unread-after").fill("120")
    await anna.get_by_test_id("email-settings-save").click()
    await expect(anna.get_by_test_id("email-settings-result")).to_have_text(
        "Saved.", timeout=WAIT_MS
    )
    await expect(anna.get_by_test_id("email-settings-problem")).to_have_count(0)

    # read back from the server in a fresh console
    await anna.reload()
    await anna.get_by_test_id("tab-emailadmin").click()
    await anna.get_by_test_id("email-tab-settings").click()
    await expect(anna.get_by_test_id("email-from-name")).to_have_value(
        "Ridgeline Outfitters", timeout=WAIT_MS
    )
    await expect(anna.get_by_test_id("email-from-address")).to_have_value("hello@ridgeline.test")
    await expect(anna.get_by_test_id("email-reply-domain")).to_have_value(chat_stack.reply_domain)
    await expect(anna.get_by_test_id("email-unread-after")).to_have_value("120")
    await expect(anna.get_by_test_id("email-transcripts")).to_be_checked()
    await expect(sales).to_have_value("sales@ridgeline.test\nteam@ridgeline.test")


async def test_each_template_previews_in_english_and_finnish(
    chat_stack: ChatStack, new_context: Any
) -> None:
    anna = await agent_console(await new_context(), chat_stack)
    await anna.get_by_test_id("tab-emailadmin").click()
    await anna.get_by_test_id("email-tab-templates").click()
    previews = anna.get_by_test_id("email-preview")
    await expect(previews).to_have_count(2, timeout=WAIT_MS)
    english = anna.locator('[data-testid="email-preview"][data-language="en"]')
    finnish = anna.locator('[data-testid="email-preview"][data-language="fi"]')
    # the transcript first: subject, plain text and HTML in each language
    await expect(english.get_by_test_id("email-preview-subject")).to_contain_text(
        "Your conversation", timeout=WAIT_MS
    )
    await expect(finnish.get_by_test_id("email-preview-subject")).to_contain_text(
        "Keskustelusi kanssamme", timeout=WAIT_MS
    )
    await expect(english.get_by_test_id("email-preview-text")).to_contain_text(
        "Thank you for chatting with us"
    )
    await expect(finnish.get_by_test_id("email-preview-text")).to_contain_text(
        "kiitos keskustelusta"
    )
    # the HTML part in a frame where nothing runs, its text readable
    frame = finnish.get_by_test_id("email-preview-html")
    assert await frame.get_attribute("sandbox") == ""
    await expect(frame.content_frame.locator("body")).to_contain_text("kiitos keskustelusta")
    # as the reader sees it: the e-mail's inlined styles apply (the notifier's page has its own
    # CSP; the console's would refuse them), the site's colour on its header
    painted = frame.content_frame.locator("[style*='background']").first
    colour = await painted.evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour

    # every template the notifier has is offered, each in both languages
    picker = anna.get_by_test_id("email-template")
    names = await picker.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert {"transcript", "offline_receipt", "unread_messages", "lead_assigned"} <= set(names)
    await picker.select_option("offline_receipt")
    await expect(finnish.get_by_test_id("email-preview-subject")).to_contain_text(
        "Saimme viestisi", timeout=WAIT_MS
    )
    await expect(english.get_by_test_id("email-preview-subject")).to_contain_text(
        "We got your message"
    )


async def widget_offline_message(stack: ChatStack, visitor_id: str, address: str, text: str) -> str:
    """A visitor leaves a message through the widget's offline form (its API); its id."""
    async with httpx.AsyncClient(base_url=stack.chat_url, timeout=15) as client:
        origin = {"Origin": stack.store_url}
        session = await client.post(
            "/v1/widget/session",
            json={"site_key": stack.site_key, "visitor_id": visitor_id, "lang": "fi"},
            headers=origin,
        )
        assert session.status_code == 200, session.text
        left = await client.post(
            "/v1/widget/offline",
            json={"email": address, "text": text, "name": "Liisa", "language": "fi"},
            headers={**origin, "Authorization": f"Bearer {session.json()['token']}"},
        )
        assert left.status_code == 201, left.text
    return str(left.json()["conversation"]["id"])


async def test_the_offline_inbox_lists_a_message_and_opens_it_to_answer(
    chat_stack: ChatStack, new_context: Any
) -> None:
    uid = uuid.uuid4().hex[:8]
    text = f"Soittakaa minulle teltasta. ({uid})"
    cid = await widget_offline_message(
        chat_stack, f"v-offline-{uid}", f"liisa-{uid}@example.com", text
    )
    # Ben, an agent (not an admin): the inbox is every agent's. Away: an offline message is
    # answered without taking chats (and the other tests' chats keep going to Anna)
    ben = await agent_console(
        await new_context(), chat_stack, chat_stack.second_agent_email, status="away"
    )
    await expect(ben.get_by_test_id("tab-emailadmin")).to_have_count(0)
    await ben.get_by_test_id("tab-offline").click()
    row = ben.locator(f'[data-testid="offline-row"][data-conversation="{cid}"]')
    await expect(row).to_have_count(1, timeout=FIRST_MAIL_S * 1000)
    await expect(row).to_contain_text("Liisa")
    await expect(row).to_contain_text(f"liisa-{uid}@example.com")
    await expect(row.get_by_test_id("offline-text")).to_have_text(text)
    await expect(row.get_by_test_id("offline-state")).to_have_text("Not answered")

    await row.click()
    conversation = ben.get_by_test_id("conversation")
    await expect(conversation).to_have_attribute("data-conversation-id", cid, timeout=WAIT_MS)
    await expect(conversation.get_by_test_id("message")).to_contain_text([text], timeout=WAIT_MS)
    answer = f"Soitamme huomenna. ({uid})"
    await ben.get_by_test_id("reply-input").fill(answer)
    await ben.get_by_test_id("reply-input").press("Enter")
    await expect(
        conversation.locator('[data-testid="message"][data-author="agent"]').filter(has_text=answer)
    ).to_have_count(1, timeout=WAIT_MS)

    await ben.get_by_test_id("tab-offline").click()
    await expect(row.get_by_test_id("offline-state")).to_have_text("Answered", timeout=WAIT_MS)
    await expect(row).to_have_attribute("data-answered", "true")


async def test_a_deep_link_opens_its_conversation(chat_stack: ChatStack, new_context: Any) -> None:
    uid = uuid.uuid4().hex[:8]
    cid = await widget_offline_message(
        chat_stack, f"v-link-{uid}", f"link-{uid}@example.com", f"Link me ({uid})"
    )
    context = await new_context()
    anna = await agent_console(context, chat_stack)
    link = f"{chat_stack.chat_url}/console/#conversation={cid}"
    # followed in a console that is open (the hash changes)
    await anna.goto(link)
    conversation = anna.get_by_test_id("conversation")
    await expect(conversation).to_have_attribute("data-conversation-id", cid, timeout=WAIT_MS)
    await expect(conversation.get_by_test_id("message")).to_contain_text([f"Link me ({uid})"])
    await expect(anna).to_have_url(f"{chat_stack.chat_url}/console/")  # spent: again works
    # and from an e-mail, in a new tab (the console loads with the hash)
    fresh = await context.new_page()
    await fresh.goto(link)
    await expect(fresh.get_by_test_id("conversation")).to_have_attribute(
        "data-conversation-id", cid, timeout=WAIT_MS
    )


async def test_a_deep_link_opens_its_lead(chat_stack: ChatStack, new_context: Any) -> None:
    anna = await agent_console(await new_context(), chat_stack)
    try:
        visitor_id, conversation_id = await a_marked_lead(anna, chat_stack, "ready_to_buy")
        lead_id = ""
        deadline = time.monotonic() + FIRST_MAIL_S
        while not lead_id:
            page = await leads_call(anna, "GET", "?scope=all&limit=200")
            lead_id = next(
                (x["lead_id"] for x in page["leads"] if x["visitor_id"] == visitor_id), ""
            )
            assert lead_id or time.monotonic() < deadline, "the lead was never captured"
            await asyncio.sleep(0.2)
        await anna.goto(f"{chat_stack.chat_url}/console/#lead={lead_id}")
        detail = anna.get_by_test_id("lead-detail")
        await expect(detail).to_be_visible(timeout=WAIT_MS)
        await expect(detail.get_by_test_id("lead-transcript")).to_have_attribute(
            "data-conversation", conversation_id, timeout=WAIT_MS
        )
        await expect(anna.get_by_test_id("tab-leads")).to_have_attribute("aria-selected", "true")
    finally:
        await close_opened_chats(chat_stack)
