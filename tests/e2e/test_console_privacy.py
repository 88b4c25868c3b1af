"""The console's privacy screen (static/console/privacy.js) in Chromium, on the real services
(tests/e2e/conftest.py's `chat_stack`: chat, leads, the notifier, triggers, an SMTP sink).

A visitor chats and leaves their address; Anna (the site's admin) answers, marks a lead and
closes the chat, so leads captures the lead and the notifier mails the transcript. In Admin →
Privacy, Anna exports the visitor by address: the downloaded file is one document with chat's,
leads' and the notifier's sections, each holding the visitor's data. She erases the visitor by
address: the request's row goes from in progress to erased on its own (the screen follows it)
with chat's counts. Once every service has done its part, an export by the same address finds
nothing anywhere.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from consoles import WAIT_MS, agent_console, console_api
from playwright.async_api import Page, expect

ChatStack = Any  # conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_S = 120.0  # leads' and the notifier's consumer groups form before their first records


async def until(what: str, check: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {WAIT_S:.0f} s for {what}")
        await asyncio.sleep(0.3)


async def visitor_leaves_address(stack: ChatStack, visitor_id: str, email: str, text: str) -> str:
    """Through the widget's API: the visitor writes, then leaves their address."""
    async with httpx.AsyncClient(base_url=stack.chat_url, timeout=15) as client:
        origin = {"Origin": stack.store_url}
        session = await client.post(
            "/v1/widget/session",
            json={"site_key": stack.site_key, "visitor_id": visitor_id},
            headers=origin,
        )
        assert session.status_code == 200, session.text
        auth = {**origin, "Authorization": f"Bearer {session.json()['token']}"}
        started = await client.post("/v1/widget/conversations", json={"text": text}, headers=auth)
        assert started.status_code in (200, 201), started.text
        left = await client.post("/v1/widget/email", json={"email": email}, headers=auth)
        assert left.status_code == 204, left.text
    return str(started.json()["conversation"]["id"])


async def export(page: Page, subjects: str) -> dict[str, Any]:
    """Export from the screen; the downloaded file's document."""
    await page.get_by_test_id("privacy-subjects").fill(subjects)
    async with page.expect_download() as downloading:
        async with page.expect_response(
            lambda answer: answer.url.endswith("/v1/privacy/export")
        ) as answered:
            await page.get_by_test_id("privacy-export").click()
        answer = await answered.value
        assert answer.status == 200, await answer.text()
    download = await downloading.value
    assert download.suggested_filename == "beckon-export.json"
    document: dict[str, Any] = json.loads(Path(str(await download.path())).read_text())
    return document


