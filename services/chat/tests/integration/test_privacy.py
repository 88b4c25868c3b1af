"""Chat's part of a visitor's erasure and each site's retention, on Postgres (the service's
migrations; no chat process): the use cases as the consumer and the sweep run them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import ErasureRequest, ErasureRequested, subject_hash
from chat.privacy import service
from chat.uow import UnitOfWorkFactory

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def units(db: asyncpg.Pool) -> UnitOfWorkFactory:
    async def nobody(site_id: str, agents: object) -> None:
        return None

    return UnitOfWorkFactory(db, on_commit=lambda: None, on_agents_changed=nobody)


async def a_site(db: asyncpg.Pool) -> str:
    site_id = f"privacy-{uuid.uuid4().hex[:10]}"
    await db.execute(
        "INSERT INTO chat.sites (site_id, site_key) VALUES ($1, $2)", site_id, f"pk_{site_id}"
    )
    return site_id


async def activity(db: asyncpg.Pool, site_id: str, visitor: str, kind: str, age_days: int) -> None:
    await db.execute(
        """INSERT INTO chat.activity (event_id, site_id, visitor_id, session_id, type,
               occurred_at, url, title, value, detail)
           VALUES ($1, $2, $3, 's1', $4, $5, 'https://shop.test/p', 'Tent', 10, '{"x": 1}')""",
        uuid7(),
        site_id,
        visitor,
        kind,
        NOW - timedelta(days=age_days),
    )


async def closed_chat(
    db: asyncpg.Pool, site_id: str, visitor: str, age_days: int, *, email: str | None = None
) -> uuid.UUID:
    conversation_id = uuid.uuid4()
    at = NOW - timedelta(days=age_days)
    await db.execute(
        """INSERT INTO chat.conversations (conversation_id, site_id, visitor_id, team, status,
               email, created_at, closed_at)
           VALUES ($1, $2, $3, 'sales', 'closed', $4, $5, $5)""",
        conversation_id,
        site_id,
        visitor,
        email,
        at,
    )
    await db.execute(
        """INSERT INTO chat.messages (message_id, conversation_id, seq, author, text, created_at)
           VALUES ($1, $2, 1, 'visitor', 'my address is anna@example.org', $3)""",
        uuid.uuid4(),
        conversation_id,
        at,
    )
    await db.execute(
        "INSERT INTO chat.notes (note_id, conversation_id, text) VALUES ($1, $2, 'call Anna')",
        uuid.uuid4(),
        conversation_id,
    )
    return conversation_id


async def test_retention_prunes_each_sites_old_activity_and_transcripts(db: asyncpg.Pool) -> None:
    uow = units(db)
    kept_site, pruned_site = await a_site(db), await a_site(db)
    for site_id in (kept_site, pruned_site):
        await activity(db, site_id, "v1", "page.viewed", 40)
        await activity(db, site_id, "v1", "order.completed", 40)
        await activity(db, site_id, "v1", "page.viewed", 5)
    old = await closed_chat(db, pruned_site, "v1", 40)
    recent = await closed_chat(db, pruned_site, "v1", 5)
    untouched = await closed_chat(db, kept_site, "v1", 400)
    await service.set_retention(uow=uow, site_id=pruned_site, activity_days=30, transcript_days=30)
    assert await service.retention(uow=uow, site_id=pruned_site) == {
        "activity_days": 30,
        "transcript_days": 30,
    }

    await service.prune(uow=uow, now=NOW)

    rows = await db.fetch(
        "SELECT type, visitor_id, url, detail FROM chat.activity WHERE site_id = $1 "
        "ORDER BY occurred_at, type",
        pruned_site,
    )
    # the old page view is gone; the old order stays for revenue, anonymised; the recent stays
    assert [(r["type"], r["visitor_id"], r["url"]) for r in rows] == [
        ("order.completed", "erased:" + subject_hash("v1")[:32], None),
        ("page.viewed", "v1", "https://shop.test/p"),
    ]
    assert orjson.loads(rows[0]["detail"]) == {}
    assert (
        await db.fetchval("SELECT count(*) FROM chat.activity WHERE site_id = $1", kept_site) == 3
    )  # no retention set: kept as before

    async def text_of(conversation_id: uuid.UUID) -> tuple[str, int]:
        message = await db.fetchval(
            "SELECT text FROM chat.messages WHERE conversation_id = $1", conversation_id
        )
        notes = await db.fetchval(
            "SELECT count(*) FROM chat.notes WHERE conversation_id = $1", conversation_id
        )
        return message, notes

    assert await text_of(old) == ("", 0)
    assert await text_of(recent) == ("my address is anna@example.org", 1)
    assert await text_of(untouched) == ("my address is anna@example.org", 1)


async def test_an_erasure_by_address_is_applied_once(db: asyncpg.Pool) -> None:
    uow = units(db)
    site_id = await a_site(db)
    conversation_id = await closed_chat(db, site_id, "v-anna", 3, email="Anna@Example.org")
    await closed_chat(db, site_id, "v-other", 3)
    await activity(db, site_id, "v-anna", "page.viewed", 1)
    command = ErasureRequested(
        event_id=uuid7(),
        occurred_at=NOW,
        site_id=site_id,
        payload=ErasureRequest(
            request_id=uuid7(),
            email_hashes=[subject_hash("anna@example.org")],
            requested_by="admin-1",
        ),
    )

    counts = await service.erase(uow=uow, command=command)
    assert counts is not None
    assert (counts["conversations"], counts["messages"], counts["activity"]) == (1, 1, 1)
    assert await service.erase(uow=uow, command=command) is None  # a redelivery

    row = await db.fetchrow(
        "SELECT visitor_id, email FROM chat.conversations WHERE conversation_id = $1",
        conversation_id,
    )
    assert dict(row) == {"visitor_id": "erased:" + subject_hash("v-anna")[:32], "email": None}
    assert (
        await db.fetchval(
            "SELECT count(*) FROM chat.conversations WHERE site_id = $1 AND visitor_id = 'v-other'",
            site_id,
        )
        == 1
    )
    facts = await db.fetch(
        "SELECT value FROM chat.outbox WHERE topic = 'privacy.erased' AND key = $1",
        site_id.encode(),
    )
    assert len(facts) == 1
    assert b"v-anna" not in facts[0]["value"]
    [request] = await service.requests(uow=uow, site_id=site_id)
    assert request["erased_at"] is not None
