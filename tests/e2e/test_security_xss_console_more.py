"""Stored XSS in the console's other views (issue 19's attack battery, second part; the first,
test_security_xss_console.py, renders the visitor card, the conversations and the live list).

Every payload of the corpus (tests/security/xss) goes through the public edges into the
visitor-controlled fields these views show, and the views are rendered by Chromium:

- the offline form (the widget API): each payload as the name and the message, twice — once
  with a real address (the leads service makes a lead of it) and once with the payload as the
  address (the form's check takes anything shaped `local@domain`: spaces become `/`, which a
  tag's attributes accept as well) — shown in the offline inbox, in the conversation's header
  and messages, and in the admins' delivery log (each receipt to a payload address opened;
  the unfiltered log, whose newest e-mails to the team carry the names in their subjects);
- the leads views: the lead of each payload, its name (the offline form, then the store
  server's verified `identify`), its company (the same `identify`), its campaign (the UTM
  values the visitor browsed with) and a note on its contact touch — the lead list and each
  lead's detail;
- the reports: the lead reports' conversion by campaign (a row per payload), their other
  tables and groupings, and
  chat's reports (agents, teams, rules, assisted orders: none of their text is the
  visitor's, rendered for completeness);
- e-mail replies: each payload as the text, subject and attachment name of a visitor's reply
  sent over SMTP to the reply address of a real e-mail, handed by the SMTP sink to the
  notifier's inbound endpoint and by `chat.inbound` to chat; shown in the conversation view
  with the "by e-mail" badge and the attachment listed. (The subject is not shown anywhere in
  the console; it rides along.)

The phone is not a field a payload can reach: leads keep phone numbers only in E.164 form. A
lead's e-mail must pass email-validator (no `<`, quotes or spaces), so payload addresses are
shown only in the offline inbox, the conversation header and the delivery log.

As in the first part: an init script (xss_corpus.INIT_SCRIPT) records any call of the
payloads' marker or of alert & co. and CSP violations, a `dialog` handler records dialogs, a
DOM scan (xss_corpus.DOM_SCAN) looks for what a payload would have brought; nothing may run
or be injected, and the payloads must be on screen as text.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid, unquote
from typing import Any

import aiosmtplib
import httpx
import pytest
from aiosmtplib.errors import SMTPException
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import VISITORS_STATE
from beckon_devstack.kafka_probe import Record, read_records
from beckon_devstack.ports import free_port
from beckon_devstack.processes import stop_process
from consoles import agent_console, leads_call
from playwright.async_api import BrowserContext, ConsoleMessage, Dialog, Page, expect
from xss_corpus import DOM_SCAN, INIT_SCRIPT, Payload, corpus

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1500)]

WAIT_MS = 30_000
WAIT_S = WAIT_MS / 1000
# the notifier's first facts may wait for its consumer group to form and read the backlog
FIRST_FACT_S = 120.0
# payloads a round: two offline messages each, so a round's messages fit the offline inbox
# (its newest 200) and its leads the lead list (its newest 100)
ROUND = 75
NAME_CHARS = 120  # the offline form's name
TRAIT_CHARS = 200  # what leads keep of a name, a company, a campaign
REPLIES_PER_CONVERSATION = 10
WRITE_KEY = "wk_e2e_xss_console_more"
STORE = "http://127.0.0.1"
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36"
)


# ---- what a page ran or was given ---------------------------------------------------------------


@dataclass
class Watch:
    """Dialogs and CSP errors of a context's pages, and what each view's scan found."""

    dialogs: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    pending: set[asyncio.Future[None]] = field(default_factory=set)

    def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        self.pending.add(asyncio.ensure_future(dialog.dismiss()))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.csp.append(message.text)

    async def scan(self, page: Page, where: str) -> None:
        found = {
            "ran": await page.evaluate("window.__xss.splice(0)"),
            "csp": await page.evaluate("window.__xssCsp.splice(0)"),
            "injected": await page.evaluate(DOM_SCAN),
        }
        if any(found.values()):
            self.problems.append(f"{where}: {found}")

    def verdict(self) -> None:
        assert not self.dialogs, self.dialogs
        assert not self.csp, self.csp
        assert not self.problems, "\n".join(self.problems)


async def watched_console(context: BrowserContext, stack: ChatStack, watch: Watch) -> Page:
    """Anna's console (an admin: every view), away so no chat is routed to her."""
    await context.add_init_script(INIT_SCRIPT)
    context.on("dialog", watch.on_dialog)
    page = await agent_console(context, stack, status="away")
    page.on("console", watch.on_console)
    return page