async def test_an_admin_exports_and_erases_a_visitor_on_the_privacy_screen(
    chat_stack: ChatStack, new_context: Any
) -> None:
    stack = chat_stack
    tag = uuid.uuid4().hex[:10]
    visitor_id = f"v-privacy-screen-{tag}"
    email = f"privacy.screen.{tag}@example.org"
    text = f"A quote for 12 tents, please ({tag})"
    db = await asyncpg.connect(stack.database_url)
    try:
        conversation_id = await visitor_leaves_address(stack, visitor_id, email, text)
        page = await agent_console(await new_context(accept_downloads=True), stack)

        # ---- Anna answers, marks a lead and closes: leads and the notifier hold the visitor --
        path = f"/conversations/{conversation_id}"
        held = await console_api(page, "GET", path)
        if held["conversation"]["status"] == "queued":
            await console_api(page, "POST", f"{path}/pickup")
        await console_api(page, "POST", f"{path}/messages", {"text": f"On its way ({tag})"})
        await console_api(page, "POST", f"{path}/lead", {"validation": "qualified"})
        await console_api(page, "POST", f"{path}/close")
        await until(
            "the lead",
            lambda: db.fetchval(
                "SELECT count(*) FROM leads.leads WHERE visitor_id = $1 AND email IS NOT NULL",
                visitor_id,
            ),
        )
        await until(
            "the transcript sent",
            lambda: db.fetchval(
                "SELECT count(*) FROM notifier.emails WHERE recipient = $1 AND status = 'sent'",
                email,
            ),
        )

        # ---- the export: one file, a section per service ---------------------------------
        # what the admin types before the screen's first load is not wiped by it
        loaded = asyncio.Event()

        async def after_typing(route: Any) -> None:
            await loaded.wait()
            await route.continue_()

        await page.route("**/v1/privacy/requests", after_typing)
        await page.get_by_test_id("tab-admin").click()
        await page.get_by_test_id("admin-section-privacy").click()
        typed = await page.get_by_test_id("privacy-subjects").element_handle(timeout=WAIT_MS)
        await typed.fill(email.upper())
        loaded.set()
        await typed.wait_for_element_state("hidden", timeout=WAIT_MS)  # the screen, loaded anew
        await page.unroute("**/v1/privacy/requests")
        await expect(page.get_by_test_id("privacy-subjects")).to_have_value(email.upper())
        document = await export(page, email.upper())
        await expect(page.get_by_test_id("privacy-note")).to_have_text("Exported.")
        assert (document["complete"], document["missing"]) == (True, [])
        assert document["subjects"] == {"visitor_ids": [], "emails": [email]}
        [conversation] = document["chat"]["conversations"]
        assert conversation["conversation_id"] == conversation_id
        assert text in [message["text"] for message in conversation["messages"]]
        assert document["chat"]["visitor_ids"] == [visitor_id]
        assert [lead["email"] for lead in document["leads"]["leads"]] == [email]
        assert document["leads"]["leads"][0]["visitor_id"] == visitor_id
        assert {mail["recipient"] for mail in document["notifier"]["emails"]} == {email}

        # ---- the erasure: confirmed, then followed on the screen until chat's part is done -
        confirmations: list[str] = []

        async def confirm(dialog: Any) -> None:
            confirmations.append(dialog.message)
            await dialog.accept()

        page.once("dialog", confirm)
        await page.get_by_test_id("privacy-subjects").fill(email)
        async with page.expect_response(
            lambda answer: answer.url.endswith("/v1/privacy/erasure")
        ) as asked:
            await page.get_by_test_id("privacy-erase").click()
        answer = await asked.value
        assert answer.status == 202
        request_id = (await answer.json())["request_id"]
        assert confirmations == [f"Erase everything held about {email}? This cannot be undone."]
        await expect(page.get_by_test_id("privacy-note")).to_have_text(
            "Erasure requested (1 visitors found in chat)."
        )
        row = page.locator(f'[data-testid="privacy-request"][data-request-id="{request_id}"]')
        await expect(row).to_be_visible()
        # no reload: the screen asks again while the request is in progress
        await expect(row).to_have_attribute("data-state", "erased", timeout=WAIT_MS)
        await expect(row.get_by_test_id("privacy-request-status")).to_have_text(
            re.compile(r"^Erased ")
        )
        counts = row.get_by_test_id("privacy-request-counts")
        await expect(counts).to_contain_text("1 conversation")
        await expect(counts).to_contain_text("1 visitor")
        await expect(counts).to_have_text(re.compile(r"\b([2-9]|\d{2,}) messages\b"))
        assert email not in (await row.inner_text())  # the list names no subject

        # ---- every service done: an export by the address finds nothing ------------------
        await until(
            "leads' and the notifier's parts",
            lambda: db.fetchval(
                """SELECT (SELECT count(*) FROM leads.leads WHERE visitor_id = $1)
                        + (SELECT count(*) FROM notifier.emails WHERE recipient = $2) = 0""",
                visitor_id,
                email,
            ),
        )
        after = await export(page, email)
        assert (after["complete"], after["missing"]) == (True, [])
        assert after["chat"]["visitor_ids"] == []
        assert after["chat"]["conversations"] == []
        assert after["leads"]["leads"] == []
        assert after["notifier"]["emails"] == []
    finally:
        await db.close()
