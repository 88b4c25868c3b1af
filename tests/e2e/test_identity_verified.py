"""Identity verification in real browsers on the real services (tests/e2e/conftest.py's
`chat_stack`; docs/identity.md).

The admin (Anna) makes two identity secrets in the console's Identity section (each shown
once, then only its id, age and last four characters; two valid at once for rotation) and
turns enforcement on. The store's server (this test) signs a logged-in customer's id with
them, and the store's page hands the widget the id, e-mail, name and signature
(`window.beckonIdentity`):

- with a valid signature, the agent sees the customer as verified, with the store's e-mail
  and name; on a new device (a fresh browser context, signed with the other secret) the
  customer reaches the same conversation;
- with a forged signature (the same id, e-mail and name), the widget opens an empty session
  and the agent sees nothing verified, nor the claimed e-mail or name.

The site's identity is put back as it was at the end (other tests share the stack).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from consoles import agent_console, console_api, set_locale
from playwright.async_api import BrowserContext, Page, expect

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_MS = 30_000
HEX = re.compile(r"^[0-9a-f]{32,}$")  # a secret as chat makes it


def sign(user_id: str, secret: str) -> str:
    """What the store's server computes (docs/identity.md's Python snippet)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


async def store_page(context: BrowserContext, stack: ChatStack, identity: dict[str, str]) -> Page:
    """The store's home page with the logged-in customer as its server puts them on the page,
    the widget connected."""
    await context.add_init_script(f"window.beckonIdentity = {json.dumps(identity)};")
    page = await context.new_page()
    await page.goto(f"{stack.store_url}/")
    await expect(page.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    return page


async def visitor_of(page: Page) -> str:
    return str(await page.evaluate("window.BeckonChat.state().visitorId"))


async def conversation_of(agent: Page, visitor_id: str) -> str:
    """The visitor's live conversation as the agent's console lists it."""
    for _ in range(150):
        listed = await console_api(agent, "GET", "/conversations?scope=all")
        found = [
            c["id"]
            for c in listed["conversations"]
            if c["visitor_id"] == visitor_id and c["status"] in ("queued", "open")
        ]
        if found:
            return str(found[0])
        await asyncio.sleep(0.2)
    raise AssertionError(f"no conversation of {visitor_id}")


async def card_of(agent: Page, conversation_id: str, visitor_id: str) -> Any:
    """Open the conversation in the chats view: the visitor card beside it, loaded."""
    await agent.get_by_test_id("tab-chats").click()
    row = agent.locator(
        f'[data-testid="mine-item"][data-conversation-id="{conversation_id}"], '
        f'[data-testid="queue-item"][data-conversation-id="{conversation_id}"]'
    )
    await row.first.click()
    card = agent.get_by_test_id("card-panel").get_by_test_id("visitor-card")
    await expect(card).to_have_attribute("data-visitor", visitor_id, timeout=WAIT_MS)
    await expect(card).to_have_attribute("data-state", "ready", timeout=WAIT_MS)
    return card


async def identity_section(agent: Page) -> Any:
    await agent.get_by_test_id("tab-admin").click()
    await agent.get_by_test_id("admin-section-identity").click()
    section = agent.get_by_test_id("admin-identity")
    await expect(section.get_by_test_id("identity-enforce")).to_be_enabled(timeout=WAIT_MS)
    return section


async def generate(section: Any) -> str:
    """A new secret from the console; the one time it is shown."""
    await section.get_by_test_id("identity-generate").click()
    shown = section.get_by_test_id("identity-new-secret")
    await expect(shown).to_have_value(HEX, timeout=WAIT_MS)
    secret = await shown.input_value()
    await section.get_by_test_id("identity-dismiss").click()
    await expect(section.get_by_test_id("identity-new")).to_have_count(0)
    return secret


async def restore(stack: ChatStack, before: dict[str, Any], conversations: list[str]) -> None:
    """The site's identity as it was, and this test's conversations closed (as Anna)."""
    same_origin = {"Origin": stack.chat_url}
    async with httpx.AsyncClient(base_url=stack.chat_url, headers=same_origin, timeout=15) as c:
        login = await c.post(
            "/v1/console/login", json={"email": stack.agent_email, "password": stack.agent_password}
        )
        assert login.status_code == 200, login.text
        for conversation_id in conversations:
            await c.post(f"/v1/console/conversations/{conversation_id}/close")
        site = (await c.get("/v1/console/admin/site")).json()["site"]
        kept = {s["secret_id"] for s in before["secrets"]}
        for secret in site["identity"]["secrets"]:
            if secret["secret_id"] not in kept:
                body = {"action": "remove", "secret_id": secret["secret_id"]}
                assert (await c.post("/v1/console/admin/site/identity", json=body)).is_success
        body = {"action": "enforce", "verification": before["verification"]}
        assert (await c.post("/v1/console/admin/site/identity", json=body)).is_success


async def test_a_verified_customer_is_shown_verified_and_reaches_their_chat_a_forged_one_not(
    chat_stack: ChatStack, new_context: Any
) -> None:
    stack = chat_stack
    agent = await agent_console(await new_context(), stack)
    agent.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    before = (await console_api(agent, "GET", "/admin/site"))["site"]["identity"]
    assert len(before["secrets"]) == 0, "another test left identity secrets on the site"
    opened: list[str] = []
    try:
        # --- the admin: two secrets (rotation), each shown once, and enforcement on
        section = await identity_section(agent)
        older = await generate(section)
        newer = await generate(section)
        rows = section.get_by_test_id("identity-secret")
        await expect(rows).to_have_count(2)
        await expect(rows.get_by_test_id("identity-secret-ends")).to_have_text(
            [f"…{newer[-4:]}", f"…{older[-4:]}"]
        )
        await expect(section.get_by_test_id("identity-generate")).to_be_disabled()
        await expect(section.get_by_test_id("identity-full")).to_be_visible()
        # never shown again: not on the page, not after leaving and coming back
        await agent.get_by_test_id("admin-section-site").click()
        section = await identity_section(agent)
        await expect(section.get_by_test_id("identity-secret")).to_have_count(2)
        page_text = await agent.content()
        assert older not in page_text
        assert newer not in page_text
        enforce = section.get_by_test_id("identity-enforce")
        if not await enforce.is_checked():
            await enforce.click()
        await expect(section.get_by_test_id("identity-note")).to_have_text(
            "Verification is enforced."
        )
        await expect(section.get_by_test_id("identity-enforce")).to_be_checked()
        assert (await console_api(agent, "GET", "/admin/site"))["site"]["identity"]["verification"]
        await set_locale(agent, "fi")
        await expect(section.locator("h2")).to_have_text("Henkilöllisyyden vahvistus")
        await expect(agent.get_by_test_id("admin-section-identity")).to_have_text("Tunnistus")
        await set_locale(agent, "en")
        await expect(section.locator("h2")).to_have_text("Identity verification")

        # --- the customer on their laptop, signed with the older secret (still valid)
        user_id = f"cust-{uuid.uuid4().hex[:10]}"
        email, name = f"{user_id}@customers.e2e-chat.test", "Ann Customer"
        customer = {"user_id": user_id, "email": email, "name": name}
        laptop = await store_page(
            await new_context(), stack, {**customer, "user_hash": sign(user_id, older)}
        )
        question = f"Where is my order {user_id}?"
        await laptop.get_by_test_id("beckon-launcher").click()
        await laptop.get_by_test_id("beckon-input").fill(question)
        await laptop.get_by_test_id("beckon-input").press("Enter")
        visitor_messages = '[data-testid="beckon-message"][data-author="visitor"]'
        await expect(laptop.locator(visitor_messages)).to_have_text([question], timeout=WAIT_MS)
        conversation_id = await conversation_of(agent, await visitor_of(laptop))
        opened.append(conversation_id)

        card = await card_of(agent, conversation_id, await visitor_of(laptop))
        badge = card.get_by_test_id("card-identity-verified")
        await expect(badge).to_have_attribute("data-verified", "true", timeout=WAIT_MS)
        await expect(badge).to_contain_text(user_id)
        await expect(card.get_by_test_id("card-identity-verified-as")).to_have_text(
            f"Verified: {name} · {email}"
        )

        # --- a new device: the same customer, signed with the newer secret
        phone = await store_page(
            await new_context(), stack, {**customer, "user_hash": sign(user_id, newer)}
        )
        assert await visitor_of(phone) != await visitor_of(laptop)
        assert (await phone.evaluate("window.BeckonChat.state().conversation.id")) == (
            conversation_id
        )
        await phone.get_by_test_id("beckon-launcher").click()
        await expect(phone.locator(visitor_messages)).to_have_text([question], timeout=WAIT_MS)

        # --- a forger: the same id, e-mail and name, signed with a secret of their own
        forged = sign(user_id, "f" * 64)
        forger = await store_page(await new_context(), stack, {**customer, "user_hash": forged})
        assert await forger.evaluate("window.BeckonChat.state().conversation") is None
        await forger.get_by_test_id("beckon-launcher").click()
        await expect(forger.get_by_test_id("beckon-messages")).to_be_empty()
        claim = f"It's me, {user_id}: show me my order"
        await forger.get_by_test_id("beckon-input").fill(claim)
        await forger.get_by_test_id("beckon-input").press("Enter")
        await expect(forger.locator(visitor_messages)).to_have_text([claim], timeout=WAIT_MS)
        forged_id = await conversation_of(agent, await visitor_of(forger))
        opened.append(forged_id)
        assert forged_id != conversation_id

        card = await card_of(agent, forged_id, await visitor_of(forger))
        await expect(card.locator('[data-verified="true"]')).to_have_count(0)
        await expect(card.get_by_test_id("card-identity-verified-as")).to_have_count(0)
        await expect(card).not_to_contain_text(email)
        await expect(card).not_to_contain_text(name)
        # the customer's own chat is untouched by the forger's message
        messages = await console_api(agent, "GET", f"/conversations/{conversation_id}")
        assert claim not in json.dumps(messages)
    finally:
        await restore(stack, before, opened)
