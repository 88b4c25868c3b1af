"""The visitor card's use case on a fake unit of work: who is not found, the paging of the
history (one row more than asked says whether an older page exists), the live snapshot over the
history, and that the card only reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from chat.activity import domain, service
from chat.activity.store import ActivityStore
from chat.errors import Invalid, NotFound
from chat.features import NoVisitors
from chat.refs import AgentRef
from fake_uow import FakeUnitsOfWork

SITE = "shop"
ANN = AgentRef(SITE, "ann")
NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def page(minutes_ago: int, url: str = "https://shop.test/") -> dict[str, Any]:
    return {
        "event_id": UUID(int=10_000 - minutes_ago),
        "session_id": "s-1",
        "type": "page.viewed",
        "occurred_at": NOW - timedelta(minutes=minutes_ago),
        "url": url,
        "title": "Shop",
        "value": None,
        "currency": None,
        "detail": {},
    }


class FakeActivityStore:
    """A visitor's stored activity, newest first, on one site."""

    def __init__(self, rows: list[dict[str, Any]] | None = None) -> None:
        self.rows = rows or []
        self.visitor_row: dict[str, Any] | None = None
        self.conversation_rows: list[dict[str, Any]] = []
        self.lead_rows: list[dict[str, Any]] = []
        self.asked: list[tuple[str, str, Any, int]] = []

    async def history(
        self, site_id: str, visitor_id: str, *, before: Any, limit: int
    ) -> list[dict[str, Any]]:
        self.asked.append((site_id, visitor_id, before, limit))
        if site_id != SITE or visitor_id != "v1":
            return []
        rows = self.rows
        if before is not None:
            rows = [r for r in rows if (r["occurred_at"], r["event_id"]) < before]
        return rows[:limit]

    async def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return self.visitor_row if (site_id, visitor_id) == (SITE, "v1") else None

    async def conversations(
        self, site_id: str, visitor_id: str, *, limit: int, messages_each: int
    ) -> list[dict[str, Any]]:
        assert (limit, messages_each) == (service.CONVERSATIONS, service.MESSAGES_EACH)
        return self.conversation_rows if (site_id, visitor_id) == (SITE, "v1") else []

    async def identified(self, site_id: str, visitor_id: str) -> list[dict[str, Any]]:
        return []

    async def visit_count(self, site_id: str, visitor_id: str) -> int:
        return len({row["session_id"] for row in self.rows})

    async def leads(self, site_id: str, visitor_id: str) -> list[dict[str, Any]]:
        return self.lead_rows


