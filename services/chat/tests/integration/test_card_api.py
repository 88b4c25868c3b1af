"""`GET /v1/console/visitors/{visitor_id}/card` on the running instances: the visitor's
history by visit (paged), identity, conversations with their transcripts and never a private
note, for the agents of the visitor's site only; and leads once the toolkit's table exists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from beckon_contracts.ids import uuid7
from chat.activity.store import ActivityStore
from chat_testing import (
    GROUP_FORMED_TIMEOUT_S,
    add_site,
    eventually,
    produce_events,
    scratch_database,
    site_spec,
    tracking_event,
    unique,
    visit,
)

pytestmark = pytest.mark.integration


async def test_the_card_shows_history_conversations_and_no_notes_to_its_site_only(
    chat, make_site, clients, db
) -> None:
    site = await make_site(agents=[("ann", ["sales"], 5)])
    other = await make_site(agents=[("olli", ["sales"], 5)])
    ann = await clients.agent(chat.a.url, site.agent("ann"), online=True)
    olli = await clients.agent(chat.b.url, other.agent("olli"), online=True)
    visitor = clients.visitor(site)
    visitor_id = visitor.visitor_id

    # yesterday's visit in another session, then today's shopping
    earlier = tracking_event(
        site.site_id,
        visitor_id,
        "page_viewed",
        {"page_type": "home"},
        session_id="s-0",
        occurred_at=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
        # a click from the store's own page: not a referrer
        context={"page": {"url": "https://shop.test/", "referrer": "https://shop.test/p/x"}},
    )
    today = visit(site.site_id, visitor_id)
    await produce_events(chat.bootstrap, [earlier, *today])

    async def recorded() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM chat.activity WHERE site_id = $1 AND visitor_id = $2",
            site.site_id,
            visitor_id,
        )
        return int(count) >= 6

    await eventually(recorded, timeout_s=GROUP_FORMED_TIMEOUT_S, what="the visits recorded")

    assert (await visitor.session(chat.a.url)).status_code == 200
    started = await visitor.start(chat.a.url, text="Is the Trail Runner waterproof?")
    assert started.status_code == 201, started.text
    conversation_id = started.json()["conversation"]["id"]
    reply = await ann.post(
        f"/conversations/{conversation_id}/messages",
        {"text": "Yes, it has a membrane.", "client_id": "r1"},
    )
    assert reply.status_code in (200, 201), reply.text
    await db.execute(
        "INSERT INTO chat.notes (note_id, conversation_id, agent_id, text) VALUES ($1, $2, $3, $4)",
        uuid7(),
        UUID(conversation_id),
        ann.agent_id,
        "PRIVATE: wants a discount, do not offer one",
    )

    answer = await ann.get(f"/visitors/{visitor_id}/card", base=chat.b.url)
    assert answer.status_code == 200, answer.text
    card = answer.json()
    assert "PRIVATE" not in answer.text
    assert card["visitor_id"] == visitor_id
    assert card["identity"]["email"] == "maija@example.fi"  # from the identify traits
    assert card["identity"]["name"] == "Maija"
    assert card["identity"]["label"] == {"en": "Maija", "fi": "Maija"}  # as the lists say
    assert card["live"] is None  # no live registry for this site's visitor
    assert card["source"]["source"] == "newsletter"
    assert card["source"]["returning"] is True
    assert card["source"]["visits"] == 2
    assert card["source"]["landing"] == {"kind": "campaign", "text": "newsletter"}
    assert card["now"]["cart"] is None  # the order emptied it

    visits = card["history"]["visits"]
    assert [v["session_id"] for v in visits] == ["s-1", "s-0"]
    assert visits[1]["referrer"] is None  # the store's own page
    assert [e["type"] for e in visits[0]["events"]] == [
        "visitor.identified",
        "order.completed",
        "cart.updated",
        "product.viewed",
        "page.viewed",
    ]
    assert visits[0]["summary"]["products"] == 1
    assert visits[0]["summary"]["orders"] == 1
    assert visits[0]["summary"]["order_value"] == 129.9
    assert card["summary"] == {"visits": 2, "pages": 2, "products": 1, "orders": 1}
    assert card["history"]["next"] is None

    (conversation,) = card["conversations"]
    assert conversation["id"] == conversation_id
    assert conversation["agent"] == {"id": ann.agent_id, "name": "Ann"}
    transcript = [(m["author"], m["text"], m["agent_name"]) for m in conversation["messages"]]
    assert ("visitor", "Is the Trail Runner waterproof?", None) in transcript
    assert ("agent", "Yes, it has a membrane.", "Ann") in transcript
    assert card["leads"] == []

    # paged: two events a page, older pages by cursor, nothing twice and nothing missing
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        path = f"/visitors/{visitor_id}/card?limit=2" + (f"&before={cursor}" if cursor else "")
        page = (await ann.get(path)).json()
        seen += [e["event_id"] for v in page["history"]["visits"] for e in v["events"]]
        cursor = page["history"]["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6
    assert seen[-1] == earlier["event_id"]
    bad = await ann.get(f"/visitors/{visitor_id}/card?before=nonsense")
    assert bad.status_code == 422

    # another site's agent: not found, and nothing of it in the answer
    foreign = await olli.get(f"/visitors/{visitor_id}/card")
    assert foreign.status_code == 404, foreign.text
    assert "Trail" not in foreign.text
    unknown = await ann.get(f"/visitors/{unique('nobody')}/card")
    assert unknown.status_code == 404
    assert (
        await clients.http.get(f"{chat.a.url}/v1/console/visitors/{visitor_id}/card")
    ).status_code == 401


async def test_leads_are_read_once_the_toolkit_table_exists(chat) -> None:
    async with scratch_database(chat.server_url, "chat_card_leads") as (url, pool):
        site = await add_site(url, site_spec(unique("site"), agents=[("ann", ["sales"], 5)]))
        async with pool.acquire() as conn:
            assert await ActivityStore(conn).leads(site.site_id, "v-1") == []
            exists = await conn.fetchval("SELECT to_regclass('chat.lead_marks')")
            if exists is None:  # the toolkit's migration (0003) has not landed yet
                await conn.execute(
                    """CREATE TABLE chat.lead_marks (
                           mark_id uuid PRIMARY KEY, conversation_id uuid NOT NULL,
                           site_id text NOT NULL, visitor_id text NOT NULL, agent_id text,
                           validation text NOT NULL, note text,
                           created_at timestamptz NOT NULL DEFAULT now())"""
                )
            conversation_id = uuid7()
            await conn.execute(
                """INSERT INTO chat.conversations (conversation_id, site_id, visitor_id, team,
                       status) VALUES ($1, $2, 'v-1', 'sales', 'closed')""",
                conversation_id,
                site.site_id,
            )
            for site_id in (site.site_id, "elsewhere"):
                await conn.execute(
                    """INSERT INTO chat.lead_marks (mark_id, conversation_id, site_id,
                           visitor_id, agent_id, validation, note)
                       VALUES ($1, $2, $3, 'v-1', $4, 'qualified', 'Wants 12 pairs')""",
                    uuid7(),
                    conversation_id,
                    site_id,
                    site.agent("ann").agent_id,
                )
            leads: list[dict[str, Any]] = await ActivityStore(conn).leads(site.site_id, "v-1")
    assert [(lead["validation"], lead["note"], lead["agent_name"]) for lead in leads] == [
        ("qualified", "Wants 12 pairs", "Ann")
    ]