def squeeze(text: str) -> str:
    return " ".join(text.split())


def on_screen(payloads: list[Payload], text: str) -> set[int]:
    """The payloads whose beginning is in `text` (whitespace as the browser collapses it)."""
    shown = squeeze(text)
    return {p.number for p in payloads if squeeze(p.text)[:30] in shown}


async def text_of(page: Page, selector: str) -> str:
    return str(await page.locator(selector).first.evaluate("(n) => n.textContent"))


async def until(what: str, check: Callable[[], Any], timeout_s: float = WAIT_S) -> Any:
    """`await check()` until it answers something true; its answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = await check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout_s:.0f} s")
        await asyncio.sleep(0.5)


async def admitted(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    """The widget API's answer once its rate limit admits the call (waits as its Retry-After
    says: hundreds of visitors from one address are more than it lets through at once)."""
    for _ in range(600):
        answer = await client.post(url, json=body, headers=headers)
        if answer.status_code != 429:
            return answer
        await asyncio.sleep(max(0.25, float(answer.headers.get("retry-after", "0"))))
    return answer


# ---- the visitors --------------------------------------------------------------------------------


def payload_address(p: Payload) -> str:
    """The payload as an address the offline form takes (`local@domain`, no spaces, one @):
    whitespace becomes `/` (as good as a space between a tag's attributes)."""
    squeezed = re.sub(r"\s+", "/", p.text.strip()).replace("@", "%40")
    if len(squeezed) <= 64:
        return f"{squeezed}@xss{p.number}.test"
    return f"xss{p.number}@{squeezed}.test"


@dataclass(frozen=True)
class Visitor:
    payload: Payload
    visitor_id: str
    address: str  # a real one: the lead's
    lead_conversation: str  # the offline message with the real address
    odd_conversation: str  # the one with the payload as the address


async def browse(client: httpx.AsyncClient, stack: ChatStack, visitor_id: str, p: Payload) -> None:
    """A page view from a campaign whose five UTM values and the page's title are the payload."""
    stamp = {"event_id": str(uuid7()), "occurred_at": datetime.now(UTC).isoformat()}
    collected = await client.post(
        f"{stack.tracker_url}/v1/collect",
        params={"k": stack.site_key},
        json={
            "visitor_id": visitor_id,
            "session_id": f"s-{visitor_id}",
            "context": {"page": {"url": f"{stack.store_url}/", "title": "Home"}},
            "events": [
                {
                    **stamp,
                    "type": "page_viewed",
                    "payload": {"page_type": "content"},
                    "context": {
                        "page": {"url": f"{stack.store_url}/pages/{p.number}", "title": p.text},
                        "campaign": {
                            k: p.text for k in ("source", "medium", "name", "term", "content")
                        },
                    },
                }
            ],
        },
        headers={"Origin": stack.store_url, "User-Agent": CHROME},
    )
    assert collected.status_code in (200, 202), collected.text


async def states_known(stack: ChatStack, visitor_ids: set[str]) -> None:
    """Until triggers published each visitor's state with its campaign (leads read the
    campaign from there when they capture the lead)."""

    def mine(record: Record) -> bool:
        try:
            state = json.loads(record.value)
        except (TypeError, ValueError):
            return False
        return (
            isinstance(state, dict)
            and state.get("visitor_id") in visitor_ids
            and bool((state.get("payload") or {}).get("campaign"))
        )

    await read_records(
        stack.bootstrap,
        VISITORS_STATE.name,
        match=mine,
        until=lambda found: {json.loads(r.value)["visitor_id"] for r in found} >= visitor_ids,
        timeout_s=FIRST_FACT_S,
    )


async def leave_messages(
    client: httpx.AsyncClient, stack: ChatStack, uid: str, p: Payload
) -> Visitor:
    """Two offline messages of one visitor: the payload as name and text, with a real address
    and with the payload as the address."""
    visitor_id = f"v-xss2-{uid}-{p.number}"
    origin = {"Origin": stack.store_url, "User-Agent": CHROME}
    session = await admitted(
        client,
        f"{stack.chat_url}/v1/widget/session",
        {"site_key": stack.site_key, "visitor_id": visitor_id},
        origin,
    )
    assert session.status_code == 200, session.text
    auth = {**origin, "Authorization": f"Bearer {session.json()['token']}"}
    name = p.text if len(p.text.strip()) <= NAME_CHARS else None
    address = f"xss2-{uid}-{p.number}@example.com"
    left: list[str] = []
    for email in (address, payload_address(p)):
        answer = await admitted(
            client,
            f"{stack.chat_url}/v1/widget/offline",
            {"email": email, "text": p.text, "name": name},
            auth,
        )
        assert answer.status_code == 201, f"payload {p.number} as {email!r}: {answer.text}"
        left.append(str(answer.json()["conversation"]["id"]))
    return Visitor(p, visitor_id, address, left[0], left[1])


async def identify_from_the_store(
    client: httpx.AsyncClient, tracker_url: str, visitors: list[Visitor]
) -> None:
    """The store's server names each visitor (Segment `identify` with the write key: verified,
    so leads take the traits): the payload as name and company."""
    batch = [
        {
            "type": "identify",
            "messageId": f"xss2-{v.visitor_id}",
            "anonymousId": v.visitor_id,
            "userId": f"u-{v.visitor_id}",
            "timestamp": datetime.now(UTC).isoformat(),
            "traits": {"name": v.payload.text, "company": v.payload.text},
        }
        for v in visitors
    ]
    answer = await client.post(
        f"{tracker_url}/v1/batch", json={"batch": batch}, auth=(WRITE_KEY, "")
    )
    assert answer.status_code in (200, 202), answer.text


@pytest.fixture(scope="module")
def store_server(chat_stack: ChatStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tracker that takes the store server's calls for the chat site (its secret write key;
    the stack's own tracker has none); its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("xss-store-tracker") / "tracker.log"
    site = {
        "site_id": chat_stack.site_id,
        "site_key": chat_stack.site_key,
        "write_key": WRITE_KEY,
        "allowed_origins": [chat_stack.store_url],
    }
    env = {
        **os.environ,
        "TRACKER_KAFKA_BOOTSTRAP": chat_stack.bootstrap,
        "TRACKER_HOST": "127.0.0.1",
        "TRACKER_PORT": str(port),
        "TRACKER_SITES": json.dumps([site]),
        # chat's record of the site (sites.config) has no write key: this tracker keeps its own
        "TRACKER_FOLLOW_SITES": "false",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tracker"], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log_path.read_text(errors="replace")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text(errors="replace")
            time.sleep(0.1)
        yield url
    finally:
        stop_process(process)


# ---- the views -----------------------------------------------------------------------------------


async def show_view(page: Page, name: str) -> None:
    await page.evaluate(
        "async (name) => (await import('/console/core/views.js')).views.show(name)", name
    )


async def offline_inbox(page: Page, watch: Watch, visitors: list[Visitor]) -> set[int]:
    """The offline inbox with both messages of every visitor in it; the payloads shown."""
    wanted = {c for v in visitors for c in (v.lead_conversation, v.odd_conversation)}
    await show_view(page, "offline")
    count_rows = """(ids) => [...document.querySelectorAll('[data-testid="offline-row"]')]
        .filter((row) => ids.includes(row.getAttribute('data-conversation'))).length"""

    async def listed() -> bool:
        await page.get_by_test_id("offline-refresh").click()
        return bool(await page.evaluate(count_rows, sorted(wanted)) == len(wanted))

    await until("the offline inbox lists every message of the round", listed, FIRST_FACT_S)
    await watch.scan(page, "offline inbox")
    payloads = [v.payload for v in visitors]
    text = await text_of(page, '[data-testid="offline-list"]')
    shown = on_screen(payloads, text)
    # the payload addresses, as the inbox's e-mail column shows them
    addresses = squeeze(text)
    shown_addresses = {
        v.payload.number for v in visitors if payload_address(v.payload) in addresses
    }
    return shown & shown_addresses


async def conversation_views(page: Page, watch: Watch, visitors: list[Visitor]) -> set[int]:
    """Each message with the payload as address opened in the chats view: its header shows
    the address, its message the payload."""
    shown: set[int] = set()
    for v in visitors:
        await page.evaluate(
            "async (id) => (await import('/console/chats/conversation.js')).showConversation(id)",
            v.odd_conversation,
        )
        await expect(page.get_by_test_id("conversation")).to_have_attribute(
            "data-conversation-id", v.odd_conversation, timeout=WAIT_MS
        )
        messages = page.locator('#messages [data-author="visitor"]')
        await expect(messages).to_have_count(1, timeout=WAIT_MS)
        header = await page.get_by_test_id("conversation-email").text_content() or ""
        text = await text_of(page, "#messages")
        if header == payload_address(v.payload) and on_screen([v.payload], text):
            shown.add(v.payload.number)
        await watch.scan(page, f"conversation {v.odd_conversation} (payload {v.payload.number})")
    return shown


async def leads_of(page: Page, visitors: list[Visitor]) -> dict[str, dict[str, Any]]:
    """visitor id -> their lead, once the leads service captured every one."""
    wanted = {v.visitor_id for v in visitors}

    async def captured() -> dict[str, dict[str, Any]]:
        found = await leads_call(page, "GET", "?scope=all&limit=200")
        mine = {x["visitor_id"]: x for x in found["leads"] if x["visitor_id"] in wanted}
        return mine if len(mine) == len(wanted) else {}

    leads: dict[str, dict[str, Any]] = await until(
        "a lead of every visitor", captured, FIRST_FACT_S
    )
    return leads


async def contact_with_notes(page: Page, visitors: list[Visitor], leads: dict[str, Any]) -> None:
    """Anna contacts each lead by phone with the payload as the note (a contact touch)."""
    for v in visitors:
        lead = leads[v.visitor_id]
        await leads_call(
            page,
            "POST",
            f"/{lead['lead_id']}/status",
            {"change": "contact", "channel": "phone", "note": v.payload.text},
        )


async def leads_named(page: Page, visitors: list[Visitor]) -> None:
    """Until the store's `identify` reached every lead (its company is set)."""
    expected = {v.visitor_id for v in visitors if len(squeeze(v.payload.text)) <= TRAIT_CHARS}

    async def named() -> bool:
        found = await leads_call(page, "GET", "?scope=all&limit=200")
        return {x["visitor_id"] for x in found["leads"] if x.get("company")} >= expected

    await until("the store's identify on every lead", named, FIRST_FACT_S)


async def lead_views(
    page: Page, watch: Watch, visitors: list[Visitor], leads: dict[str, Any]
) -> tuple[set[int], set[int]]:
    """The lead list (every lead of the round in it) and each lead's detail; the payloads
    shown in the list and in the details (name, company and note, all three)."""
    await show_view(page, "leads")
    await page.get_by_test_id("leads-scope").select_option("all")
    rows = page.locator('[data-testid="lead-row"]')
    wanted = sorted(v.visitor_id for v in visitors)
    count_rows = """(ids) => [...document.querySelectorAll('[data-testid="lead-row"]')]
        .filter((row) => ids.includes(row.getAttribute('data-visitor'))).length"""

    async def listed() -> bool:
        return bool(await page.evaluate(count_rows, wanted) == len(wanted))

    await expect(rows.first).to_be_visible(timeout=WAIT_MS)
    await until("the lead list shows every lead of the round", listed)
    await watch.scan(page, "lead list")
    payloads = [v.payload for v in visitors]
    in_list = on_screen(payloads, await text_of(page, '[data-testid="leads-list"]'))

    in_detail: set[int] = set()
    detail = page.get_by_test_id("lead-detail")
    for v in visitors:
        lead_id = leads[v.visitor_id]["lead_id"]
        await page.locator(f'[data-testid="lead-row"][data-lead-id="{lead_id}"]').click()
        await expect(
            detail.locator('[data-testid="lead-touch"][data-kind="contacted"]')
        ).to_have_count(1, timeout=WAIT_MS)
        facts = await text_of(page, ".lead-facts")
        name = await text_of(page, ".lead-detail-name")
        note = await text_of(page, '[data-testid="lead-touch"][data-kind="contacted"] q')
        if all(on_screen([v.payload], part) for part in (facts, name, note)):
            in_detail.add(v.payload.number)
        await watch.scan(page, f"lead {lead_id} (payload {v.payload.number})")
    return in_list, in_detail


async def delivery_log(page: Page, watch: Watch, visitors: list[Visitor]) -> set[int]:
    """The admins' delivery log: the receipt to each payload address, found by its recipient
    and opened; then the log unfiltered (the team's e-mails, names in their subjects)."""
    await show_view(page, "emailadmin")
    await page.get_by_test_id("email-tab-log").click()
    entries = page.get_by_test_id("email-log-row")
    detail = page.get_by_test_id("email-detail")
    listed = """(address) => {
        const cells = [...document.querySelectorAll('[data-testid="email-log-recipient-cell"]')];
        return cells.length > 0 && cells.every((cell) => cell.textContent === address);
    }"""
    shown: set[int] = set()
    for v in visitors:
        # the receipt to the payload address: the notifier keeps it (and what became of it)
        address = payload_address(v.payload)
        await page.get_by_test_id("email-log-recipient").fill(address)
        await page.get_by_test_id("email-log-refresh").click()
        try:  # the list of this address (not the one before it still on screen)
            await until(f"the log of {address}", lambda a=address: page.evaluate(listed, a))
        except AssertionError:
            continue  # counted as not shown
        await entries.first.click()
        await expect(detail).to_contain_text(address, timeout=WAIT_MS)
        shown.add(v.payload.number)
        await watch.scan(page, f"delivery log of {v.payload.number}")
    # and the log unfiltered: subjects of the team's e-mails carry the names
    await page.get_by_test_id("email-log-recipient").fill("")
    await page.get_by_test_id("email-log-refresh").click()
    await expect(entries.first).to_be_visible(timeout=WAIT_MS)
    await watch.scan(page, "delivery log")
    return shown


async def lead_reports(page: Page, watch: Watch, payloads: list[Payload]) -> set[int]:
    """The lead reports: conversion by campaign (a row per payload), and the others."""
    await show_view(page, "leadreports")
    table = page.get_by_test_id("lrpt-table")
    for tab in ("speed", "sla"):
        await page.get_by_test_id(f"lrpt-tab-{tab}").click()
        await expect(table).to_be_visible(timeout=WAIT_MS)
        await watch.scan(page, f"lead report {tab}")
    await page.get_by_test_id("lrpt-tab-conversion").click()
    await page.get_by_test_id("lrpt-by").select_option("campaign")
    # the table of the conversion report by campaign, not the last one's rows still on screen
    by_campaign = page.locator(
        '[data-testid="lrpt-table"][data-tab="conversion"][data-by="campaign"]'
    )
    await expect(by_campaign.locator('[data-testid="lrpt-row"]')).not_to_have_count(
        0, timeout=WAIT_MS
    )
    await watch.scan(page, "lead report conversion by campaign")
    shown = on_screen(payloads, await text_of(page, '[data-testid="lrpt-table"]'))
    for by in ("source", "rule", "team", "agent"):
        await page.get_by_test_id("lrpt-by").select_option(by)
        grouped = page.locator(f'[data-testid="lrpt-table"][data-by="{by}"]')
        await expect(grouped.locator('[data-testid="lrpt-row"]')).not_to_have_count(
            0, timeout=WAIT_MS
        )
        await watch.scan(page, f"lead report conversion by {by}")
    return shown


async def chat_reports(page: Page, watch: Watch) -> None:
    await show_view(page, "reports")
    for tab in ("agents", "teams", "rules", "assisted"):
        await page.get_by_test_id(f"report-tab-{tab}").click()
        await expect(page.get_by_test_id(f"report-{tab}")).to_be_visible(timeout=WAIT_MS)
        loading = page.get_by_test_id(f"report-{tab}").locator('[data-i18n="common.loading"]')
        await expect(loading).to_have_count(0, timeout=WAIT_MS)
        await watch.scan(page, f"report {tab}")


async def test_offline_messages_leads_and_reports_show_payloads_as_text(
    chat_stack: ChatStack, new_context: Any, store_server: str
) -> None:
    payloads = list(corpus())
    uid = uuid.uuid4().hex[:8]
    watch = Watch()
    anna = await watched_console(await new_context(), chat_stack, watch)
    shown: dict[str, set[int]] = {
        "offline inbox": set(),
        "conversation": set(),
        "lead list": set(),
        "lead detail": set(),
        "delivery log": set(),
    }
    async with httpx.AsyncClient(timeout=30) as client:
        for start in range(0, len(payloads), ROUND):
            batch = payloads[start : start + ROUND]
            ids = {f"v-xss2-{uid}-{p.number}" for p in batch}
            for p in batch:
                await browse(client, chat_stack, f"v-xss2-{uid}-{p.number}", p)
            await states_known(chat_stack, ids)
            visitors = [await leave_messages(client, chat_stack, uid, p) for p in batch]

            shown["offline inbox"] |= await offline_inbox(anna, watch, visitors)
            shown["conversation"] |= await conversation_views(anna, watch, visitors)
            leads = await leads_of(anna, visitors)
            await contact_with_notes(anna, visitors, leads)
            await identify_from_the_store(client, store_server, visitors)
            await leads_named(anna, visitors)
            in_list, in_detail = await lead_views(anna, watch, visitors, leads)
            shown["lead list"] |= in_list
            shown["lead detail"] |= in_detail
            shown["delivery log"] |= await delivery_log(anna, watch, visitors)
    in_report = await lead_reports(anna, watch, payloads)
    await chat_reports(anna, watch)

    watch.verdict()
    # the payloads were on screen, as text: a battery that shows nothing proves nothing
    short = [p for p in payloads if len(p.text.strip()) <= NAME_CHARS]
    for view, numbers in shown.items():
        assert len(numbers) >= len(short) * 0.9, f"{view}: {len(numbers)} of {len(payloads)}"
    assert len(in_report) >= len(payloads) * 0.9, f"lead report: {len(in_report)}"


# ---- e-mail replies ------------------------------------------------------------------------------


async def receipt_to(stack: ChatStack, address: str) -> dict[str, Any]:
    """The notifier's receipt of an offline message, as the SMTP sink got it."""

    async def arrived() -> dict[str, Any] | None:
        async with httpx.AsyncClient(base_url=stack.sink_url, timeout=10) as client:
            found = (await client.get("/api/messages", params={"to": address})).json()
        return found[0] if found else None

    letter: dict[str, Any] = await until(f"a receipt to {address}", arrived, FIRST_FACT_S)
    return letter


async def reply_by_email(stack: ChatStack, letter: dict[str, Any], sender: str, p: Payload) -> bool:
    """What a visitor's mail program sends: the payload as the reply's text, subject and
    attachment name; whether the reply domain took it (the sink hands it to the notifier's
    inbound endpoint and answers with its verdict)."""
    reply = EmailMessage()
    reply["From"] = sender
    reply["To"] = letter["reply_to"][0]
    reply["Subject"] = squeeze(p.text)
    reply["Message-ID"] = make_msgid(domain="xss.example.com")
    reply["In-Reply-To"] = letter["message_id"]
    reply["References"] = letter["message_id"]
    reply.set_content(f"{p.text}\n")
    reply.add_attachment(
        b"not a photo", maintype="application", subtype="octet-stream", filename=p.text
    )
    try:
        await aiosmtplib.send(reply, hostname="127.0.0.1", port=stack.sink_smtp_port, timeout=30)
    except SMTPException:
        return False  # refused (a reply that says nothing once the quoting is cut)
    return True


async def test_email_replies_show_payloads_as_text(chat_stack: ChatStack, new_context: Any) -> None:
    payloads = list(corpus())
    uid = uuid.uuid4().hex[:8]
    watch = Watch()
    anna = await watched_console(await new_context(), chat_stack, watch)
    groups = [
        payloads[i : i + REPLIES_PER_CONVERSATION]
        for i in range(0, len(payloads), REPLIES_PER_CONVERSATION)
    ]
    # a conversation per group: an offline message whose receipt the visitor answers
    conversations: list[tuple[str, str, list[Payload]]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for i, group in enumerate(groups):
            visitor_id = f"v-xss2-mail-{uid}-{i}"
            origin = {"Origin": chat_stack.store_url, "User-Agent": CHROME}
            session = await admitted(
                client,
                f"{chat_stack.chat_url}/v1/widget/session",
                {"site_key": chat_stack.site_key, "visitor_id": visitor_id},
                origin,
            )
            assert session.status_code == 200, session.text
            address = f"xss2-mail-{uid}-{i}@example.com"
            left = await admitted(
                client,
                f"{chat_stack.chat_url}/v1/widget/offline",
                {"email": address, "text": f"Please write back ({uid} {i})", "name": "Replier"},
                {**origin, "Authorization": f"Bearer {session.json()['token']}"},
            )
            assert left.status_code == 201, left.text
            conversations.append((str(left.json()["conversation"]["id"]), address, group))

    accepted: dict[str, list[Payload]] = {}
    for conversation_id, address, group in conversations:
        letter = await receipt_to(chat_stack, address)
        accepted[conversation_id] = [
            p for p in group if await reply_by_email(chat_stack, letter, address, p)
        ]

    shown: set[int] = set()
    attachments: set[int] = set()
    try:
        for conversation_id, _address, group in conversations:
            await anna.evaluate(
                "async (id) => (await import('/console/chats/conversation.js'))"
                ".showConversation(id)",
                conversation_id,
            )
            await expect(anna.get_by_test_id("conversation")).to_have_attribute(
                "data-conversation-id", conversation_id, timeout=WAIT_MS
            )
            emailed = anna.locator('#messages [data-testid="message-email-badge"]')
            await expect(emailed).to_have_count(len(accepted[conversation_id]), timeout=WAIT_MS * 2)
            text = await text_of(anna, "#messages")
            shown |= on_screen(accepted[conversation_id], text)
            names = " ".join(
                await anna.locator(
                    '[data-testid="message-attachment"] .msg-attachment-name'
                ).all_text_contents()
            )
            # a file name quoted in <...> or "..." loses them (email.utils.unquote, as every
            # Python mail reader does): that is the name the notifier reads
            attachments |= on_screen(
                [Payload(p.number, p.source, unquote(p.text)) for p in group], names
            )
            await watch.scan(anna, f"conversation {conversation_id} (e-mail replies)")
    finally:
        # the replies reopened the conversations: close them (they wait in a team's queue)
        for conversation_id, _address, _group in conversations:
            await anna.evaluate(
                "(id) => fetch(`/v1/console/conversations/${id}/close`, {method: 'POST'})",
                conversation_id,
            )

    watch.verdict()
    sent = sum(len(group) for group in accepted.values())
    assert sent >= len(payloads) * 0.9, f"only {sent} of {len(payloads)} replies were taken"
    assert len(shown) >= sent * 0.9, f"only {len(shown)} of {sent} replies shown"
    assert len(attachments) >= sent * 0.9, f"only {len(attachments)} attachment names shown"
