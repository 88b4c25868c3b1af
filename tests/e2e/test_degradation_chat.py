"""Chat's edges when a part behind it is away, in Chromium on a real chat instance.

Postgres down: chat answers 503 `database_unavailable` (Retry-After, CORS headers the page can
read), a socket frame it cannot store is answered with that error, a socket it cannot greet is
closed 1013; the widget tells the visitor chat is away for a moment (in the page's language)
instead of showing a message that never leaves, and when Postgres is back the message goes out
and the conversation goes on without a reload. The Postgres is the test's own (embedded, stopped
and started on its data directory); the broker is the session's, which nothing here stops.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from beckon_devstack.ports import free_port
from beckon_devstack.postgres import EmbeddedPostgres
from chat.adapters import migrations
from chat.agents.sessions import SESSION_CHECK_S
from chat_testing import (
    AgentClient,
    ChatProcess,
    SiteSpec,
    add_site,
    frame_is,
    site_spec,
    start_chat,
    stop_chat,
    unique,
)
from playwright.async_api import Page, WebSocketRoute, expect
from store_pages import widget_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_MS = 60_000
AWAY_EN = "Chat is unavailable for a moment. Your messages will be sent when it is back."
AWAY_FI = "Chat ei ole hetkeen käytettävissä. Viestisi lähetetään, kun se palaa."


@dataclass
class ChatOnOwnPostgres:
    chat: ChatProcess
    site: SiteSpec
    postgres: EmbeddedPostgres
    database_url: str


@pytest.fixture
async def own_postgres_chat(
    kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[ChatOnOwnPostgres]:
    """Never the session's Postgres: this one is stopped."""
    postgres = EmbeddedPostgres(data_dir=tmp_path / "pg")
    url = await asyncio.to_thread(postgres.start)
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrations.migrate(conn)
        finally:
            await conn.close()
        port = free_port()
        site = await add_site(
            url,
            site_spec(
                unique("away"),
                agents=[("ann", ["sales"], 5)],
                origin=f"http://127.0.0.1:{port}",
                settings={"language": "auto"},
            ),
        )
        chat = await start_chat(
            "away",
            database_url=url,
            bootstrap=kafka_bootstrap,
            log_dir=tmp_path,
            # a group of its own: the session broker's other chats keep theirs
            CHAT_CONSUMER_GROUP=unique("chat-away"),
        )
        try:
            with widget_store(chat.url, site.site_key, port):
                yield ChatOnOwnPostgres(chat, site, postgres, url)
        finally:
            stop_chat(chat)
    finally:
        await asyncio.to_thread(postgres.stop)


