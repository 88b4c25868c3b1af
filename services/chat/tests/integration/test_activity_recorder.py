"""The `chat-activity` consumer on a real broker and Postgres: tracking events become
`chat.activity` rows once (a replay stores nothing twice), bad records reach the dead-letter
topic with their reason, and the retention sweep deletes old rows in bounded batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import TRACKING_DLQ, TRACKING_EVENTS
from chat.activity.recorder import sweep_expired
from chat_testing import (
    GROUP_FORMED_TIMEOUT_S,
    eventually,
    produce,
    produce_events,
    read_events,
    tracking_event,
    unique,
    visit,
)

pytestmark = pytest.mark.integration


async def activity_rows(db: Any, site_id: str, visitor_id: str) -> list[Any]:
    return list(
        await db.fetch(
            """SELECT event_id, type, value, currency, session_id, url, title, detail
               FROM chat.activity WHERE site_id = $1 AND visitor_id = $2
               ORDER BY occurred_at, event_id""",
            site_id,
            visitor_id,
        )
    )


async def test_tracking_events_are_recorded_once_even_when_produced_twice(chat, db) -> None:
    site_id, visitor_id = unique("site"), unique("v")
    events = visit(site_id, visitor_id)
    await produce_events(chat.bootstrap, events)

    async def recorded() -> bool:
        return len(await activity_rows(db, site_id, visitor_id)) >= 5

    await eventually(recorded, timeout_s=GROUP_FORMED_TIMEOUT_S, what="the visit recorded")

    # the same records again, then one more: same key, same partition, so once the marker is
    # stored the repeats were handled before it
    marker = tracking_event(site_id, visitor_id, "page_viewed", {"page_type": "cart"})
    await produce_events(chat.bootstrap, [*events, marker])

    async def marker_recorded() -> bool:
        return any(
            row["event_id"] == UUID(marker["event_id"])
            for row in await activity_rows(db, site_id, visitor_id)
        )

    await eventually(marker_recorded, timeout_s=GROUP_FORMED_TIMEOUT_S, what="the marker recorded")
    rows = await activity_rows(db, site_id, visitor_id)
    wanted = [e for e in events if e["type"] != "heartbeat"] + [marker]
    assert sorted(str(row["event_id"]) for row in rows) == sorted(e["event_id"] for e in wanted)
    assert [row["type"] for row in rows] == [
        "page.viewed",
        "product.viewed",
        "cart.updated",
        "order.completed",
        "visitor.identified",
        "page.viewed",
    ]
    by_type = {row["type"]: row for row in rows}
    order = by_type["order.completed"]
    assert (order["value"], order["currency"]) == (Decimal("129.90"), "EUR")
    assert orjson.loads(order["detail"])["order_id"] == "A-1"
    cart = by_type["cart.updated"]
    assert (cart["value"], cart["currency"]) == (Decimal("129.90"), "EUR")
    product = orjson.loads(by_type["product.viewed"]["detail"])
    assert product["product"]["name"] == "Trail Runner X"
    assert product["campaign"] == {"source": "newsletter", "medium": "email"}
    identified = orjson.loads(by_type["visitor.identified"]["detail"])
    assert identified["traits"] == {"email": "maija@example.fi", "name": "Maija"}
    assert by_type["product.viewed"]["title"] == "Trail Runner X"


async def test_bad_tracking_records_are_dead_lettered_with_their_reason(chat, db) -> None:
    site_id, visitor_id = unique("site"), unique("v")
    invalid = tracking_event(
        site_id, visitor_id, "cart_updated", {"items": [], "value": -5, "currency": "EUR"}
    )
    malformed = f'{{"site_id": "{site_id}", "visitor_id": "{visitor_id}", "type": '.encode()
    after = tracking_event(site_id, visitor_id, "page_viewed", {"page_type": "home"})
    key = f"{site_id}:{visitor_id}".encode()
    await produce(
        chat.bootstrap,
        TRACKING_EVENTS.name,
        key,
        orjson.dumps(invalid),
        malformed,
        orjson.dumps(after),
    )

    letters = await read_events(
        chat.bootstrap,
        TRACKING_DLQ.name,
        match=lambda e: (
            visitor_id in str(e.payload.get("raw"))
            and str(e.payload.get("source", "")).startswith("chat-activity:")
        ),
        until=lambda found: len(found) >= 2,
        timeout_s=GROUP_FORMED_TIMEOUT_S,
    )
    by_reason = {
        letter.payload.reason: letter
        for letter in (DeadLettered.model_validate(e.value) for e in letters)
    }
    assert set(by_reason) == {"schema_invalid", "malformed_json"}
    schema = by_reason["schema_invalid"]
    assert schema.site_id == site_id
    assert orjson.loads(schema.payload.raw) == invalid
    assert any(error.loc.endswith("payload.value") for error in schema.payload.errors)
    assert by_reason["malformed_json"].payload.raw == malformed.decode()

    # the good record after them is stored, the bad ones are not
    async def stored() -> bool:
        return len(await activity_rows(db, site_id, visitor_id)) >= 1

    await eventually(stored, timeout_s=GROUP_FORMED_TIMEOUT_S, what="the good record stored")
    rows = await activity_rows(db, site_id, visitor_id)
    assert [str(row["event_id"]) for row in rows] == [after["event_id"]]


async def test_the_sweep_deletes_rows_past_the_retention_in_batches(db) -> None:
    site_id, visitor_id = unique("site"), unique("v")
    now = datetime.now(UTC)
    old = [now - timedelta(days=100, minutes=n) for n in range(7)]
    recent = [now - timedelta(days=10), now - timedelta(minutes=1)]
    await db.executemany(
        """INSERT INTO chat.activity (event_id, site_id, visitor_id, type, occurred_at)
           VALUES ($1, $2, $3, 'page.viewed', $4)""",
        [
            (uuid7(int(moment.timestamp() * 1000)), site_id, visitor_id, moment)
            for moment in [*old, *recent]
        ],
    )
    deleted = await sweep_expired(db, retention_days=90, now=now, batch=3)
    assert deleted >= 7  # other tests' rows are never that old, but a shared db may hold some
    left = await db.fetch(
        """SELECT occurred_at FROM chat.activity WHERE site_id = $1 ORDER BY occurred_at""",
        site_id,
    )
    assert [row["occurred_at"] for row in left] == recent
