"""What the console's browser tests share: an agent logged in, and the triggers worker ready.

Imported by name from the e2e test files (pytest puts this folder on `sys.path`).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

import httpx
from playwright.async_api import BrowserContext, Page, expect

WAIT_MS = 30_000
ChatStack = Any  # conftest.py's dataclass (conftest is not importable by name)


async def agent_console(
    context: BrowserContext,
    stack: ChatStack,
    email: str | None = None,
    *,
    status: Literal["online", "away"] | None = "online",
    locale: str | None = "en",
) -> Page:
    """The console in a new page, logged in as `email` (Anna, the admin, by default), its
    socket connected; then the agent's status set, and the page's language (tests assert
    English text whatever another test saved as the agent's preference)."""
    page = await context.new_page()
    await page.goto(f"{stack.chat_url}/console/")
    await page.get_by_test_id("login-email").fill(email or stack.agent_email)
    await page.get_by_test_id("login-password").fill(stack.agent_password)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("agent-name")).not_to_be_empty(timeout=WAIT_MS)
    await expect(page.get_by_test_id("ws-status")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    if locale is not None:
        await set_locale(page, locale)
    if status is not None:
        await set_status(page, status)
    return page


# The console is ES modules: a test reaches its parts by importing them in the page, which
# gives the very instances the console runs (a module is evaluated once per URL).


async def console_api(page: Page, method: str, path: str, body: Any = None) -> Any:
    """A call in the console's own session (core/api.js: same origin, its cookie)."""
    return await page.evaluate(
        """async ([method, path, body]) => {
            const { api } = await import('/console/core/api.js');
            return api(method, path, body === null ? undefined : body);
        }""",
        [method, path, body],
    )


async def set_locale(page: Page, locale: str) -> None:
    """The page's language, as the language menu sets it but without saving it."""
    await page.evaluate(
        "async (locale) => (await import('/console/core/i18n.js')).i18n.set(locale)", locale
    )


async def choose_locale(page: Page, locale: str) -> None:
    """Pick a language in the top bar's menu and wait until the server saved it: two choices in
    a row are two requests, and the later must not be overtaken (the next test's console loads
    the agent's saved language)."""
    async with page.expect_response(
        lambda answer: answer.url.endswith("/me/preferences") and answer.request.method == "POST"
    ) as saved:
        await page.get_by_test_id("locale-select").select_option(locale)
    assert (await saved.value).ok


async def agent_id(page: Page) -> str:
    """The logged-in agent's id (core/me.js)."""
    return str(await page.evaluate("async () => (await import('/console/core/me.js')).me.agent.id"))


async def set_status(page: Page, status: str) -> None:
    """The toggle goes offline/away -> online -> away; click until the status is reached."""
    toggle = page.get_by_test_id("status-toggle")
    for _ in range(2):
        await expect(toggle).to_be_enabled(timeout=WAIT_MS)
        current = await toggle.get_attribute("data-status")
        if current == status:
            break
        await toggle.click()
        await expect(toggle).not_to_have_attribute("data-status", str(current), timeout=WAIT_MS)
    await expect(toggle).to_have_attribute("data-status", status, timeout=WAIT_MS)


async def triggers_knows(stack: ChatStack, rule_id: str | None = None) -> dict[str, Any]:
    """Until the worker runs the rule (the stack's own by default) and sees a free slot in
    sales: from then on, a visitor who meets the rule is invited (nothing left to timing)."""
    wanted = rule_id or stack.rule_id
    site: dict[str, Any] = {}
    auth = {"Authorization": f"Bearer {stack.triggers_token}"}
    async with httpx.AsyncClient(base_url=stack.triggers_url, headers=auth, timeout=5) as client:
        for _ in range(300):
            site = (await client.get(f"/v1/sites/{stack.site_id}")).json()
            if wanted in site["rules"] and site["teams"].get("sales", {}).get("free_slots", 0):
                return site
            await asyncio.sleep(0.2)
    raise AssertionError(f"triggers never applied {wanted} or saw an agent online: {site}")


# ---- a chat in the chats view -----------------------------------------------------------------

PRODUCT = "/p/trail-runner-x"


async def free_slots(page: Page) -> None:
    """Close what earlier tests left open for this agent, so a new chat can reach them."""
    await page.evaluate(
        """async () => {
            const mine = await (await fetch('/v1/console/conversations?scope=mine')).json();
            for (const c of mine.conversations) {
                await fetch(`/v1/console/conversations/${c.id}/close`, {method: 'POST'});
            }
        }"""
    )


async def visitor_starts_chat(context: BrowserContext, stack: ChatStack, text: str) -> Page:
    """A visitor looks at a product, opens the widget and writes."""
    page = await context.new_page()
    await page.goto(f"{stack.store_url}{PRODUCT}")
    await expect(page.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await page.get_by_test_id("beckon-launcher").click()
    await page.get_by_test_id("beckon-input").fill(text)
    await page.get_by_test_id("beckon-input").press("Enter")
    await expect(
        page.locator('[data-testid="beckon-message"][data-author="visitor"]')
    ).to_have_text([text], timeout=WAIT_MS)
    return page


async def open_chat(page: Page, text: str) -> str:
    """Open the agent's own chat whose row shows `text`; its conversation id."""
    item = page.get_by_test_id("mine-item").filter(has_text=text)
    await expect(item).to_have_count(1, timeout=WAIT_MS)
    await item.click()
    await expect(page.get_by_test_id("conversation")).to_have_attribute(
        "data-conversation-id", str(await item.get_attribute("data-conversation-id"))
    )
    return str(await item.get_attribute("data-conversation-id"))


# ---- the leads views ---------------------------------------------------------------------------

# the chats a_marked_lead opened: a test module closes them after each test
# (close_opened_chats), so the other console tests (sharing the stack and Anna) never find
# Anna holding them
OPENED_CHATS: list[str] = []


async def close_opened_chats(stack: ChatStack) -> None:
    """Close, as Anna, every chat a_marked_lead opened."""
    if not OPENED_CHATS:
        return
    same_origin = {"Origin": stack.chat_url}
    async with httpx.AsyncClient(base_url=stack.chat_url, timeout=15) as client:
        login = await client.post(
            "/v1/console/login",
            json={"email": stack.agent_email, "password": stack.agent_password},
            headers=same_origin,
        )
        assert login.status_code == 200, login.text
        while OPENED_CHATS:
            conversation_id = OPENED_CHATS.pop()
            closed = await client.post(
                f"/v1/console/conversations/{conversation_id}/close", headers=same_origin
            )
            assert closed.status_code == 200, closed.text


async def widget_chat(stack: ChatStack, visitor_id: str, text: str) -> str:
    """A visitor starts a chat through the widget API, as the widget does; its id."""
    async with httpx.AsyncClient(base_url=stack.chat_url, timeout=15) as client:
        origin = {"Origin": stack.store_url}
        session = await client.post(
            "/v1/widget/session",
            json={"site_key": stack.site_key, "visitor_id": visitor_id},
            headers=origin,
        )
        assert session.status_code == 200, session.text
        started = await client.post(
            "/v1/widget/conversations",
            json={"text": text},
            headers={**origin, "Authorization": f"Bearer {session.json()['token']}"},
        )
        assert started.status_code in (200, 201), started.text
    return str(started.json()["conversation"]["id"])


async def a_marked_lead(page: Page, stack: ChatStack, validation: str) -> tuple[str, str]:
    """A visitor's chat, marked as a lead in Anna's console session: (visitor, conversation)."""
    visitor_id = f"v-leads-{uuid.uuid4().hex[:12]}"
    conversation_id = await widget_chat(stack, visitor_id, "Can someone call me about the tent?")
    OPENED_CHATS.append(conversation_id)
    await console_api(
        page,
        "POST",
        f"/conversations/{conversation_id}/lead",
        {"validation": validation, "note": "wants a call"},
    )
    return visitor_id, conversation_id


async def leads_call(page: Page, method: str, path: str, body: Any = None) -> Any:
    """A call to the leads API from the console's page, as the leads views make it."""
    return await page.evaluate(
        """async ([method, path, body]) => {
            const { leadsApi } = await import('/console/leads/api.js');
            return leadsApi(method, path, body === null ? undefined : body).catch((e) => {
                throw new Error(`${e.status} ${e.code}: ${e.detail} ${JSON.stringify(e.body)}`);
            });
        }""",
        [method, path, body],
    )