async def _state(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate("window.BeckonChat.state()")
    return state


async def _open_conversation(page: Page, origin: str, text: str) -> str:
    await page.goto(f"{origin}/")
    await expect(page.locator("#beckon-chat")).to_have_attribute(
        "data-state", "connected", timeout=WAIT_MS
    )
    await page.get_by_test_id("beckon-launcher").click()
    await page.get_by_test_id("beckon-input").fill(text)
    await page.get_by_test_id("beckon-input").press("Enter")
    await page.wait_for_function(
        "(window.BeckonChat.state().conversation || {}).status && "
        "window.BeckonChat.state().pending === 0",
        timeout=WAIT_MS,
    )
    conversation_id: str = (await _state(page))["conversation"]["id"]
    return conversation_id


async def test_the_widget_says_chat_is_away_while_postgres_is_down_and_recovers(
    own_postgres_chat: ChatOnOwnPostgres, new_context: Any
) -> None:
    chat, site = own_postgres_chat.chat, own_postgres_chat.site
    agent = AgentClient(chat.url, site.agent("ann"))
    try:
        await agent.login()
        await agent.status("online")
        console = await agent.connect()
        english = await (await new_context(locale="en-US")).new_page()
        finnish = await (await new_context(locale="fi-FI")).new_page()
        en_id = await _open_conversation(english, site.origin, "Do you ship to Oulu?")
        fi_id = await _open_conversation(finnish, site.origin, "Onko tätä kokoa 44?")
        for cid, text in ((en_id, "Do you ship to Oulu?"), (fi_id, "Onko tätä kokoa 44?")):
            await console.recv_until(
                lambda f, cid=cid, text=text: (
                    frame_is("message", conversation_id=cid)(f) and f["message"]["text"] == text
                )
            )

        await asyncio.to_thread(own_postgres_chat.postgres.stop)

        # what chat answers: 503 database_unavailable, readable by the page, Retry-After
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.post(
                f"{chat.url}/v1/widget/session",
                json={"site_key": site.site_key, "visitor_id": unique("v")},
                headers={"Origin": site.origin},
            )
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "database_unavailable"
        assert answer.headers["retry-after"].isdigit()
        assert answer.headers["access-control-allow-origin"] == site.origin

        # the visitors write; each widget says chat is away, in its language
        for page, text, away in (
            (english, "Hello? Anyone there?", AWAY_EN),
            (finnish, "Haloo?", AWAY_FI),
        ):
            await page.get_by_test_id("beckon-input").fill(text)
            await page.get_by_test_id("beckon-input").press("Enter")
            notice = page.get_by_test_id("beckon-away")
            await expect(notice).to_be_visible(timeout=WAIT_MS)
            await expect(notice).to_have_text(away)
            assert (await _state(page))["pending"] == 1
        assert await english.locator("[data-failed]").count() == 0

        await asyncio.to_thread(own_postgres_chat.postgres.start)

        # back: without a reload, the notice goes, the messages go out once, the agent answers
        for page, cid, text in (
            (english, en_id, "Hello? Anyone there?"),
            (finnish, fi_id, "Haloo?"),
        ):
            await expect(page.get_by_test_id("beckon-away")).to_be_hidden(timeout=WAIT_MS)
            await page.wait_for_function("window.BeckonChat.state().pending === 0", timeout=WAIT_MS)
            await console.recv_until(
                lambda f, cid=cid, text=text: (
                    frame_is("message", conversation_id=cid)(f) and f["message"]["text"] == text
                ),
                timeout=WAIT_MS / 1000,
            )
            answer = await agent.post(f"/conversations/{cid}/messages", {"text": "We are here"})
            assert answer.status_code == 201, answer.text
            await expect(
                page.get_by_test_id("beckon-messages").get_by_text("We are here")
            ).to_be_visible(timeout=WAIT_MS)
        assert await english.locator("[data-failed]").count() == 0
        sent = [
            f["message"]["text"]
            for f in console.matching(frame_is("message", conversation_id=en_id))
            if f["message"]["author"] == "visitor"
        ]
        assert sent == ["Do you ship to Oulu?", "Hello? Anyone there?"]
        conn = await asyncpg.connect(own_postgres_chat.database_url)
        try:
            stored = await conn.fetch(
                "SELECT text FROM chat.messages WHERE conversation_id = $1::uuid ORDER BY seq",
                en_id,
            )
        finally:
            await conn.close()
        assert [row["text"] for row in stored] == [
            "Do you ship to Oulu?",
            "Hello? Anyone there?",
            "We are here",
        ]
    finally:
        await agent.aclose()


async def test_a_sync_refused_while_postgres_is_down_is_asked_again(
    own_postgres_chat: ChatOnOwnPostgres, new_context: Any
) -> None:
    """An agent's line lost on its way to the widget (held back here, between the browser and
    chat) shows as a gap when the next line comes; the sync the widget sends for it meets
    Postgres away and is refused. Nothing else would ask again in a quiet conversation: the
    widget does, on its own, until the sync is answered; the missing line appears, the notice
    goes, and chat hears the visitor has seen the conversation only as far as nothing is missing."""
    chat, site = own_postgres_chat.chat, own_postgres_chat.site
    agent = AgentClient(chat.url, site.agent("ann"))
    held: dict[int, str] = {}  # seq -> an agent's line kept from the page
    holding = asyncio.Event()
    routes: list[WebSocketRoute] = []

    def route(page_side: WebSocketRoute) -> None:
        routes.append(page_side)
        server = page_side.connect_to_server()

        def from_server(message: str | bytes) -> None:
            frame = json.loads(message)
            if not (holding.is_set() and frame.get("t") == "message"):
                page_side.send(message)
            elif frame["message"]["author"] == "agent":
                held[int(frame["message"]["seq"])] = str(message)
            # (a late copy of the visitor's own line is kept back too: it is no news)

        server.on_message(from_server)

    try:
        await agent.login()
        await agent.status("online")
        console = await agent.connect()
        page = await (await new_context(locale="en-US")).new_page()
        await page.route_web_socket(re.compile(r".*/v1/widget/ws.*"), route)
        cid = await _open_conversation(page, site.origin, "Is the boot waterproof?")
        await console.recv_until(frame_is("message", conversation_id=cid))

        holding.set()
        for text in ("Yes, it has a membrane.", "Anything else?"):
            answer = await agent.post(f"/conversations/{cid}/messages", {"text": text})
            assert answer.status_code == 201, answer.text
        for _ in range(600):
            if len(held) == 2:
                break
            await asyncio.sleep(0.05)
        first, second = sorted(held)
        assert second == first + 1, held

        await asyncio.to_thread(own_postgres_chat.postgres.stop)
        holding.clear()
        routes[-1].send(held[second])  # the second line arrives, the first never will here
        messages = page.get_by_test_id("beckon-messages")
        await expect(messages.get_by_text("Anything else?")).to_be_visible(timeout=WAIT_MS)
        await expect(page.get_by_test_id("beckon-away")).to_be_visible(timeout=WAIT_MS)
        assert await messages.get_by_text("Yes, it has a membrane.").count() == 0
        assert (await _state(page))["seen"] < first  # the missing line was not seen

        await asyncio.to_thread(own_postgres_chat.postgres.start)
        await expect(messages.get_by_text("Yes, it has a membrane.")).to_be_visible(timeout=WAIT_MS)
        await expect(page.get_by_test_id("beckon-away")).to_be_hidden(timeout=WAIT_MS)
        await page.wait_for_function(
            f"window.BeckonChat.state().seen === {second}", timeout=WAIT_MS
        )
        shown = await messages.locator("[data-id]").all_inner_texts()
        lines = ["Is the boot waterproof?", "Yes, it has a membrane.", "Anything else?"]
        assert [text for text in shown if text in lines] == lines
    finally:
        await agent.aclose()


async def test_a_console_socket_is_told_to_come_back_while_postgres_is_down(
    own_postgres_chat: ChatOnOwnPostgres,
) -> None:
    """The console's socket meets the database away in its session check (a frame after the
    session was last read) or at its greeting: closed 1013 "try again later", on which the
    console reconnects with backoff, not an error in the server's log and a dead socket."""
    chat, site = own_postgres_chat.chat, own_postgres_chat.site
    agent = AgentClient(chat.url, site.agent("ann"))
    try:
        await agent.login()
        console = await agent.connect()
        await console.recv_until(frame_is("hello"))

        await asyncio.to_thread(own_postgres_chat.postgres.stop)
        await asyncio.sleep(SESSION_CHECK_S + 1)  # what the instance read of the session is old
        await console.send({"t": "ping"})
        assert await console.wait_closed(timeout=30) == 1013, console.close_reason
        assert console.close_reason == "database unavailable"
        later = await agent.connect()  # greeted while the database is away
        assert await later.wait_closed(timeout=30) == 1013, later.close_reason

        await asyncio.to_thread(own_postgres_chat.postgres.start)
        back = await agent.connect()
        await back.recv_until(frame_is("hello"), timeout=WAIT_MS / 1000)
        assert "Exception in ASGI application" not in chat.log_path.read_text(errors="replace")
    finally:
        await agent.aclose()
