"""A visitor's erasure on the real services (tracker, triggers, chat, leads, the notifier, an
SMTP sink; tests/e2e/conftest.py's `chat_stack`, one broker and one Postgres database).

A visitor is identified on the store (e-mail and name, through the tracker), chats, leaves
their address, is marked as a lead and gets the transcript by e-mail. An admin asks for the
erasure **by the e-mail address alone** (`POST /v1/privacy/erasure`); chat, leads, the
notifier and triggers each report `privacy.erased` for the request. Then every table of the
`chat`, `leads` and `notifier` schemas (every column, bytea decoded) and the latest value of
every key of every compacted topic (the registry's and the triggers worker's changelogs) are
searched for the visitor's e-mail, name and visitor id: nothing is found (hashes and the
`erased:` pseudonyms are not the id).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from beckon_contracts import access, topics
from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import parse_privacy_erased
from beckon_devstack.kafka_probe import read_records

ChatStack = Any  # tests/e2e/conftest.py's dataclass

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(300)]

WAIT_S = 120.0  # the first records of a consumer group wait for the group to form
SERVICES = {"chat", "leads", "notifier", "triggers"}


async def until(what: str, check: Callable[[], Awaitable[Any]], wait_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + wait_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {wait_s:.0f} s for {what}")
        await asyncio.sleep(0.3)


async def identify(stack: ChatStack, visitor_id: str, email: str, name: str) -> None:
    """The store's snippet says who the visitor is (an `identify` through the tracker)."""
    body = {
        "visitor_id": visitor_id,
        "session_id": "s-privacy",
        "context": {"page": {"url": f"{stack.store_url}/account", "title": f"Hello {name}"}},
        "events": [
            {
                "event_id": str(uuid7()),
                "type": "identified",
                "occurred_at": datetime.now(UTC).isoformat(),
                "payload": {"user_id": None, "traits": {"email": email, "name": name}},
            }
        ],
    }
    async with httpx.AsyncClient(base_url=stack.tracker_url, timeout=15) as client:
        sent = await client.post(
            f"/v1/collect?k={stack.site_key}", json=body, headers={"Origin": stack.store_url}
        )
        assert sent.is_success, sent.text


async def visitor_chats(stack: ChatStack, visitor_id: str, email: str, name: str) -> str:
    """The visitor writes (naming themselves), then leaves their address; the conversation."""
    async with httpx.AsyncClient(base_url=stack.chat_url, timeout=15) as client:
        origin = {"Origin": stack.store_url}
        session = await client.post(
            "/v1/widget/session",
            json={"site_key": stack.site_key, "visitor_id": visitor_id},
            headers=origin,
        )
        assert session.status_code == 200, session.text
        auth = {**origin, "Authorization": f"Bearer {session.json()['token']}"}
        started = await client.post(
            "/v1/widget/conversations",
            json={"text": f"Hi, {name} here. Please mail me a quote at {email}"},
            headers=auth,
        )
        assert started.status_code in (200, 201), started.text
        left = await client.post("/v1/widget/email", json={"email": email}, headers=auth)
        assert left.status_code == 204, left.text
    return str(started.json()["conversation"]["id"])


async def console(stack: ChatStack) -> httpx.AsyncClient:
    """Anna (the site's admin) logged in over HTTP, as the console's page calls."""
    client = httpx.AsyncClient(
        base_url=stack.chat_url, timeout=15, headers={"Origin": stack.chat_url}
    )
    login = await client.post(
        "/v1/console/login", json={"email": stack.agent_email, "password": stack.agent_password}
    )
    assert login.status_code == 200, login.text
    return client


async def all_text(conn: asyncpg.Connection, schema: str) -> dict[str, list[str]]:
    """Every row of every table of `schema` as text (bytea decoded), by table."""
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        schema,
    )
    found: dict[str, list[str]] = {}
    for table in tables:
        columns = await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2",
            schema,
            table["table_name"],
        )
        exprs = [
            f"encode(\"{c['column_name']}\", 'escape')"
            if c["data_type"] == "bytea"
            else f'"{c["column_name"]}"::text'
            for c in columns
        ]
        rows = await conn.fetch(
            f"SELECT concat_ws(' | ', {', '.join(exprs)}) AS row "
            f'FROM {schema}."{table["table_name"]}"'
        )
        found[f"{schema}.{table['table_name']}"] = [row["row"] for row in rows]
    return found


def compacted_topics() -> list[str]:
    app_id = f"triggers-e2e-chat-{os.getpid()}"  # conftest's chat_stack worker
    registry = [t.name for t in topics.ALL_TOPICS if t.cleanup_policy == "compact"]
    internal = [t.name for t in access.faust_topics(app_id) if t.cleanup_policy == "compact"]
    return [*registry, *internal]


async def latest_values(bootstrap: str, topic: str) -> dict[bytes, bytes]:
    """What a reader of the compacted topic holds at its end: the latest value per key, a
    tombstone removing the key."""
    records = await read_records(bootstrap, topic, until=lambda _found: True, drain=True)
    held: dict[bytes, bytes] = {}
    for record in records:
        key = record.key or b""
        if record.value is None:
            held.pop(key, None)
        else:
            held[key] = record.value
    return held


