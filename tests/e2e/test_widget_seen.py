"""The widget tells chat how far the visitor has seen the conversation only while its panel
is open on a visible page (chat publishes `conversation.seen`, and the notifier e-mails only
what the visitor has not seen), in Chromium on a real chat instance.

The page is a store page at the site's origin (a loopback server of the test's own); the
widget comes from chat. A hidden page is played by giving `document.visibilityState` and
`document.hidden` the values a background tab has and firing `visibilitychange`, as the
browser would (headless Chromium keeps every page visible).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from beckon_contracts.topics import CHAT_EVENTS
from beckon_devstack.ports import free_port
from chat_testing import (
    AgentClient,
    ChatProcess,
    SiteSpec,
    add_site,
    eventually,
    read_events,
    scratch_database,
    site_spec,
    start_chat,
    stop_chat,
    unique,
)
from playwright.async_api import Page, expect
from store_pages import widget_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

WAIT_MS = 30_000
HIDE = """hidden => {
  Object.defineProperty(document, 'visibilityState', {configurable: true,
    get: () => (hidden ? 'hidden' : 'visible')});
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


@pytest.fixture
async def widget_chat(
    database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[tuple[ChatProcess, SiteSpec, asyncpg.Pool]]:
    """One chat instance on a database of its own, with a site of one agent."""
    async with scratch_database(database_url, "chat_seen") as (url, pool):
        port = free_port()
        site = await add_site(
            url,
            site_spec(
                unique("site"),
                agents=[("ann", ["sales"], 5)],
                origin=f"http://127.0.0.1:{port}",
                settings={"email_transcripts": True, "language": "auto"},
            ),
        )
        instance = await start_chat(
            "seen", database_url=url, bootstrap=kafka_bootstrap, log_dir=tmp_path
        )
        try:
            with widget_store(instance.url, site.site_key, port):
                yield instance, site, pool
        finally:
            stop_chat(instance)


async def _widget(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("window.BeckonChat.state()")
    return state


async def test_the_widget_reports_seen_only_while_open_on_a_visible_page(
    widget_chat: tuple[ChatProcess, SiteSpec, asyncpg.Pool], new_context: Any, kafka_bootstrap: str
) -> None:
    chat, site, pool = widget_chat
    agent = AgentClient(chat.url, site.agent("ann"))
    try:
        await agent.login()
        await agent.status("online")
        page = await (await new_context()).new_page()
        await page.goto(f"{site.origin}/")
        await expect(page.locator("#beckon-chat")).to_have_attribute(
            "data-state", "connected", timeout=WAIT_MS
        )

        async def seen_seq() -> int:
            value: int = await pool.fetchval(
                "SELECT seen_seq FROM chat.conversations WHERE site_id = $1", site.site_id
            )
            return value

        async def agent_says(text: str, seq: int) -> None:
            answer = await agent.post(f"/conversations/{cid}/messages", {"text": text})
            assert answer.status_code == 201, answer.text
            await page.wait_for_function(f"window.BeckonChat.state().lastSeq === {seq}")

        # open, visible: the visitor writes (seq 1), the agent answers (seq 2), seen up to 2
        await page.get_by_test_id("beckon-launcher").click()
        await page.get_by_test_id("beckon-input").fill("Do you ship to Oulu?")
        await page.get_by_test_id("beckon-input").press("Enter")
        await page.wait_for_function("(window.BeckonChat.state().conversation || {}).status")
        cid = (await _widget(page))["conversation"]["id"]
        await page.wait_for_function("window.BeckonChat.state().connected")
        # the visitor's own message counts as seen (1); waited for, so that the agent's
        # answer cannot come first and make 2 the first report (a race CI once lost)
        await eventually(lambda: _equals(seen_seq, 1), what="seen up to 1")
        await agent_says("Yes, in two days", 2)
        await eventually(lambda: _equals(seen_seq, 2), what="seen up to 2")

        # hidden: the agent's next message (3) and the visitor's own (4) are not reported
        await page.evaluate(HIDE, True)
        await agent_says("Anything else?", 3)
        await page.get_by_test_id("beckon-input").fill("One more thing")
        await page.get_by_test_id("beckon-input").press("Enter")
        await eventually(lambda: _has_message(pool, cid, 4), what="the visitor's message stored")
        # the socket's frames are handled in order: a seen frame sent while hidden would
        # have been handled before the message that followed it
        assert await seen_seq() == 2
        await page.wait_for_function("window.BeckonChat.state().lastSeq === 4")
        assert (await _widget(page))["seen"] == 2

        # visible again: up to 4
        await page.evaluate(HIDE, False)
        await eventually(lambda: _equals(seen_seq, 4), what="seen up to 4")

        # the panel closed: the agent's message (5) is not reported until it opens
        await page.get_by_test_id("beckon-panel").locator('[data-action="close"]').click()
        await agent_says("Bye!", 5)
        assert (await _widget(page))["seen"] == 4
        await page.get_by_test_id("beckon-launcher").click()
        await eventually(lambda: _equals(seen_seq, 5), what="seen up to 5")

        events = await read_events(
            kafka_bootstrap,
            CHAT_EVENTS.name,
            key=cid,
            match=lambda e: e.type == "conversation.seen",
            until=lambda found: any(e.payload["up_to_seq"] == 5 for e in found),
        )
        # 1: the visitor's own first message (waited for above), then 2, 4 and 5; never 3
        assert [e.payload["up_to_seq"] for e in events] == [1, 2, 4, 5]
        # and the widget's language came along with the conversation it started
        started = await read_events(
            kafka_bootstrap,
            CHAT_EVENTS.name,
            key=cid,
            match=lambda e: e.type == "conversation.started",
            until=bool,
        )
        assert started[0].payload["language"] == "en"
    finally:
        await agent.aclose()


async def _equals(read: Any, wanted: int) -> bool:
    return bool(await read() == wanted)


async def _has_message(pool: asyncpg.Pool, cid: str, seq: int) -> bool:
    found = await pool.fetchval(
        "SELECT 1 FROM chat.messages WHERE conversation_id = $1::uuid AND seq = $2", cid, seq
    )
    return found is not None


@pytest.mark.parametrize(
    ("locale", "language", "ask"),
    [
        (
            "en-GB",
            "en",
            "we will send a copy of this conversation (a transcript) there, and you can reply",
        ),
        ("fi-FI", "fi", "lähetämme sinne kopion tästä keskustelusta, ja voit vastata siihen"),
    ],
)
async def test_the_email_ask_promises_a_transcript_to_reply_to_in_the_widgets_language(
    widget_chat: tuple[ChatProcess, SiteSpec, asyncpg.Pool],
    new_context: Any,
    kafka_bootstrap: str,
    locale: str,
    language: str,
    ask: str,
) -> None:
    chat, site, _ = widget_chat
    agent = AgentClient(chat.url, site.agent("ann"))
    try:
        await agent.login()
        await agent.status("online")
        page = await (await new_context(locale=locale)).new_page()
        await page.goto(f"{site.origin}/")
        await expect(page.locator("#beckon-chat")).to_have_attribute(
            "data-state", "connected", timeout=WAIT_MS
        )
        await page.get_by_test_id("beckon-launcher").click()
        await page.get_by_test_id("beckon-input").fill("Hello")
        await page.get_by_test_id("beckon-input").press("Enter")
        mail = page.get_by_test_id("beckon-email")
        await expect(mail).to_be_visible(timeout=WAIT_MS)  # once the conversation exists
        await expect(mail).to_have_attribute("data-kind", "transcript")
        await expect(mail).to_contain_text(ask)
        cid = (await _widget(page))["conversation"]["id"]
    finally:
        await agent.aclose()
    started = await read_events(
        kafka_bootstrap,
        CHAT_EVENTS.name,
        key=cid,
        match=lambda e: e.type == "conversation.started",
        until=bool,
    )
    assert started[0].payload["language"] == language