class LiveOnly:
    """The live list holding one visitor's snapshot."""

    def __init__(self, snapshots: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.snapshots = snapshots

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return self.snapshots.get((site_id, visitor_id))

    def brief(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return None


class BrokenLive(LiveOnly):
    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        raise RuntimeError("the live list is broken")


async def card(
    activity: FakeActivityStore,
    *,
    visitor_id: str = "v1",
    agent: AgentRef = ANN,
    visitors: Any = None,
    **options: Any,
) -> dict[str, Any]:
    uow = FakeUnitsOfWork({ActivityStore: activity})
    found = await service.visitor_card(
        uow=uow,
        visitors=visitors or NoVisitors(),
        agent=agent,
        visitor_id=visitor_id,
        **options,
    )
    assert uow.committed == []  # the card only reads
    assert uow.rolled_back == []
    return found


async def test_a_visitor_nothing_is_known_of_is_not_found() -> None:
    with pytest.raises(NotFound) as refused:
        await card(FakeActivityStore(), visitor_id="nobody")
    assert (refused.value.code, refused.value.detail) == (
        "not_found",
        "no such visitor on this site",
    )


async def test_another_sites_visitor_is_not_found() -> None:
    activity = FakeActivityStore([page(5)])
    activity.visitor_row = {"email": "eve@example.com", "name": None, "created_at": NOW}
    with pytest.raises(NotFound):
        await card(activity, agent=AgentRef("other-shop", "ann"))
    assert activity.asked[0][0] == "other-shop"  # every read is scoped to the agent's site


async def test_a_cursor_the_card_did_not_return_is_refused_before_any_read() -> None:
    activity = FakeActivityStore([page(5)])
    uow = FakeUnitsOfWork({ActivityStore: activity})
    with pytest.raises(Invalid) as refused:
        await service.visitor_card(
            uow=uow, visitors=NoVisitors(), agent=ANN, visitor_id="v1", before="not-a-cursor"
        )
    assert (refused.value.code, refused.value.detail) == (
        "invalid",
        "before: not a cursor this card returned",
    )
    assert uow.reads == 0


async def test_the_history_pages_by_the_limit_and_the_next_page_carries_only_history() -> None:
    activity = FakeActivityStore([page(minutes) for minutes in range(1, 6)])  # newest first
    first = await card(activity, limit=2)
    assert activity.asked[-1] == (SITE, "v1", None, 3)  # one more than asked
    [visit] = first["history"]["visits"]
    assert [e["occurred_at"] for e in visit["events"]] == [
        (NOW - timedelta(minutes=1)).isoformat(),
        (NOW - timedelta(minutes=2)).isoformat(),
    ]
    cursor = first["history"]["next"]
    assert cursor == domain.encode_cursor(NOW - timedelta(minutes=2), UUID(int=10_000 - 2))

    second = await card(activity, limit=2, before=cursor)
    assert set(second) == {"visitor_id", "history"}
    assert activity.asked[-1][2] == (NOW - timedelta(minutes=2), UUID(int=10_000 - 2))
    [visit] = second["history"]["visits"]
    assert len(visit["events"]) == 2
    assert second["history"]["next"] is not None

    last = await card(activity, limit=2, before=second["history"]["next"])
    assert len(last["history"]["visits"][0]["events"]) == 1
    assert last["history"]["next"] is None  # nothing older


async def test_a_visitor_only_on_the_site_now_has_a_card_from_the_live_snapshot() -> None:
    live = LiveOnly(
        {
            (SITE, "v1"): {
                "url": "https://shop.test/p/boots",
                "title": "Boots",
                "last_seen_at": NOW.isoformat(),
                "cart_value": 120.0,
                "currency": "EUR",
                "cart_items": 2,
                "score": 80.0,
                "segment": "hot",
                "sessions": 3,
                "returning": True,
            }
        }
    )
    found = await card(FakeActivityStore(), visitors=live)
    assert found["live"] is not None
    assert (found["live"]["score"], found["live"]["segment"]) == (80.0, "hot")
    assert found["now"] == {
        "url": "https://shop.test/p/boots",
        "title": "Boots",
        "at": NOW.isoformat(),
        "cart": {"value": 120.0, "currency": "EUR", "items": [], "quantity": 2},
    }
    assert (found["source"]["returning"], found["source"]["visits"]) == (True, 3)
    assert found["history"] == {"visits": [], "next": None}


async def test_without_the_live_list_the_card_shows_the_history() -> None:
    activity = FakeActivityStore([page(3, "https://shop.test/a")])
    found = await card(activity, visitors=BrokenLive({}))
    assert found["live"] is None
    assert found["now"]["url"] == "https://shop.test/a"
    assert found["summary"]["visits"] == 1


async def test_conversations_and_leads_are_shown_with_their_agents() -> None:
    activity = FakeActivityStore()
    conversation_id = UUID("0192f0c3-aaaa-7bbb-8ccc-000000000001")
    activity.conversation_rows = [
        {
            "conversation_id": conversation_id,
            "status": "closed",
            "team": "sales",
            "agent_id": "ann",
            "agent_name": "Ann",
            "email": "eve@example.com",
            "tags": None,
            "rule_id": None,
            "created_at": NOW,
            "closed_at": NOW + timedelta(minutes=5),
            "messages": [
                {
                    "seq": 1,
                    "author": "visitor",
                    "agent_name": None,
                    "text": "Hi",
                    "created_at": NOW,
                },
                {
                    "seq": 2,
                    "author": "agent",
                    "agent_name": "Ann",
                    "text": "Hello!",
                    "created_at": NOW,
                },
            ],
        }
    ]
    activity.lead_rows = [
        {
            "mark_id": UUID(int=7),
            "conversation_id": conversation_id,
            "agent_id": None,
            "agent_name": None,
            "validation": "valid",
            "note": "wants boots",
            "created_at": NOW,
        }
    ]
    found = await card(activity)
    [shown] = found["conversations"]
    assert shown["agent"] == {"id": "ann", "name": "Ann"}
    assert shown["tags"] == []
    assert [(m["author"], m["agent_name"]) for m in shown["messages"]] == [
        ("visitor", None),
        ("agent", "Ann"),
    ]
    assert shown["closed_at"] == (NOW + timedelta(minutes=5)).isoformat()
    assert found["identity"]["email"] == "eve@example.com"  # given in the chat
    assert found["leads"] == [
        {
            "id": str(UUID(int=7)),
            "conversation_id": str(conversation_id),
            "agent": None,
            "validation": "valid",
            "note": "wants boots",
            "created_at": NOW.isoformat(),
        }
    ]