async def test_an_erased_visitor_leaves_nothing_readable(chat_stack: ChatStack) -> None:
    stack = chat_stack
    tag = uuid.uuid4().hex[:10]
    visitor_id = f"v-erase-{tag}"
    email = f"erase.me.{tag}@example.org"
    name = f"Ottilie Erasable{tag[:6]}"
    needles = {"e-mail": email.lower(), "name": name.lower(), "visitor id": visitor_id.lower()}
    db = await asyncpg.connect(stack.database_url)
    agent = await console(stack)
    try:
        # ---- a visitor who was identified, chatted, became a lead and got e-mails -----------
        await identify(stack, visitor_id, email, name)
        conversation_id = await visitor_chats(stack, visitor_id, email, name)
        status = await agent.post("/v1/console/status", json={"status": "online"})
        assert status.status_code == 200, status.text
        held = await agent.get(f"/v1/console/conversations/{conversation_id}")
        if held.json().get("conversation", {}).get("status") == "queued":
            picked = await agent.post(f"/v1/console/conversations/{conversation_id}/pickup")
            assert picked.status_code == 200, picked.text
        said = await agent.post(
            f"/v1/console/conversations/{conversation_id}/messages",
            json={"text": f"Thanks {name}, a quote is on its way to {email}"},
        )
        assert said.status_code == 201, said.text
        noted = await agent.post(
            f"/v1/console/conversations/{conversation_id}/notes",
            json={"text": f"{name} <{email}> wants 40 tents"},
        )
        assert noted.status_code == 201, noted.text
        marked = await agent.post(
            f"/v1/console/conversations/{conversation_id}/lead",
            json={"validation": "qualified", "note": f"call {name}"},
        )
        assert marked.status_code in (200, 201), marked.text
        closed = await agent.post(f"/v1/console/conversations/{conversation_id}/close")
        assert closed.status_code == 200, closed.text

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
        await until(
            "the identify in chat's activity",
            lambda: db.fetchval(
                "SELECT count(*) FROM chat.activity WHERE visitor_id = $1", visitor_id
            ),
        )
        state_key = f"{stack.site_id}:{visitor_id}".encode()
        await read_records(
            stack.bootstrap,
            topics.VISITORS_STATE.name,
            match=lambda record: record.key == state_key,
            timeout_s=WAIT_S,
        )
        # what is looked for is there before the erasure (else the search proves nothing)
        tables = [await all_text(db, schema) for schema in ("chat", "leads", "notifier")]
        before = "\n".join(
            row for found in tables for rows in found.values() for row in rows
        ).lower()
        for what, needle in needles.items():
            assert needle in before, f"the visitor's {what} is nowhere before the erasure"

        # ---- the erasure, by the address alone ------------------------------------------------
        asked = await agent.post("/v1/privacy/erasure", json={"emails": [email.upper()]})
        assert asked.status_code == 202, asked.text
        request_id = asked.json()["request_id"]
        assert asked.json()["visitors"] == 1

        def reported(record: Any) -> bool:
            fact = parse_privacy_erased(record.value)
            return str(fact.payload.request_id) == request_id

        facts = await read_records(
            stack.bootstrap,
            topics.PRIVACY_ERASED.name,
            match=reported,
            until=lambda found: (
                {parse_privacy_erased(r.value).payload.service for r in found} >= SERVICES
            ),
            timeout_s=WAIT_S,
        )
        by_service = {
            fact.payload.service: fact for fact in (parse_privacy_erased(r.value) for r in facts)
        }
        assert by_service["leads"].payload.lead_ids, "leads erased no lead"
        assert by_service["chat"].payload.counts["visitors"] == 1
        assert by_service["notifier"].payload.counts["emails"] >= 1
        for record in facts:  # the facts name their subjects by hash only
            text = record.value.decode().lower()
            assert not [what for what, needle in needles.items() if needle in text]
        # triggers' forget goes through triggers.feedback: wait for its tombstone
        await read_records(
            stack.bootstrap,
            topics.VISITORS_STATE.name,
            match=lambda record: record.key == state_key and record.value is None,
            timeout_s=WAIT_S,
        )

        # ---- nothing readable left ------------------------------------------------------------
        leaks: list[str] = []
        for schema in ("chat", "leads", "notifier"):
            for table, rows in (await all_text(db, schema)).items():
                for row in rows:
                    for what, needle in needles.items():
                        if needle in row.lower():
                            leaks.append(f"{table}: the {what} in {row[:300]!r}")
        for topic in compacted_topics():
            for key, value in (await latest_values(stack.bootstrap, topic)).items():
                text = (key + b" " + value).decode("utf-8", "replace").lower()
                for what, needle in needles.items():
                    if needle in text:
                        leaks.append(f"{topic}: the {what} under key {key!r}")
        assert leaks == []

        # the request as the admin sees it: chat's part done, no subject named
        listed = (await agent.get("/v1/privacy/requests")).json()["requests"]
        [mine] = [r for r in listed if r["request_id"] == request_id]
        assert mine["erased_at"] is not None
        assert orjson.dumps(mine).decode().lower().count(tag) == 0
    finally:
        await agent.aclose()
        await db.close()
