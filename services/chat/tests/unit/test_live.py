"""The live list's registry without I/O: snapshots in, coalesced deltas out, idle visitors
leaving, chat's own news merged into the badges, and the list's filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
from beckon_contracts.chat_signals import InvitationSignal, ShownInvitation
from beckon_contracts.topics import CHAT_SIGNALS
from beckon_contracts.visitors import VisitorSnapshotPayload
from chat.live.domain import Filter, Registry, compact_row, select
from chat.live.reader import LiveVisitors

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
T = NOW.timestamp()


def snapshot(seen_ago_s: float = 0.0, **fields: Any) -> VisitorSnapshotPayload:
    values: dict[str, Any] = {
        "url": "https://shop.test/p/boots",
        "title": "Boots",
        "page_type": "product",
        "session_started_at": NOW - timedelta(minutes=5),
        "last_seen_at": NOW - timedelta(seconds=seen_ago_s),
        "time_on_site_s": 300.0,
        "sessions": 1,
        "returning": False,
        "source": "google",
        "campaign": "spring",
        "cart_value": 0.0,
        "score": 10.0,
        "segment": "cold",
        "invited": False,
    }
    values.update(fields)
    return VisitorSnapshotPayload.model_validate(values)


def delta(registry: Registry, site: str = "s") -> dict[str, Any] | None:
    text = registry.take_delta(site)
    return orjson.loads(text) if text is not None else None


def test_a_snapshot_enters_the_list_and_the_full_payload_is_kept() -> None:
    registry = Registry(idle_after_s=600)
    assert registry.apply("s", "v1", snapshot(cart_value=120.5, currency="EUR", name="Ann"), T)
    full = registry.visitor("s", "v1")
    assert full is not None
    assert full["visitor_id"] == "v1"
    assert full["cart_value"] == 120.5
    assert full["name"] == "Ann"  # the card sees everything, identified or not
    assert full["session_started_at"] == "2025-05-01T11:55:00Z"
    assert registry.visitor("s", "other") is None
    assert registry.visitor("other-site", "v1") is None
    snap = orjson.loads(registry.snapshot_text("s"))
    assert snap["t"] == "visitors.snapshot"
    [row] = snap["visitors"]
    assert row["id"] == "v1"
    assert row["cart"] == 120.5
    assert row["name"] is None  # the list names only identified visitors
    assert "score_breakdown" not in row  # the list's rows stay compact


def test_deltas_coalesce_each_visitor_to_its_latest_and_then_are_empty() -> None:
    registry = Registry(idle_after_s=600)
    for seconds, url in enumerate(["/a", "/b", "/c"]):
        registry.apply("s", "v1", snapshot(seen_ago_s=10 - seconds, url=url), T)
    registry.apply("s", "v2", snapshot(), T)
    frame = delta(registry)
    assert frame is not None
    assert frame["t"] == "visitors.delta"
    assert sorted((r["id"], r["url"]) for r in frame["upsert"]) == [
        ("v1", "/c"),
        ("v2", "https://shop.test/p/boots"),
    ]
    assert frame["remove"] == []
    assert delta(registry) is None  # nothing new since


def test_an_older_snapshot_does_not_replace_a_newer_one() -> None:
    registry = Registry(idle_after_s=600)
    registry.apply("s", "v1", snapshot(seen_ago_s=1, url="/new"), T)
    assert not registry.apply("s", "v1", snapshot(seen_ago_s=30, url="/old"), T)
    assert registry.visitor("s", "v1")["url"] == "/new"  # type: ignore[index]


def test_a_removal_cancels_a_pending_upsert_and_a_return_cancels_the_removal() -> None:
    registry = Registry(idle_after_s=600)
    registry.apply("s", "v1", snapshot(), T)
    delta(registry)
    registry.apply("s", "v1", snapshot(url="/x"), T)
    assert registry.remove("s", "v1")
    assert delta(registry) == {"t": "visitors.delta", "upsert": [], "remove": ["v1"]}
    registry.remove("s", "v2")  # unknown: nothing to say
    assert delta(registry) is None
    registry.apply("s", "v1", snapshot(), T)
    registry.remove("s", "v1")
    registry.apply("s", "v1", snapshot(url="/back"), T)
    frame = delta(registry)
    assert frame is not None
    assert [r["url"] for r in frame["upsert"]] == ["/back"]
    assert frame["remove"] == []


def test_idle_visitors_leave_and_stale_snapshots_never_enter() -> None:
    registry = Registry(idle_after_s=600)
    registry.apply("s", "fresh", snapshot(seen_ago_s=10), T)
    registry.apply("s", "idle-soon", snapshot(seen_ago_s=500), T)
    assert not registry.apply("s", "stale", snapshot(seen_ago_s=700), T)
    delta(registry)
    assert registry.expire(T + 50) == 0
    assert registry.expire(T + 150) == 1
    assert registry.visitor("s", "idle-soon") is None
    assert registry.visitor("s", "fresh") is not None
    assert delta(registry) == {"t": "visitors.delta", "upsert": [], "remove": ["idle-soon"]}
    assert registry.expire(T + 1000) == 1
    assert registry.count("s") == 0


def test_a_future_clock_does_not_keep_a_visitor_forever() -> None:
    registry = Registry(idle_after_s=600)
    registry.apply("s", "v1", snapshot(seen_ago_s=-3600), T)  # the producer's clock is ahead
    assert registry.expire(T + 601) == 1


def test_chat_news_changes_the_badges_and_survives_the_next_snapshot() -> None:
    registry = Registry(idle_after_s=600)
    registry.apply("s", "v1", snapshot(), T)
    delta(registry)
    assert registry.note("s", "v1", T, chatting=True)
    frame = delta(registry)
    assert frame is not None
    assert frame["upsert"][0]["chatting"] is True
    # triggers does not know about this chat: its next snapshot must not hide it
    registry.apply("s", "v1", snapshot(url="/cart"), T + 1)
    assert registry.visitor("s", "v1")["chatting"] is True  # type: ignore[index]
    assert not registry.note("s", "v1", T, chatting=True)  # no change, no delta
    delta(registry)
    assert delta(registry) is None
    registry.note("s", "v1", T + 2, chatting=False)
    assert registry.visitor("s", "v1")["chatting"] is False  # type: ignore[index]


def test_a_personal_invitation_marks_the_session_invited_but_not_the_next_one() -> None:
    registry = Registry(idle_after_s=600)
    registry.note("s", "v1", T, invited_at=T)  # news can come before the first snapshot
    registry.apply("s", "v1", snapshot(), T)
    assert registry.visitor("s", "v1")["invited"] is True  # type: ignore[index]
    later = NOW + timedelta(hours=1)
    registry.apply(
        "s", "v1", snapshot(session_started_at=later, last_seen_at=later), later.timestamp()
    )
    assert registry.visitor("s", "v1")["invited"] is False  # type: ignore[index]


def row(**fields: Any) -> dict[str, Any]:
    return compact_row(fields.pop("id", "v"), snapshot(**fields))


def test_filters() -> None:
    rows = [
        row(id="big-cart", cart_value=150.0, score=40, segment="warm"),
        row(id="hot", score=90, segment="hot", returning=True, sessions=3),
        row(id="checkout", page_type="checkout", cart_value=99.99, url="/checkout"),
        {**row(id="invited"), "invited": True},
        row(id="named", identified=True, name="Maija Meikäläinen"),
    ]
    ids = lambda wanted: {r["id"] for r in select(rows, wanted)}  # noqa: E731
    assert ids(Filter(min_cart=100)) == {"big-cart"}
    assert ids(Filter(segment="hot")) == {"hot"}
    assert ids(Filter(page_type="checkout")) == {"checkout"}
    assert ids(Filter(returning=True)) == {"hot"}
    assert ids(Filter(invited=False)) == {"big-cart", "hot", "checkout", "named"}
    assert ids(Filter(text="MEIKÄ")) == {"named"}
    assert ids(Filter(text="spring")) == {r["id"] for r in rows}  # the campaign
    assert ids(Filter(min_cart=100, segment="hot")) == set()


def test_sorting_is_stable_and_by_the_chosen_column() -> None:
    rows = [
        row(id="b", score=10, cart_value=5),
        row(id="a", score=10, cart_value=50),
        row(id="c", score=70, cart_value=0),
    ]
    assert [r["id"] for r in select(rows, Filter())] == ["c", "a", "b"]
    assert [r["id"] for r in select(rows, Filter(), sort="cart")] == ["a", "b", "c"]
    assert [r["id"] for r in select(rows, Filter(), sort="cart", descending=False)] == [
        "c",
        "b",
        "a",
    ]
    assert [r["id"] for r in select(rows, Filter(), limit=1)] == ["c"]


def test_a_row_names_the_visitor_and_says_device_browser_and_landing() -> None:
    row = compact_row(
        "0196a1b2-0000-7000-8000-000000000001",
        snapshot(
            device="mobile",
            browser="Safari",
            os="iOS",
            source="direct",
            campaign=None,
            referrer="https://shop.test/",  # the store's own page: not where the visit came from
        ),
    )
    assert row["label"] == {"en": "Purple Moose 592", "fi": "Violetti hirvi 592"}
    assert (row["device"], row["browser"], row["os"]) == ("mobile", "Safari", "iOS")
    assert row["landing"] == {"kind": "direct", "text": None}
    named = compact_row("v", snapshot(identified=True, name="Maija", email="m@example.fi"))
    assert named["label"]["fi"] == "Maija"
    assert select([row], Filter(text="violetti hirvi"))  # the list's search finds the name


def test_an_email_given_in_the_chat_names_the_visitor_in_the_list() -> None:
    registry = Registry(idle_after_s=600)
    registry.apply("s", "v1", snapshot(), T)
    registry.take_delta("s")
    assert registry.note("s", "v1", T, email="anna@example.com")
    frame = delta(registry)
    assert frame is not None
    assert frame["upsert"][0]["label"]["en"] == "anna@example.com"
    assert not registry.note("s", "v1", T, email="anna@example.com")  # nothing new


async def test_a_personal_invitation_signal_marks_the_visitor_invited_and_a_rules_does_not() -> (
    None
):
    live = LiveVisitors("localhost:1", "test", idle_after_s=600, push_interval_s=1)
    live.registry.apply("s", "v1", snapshot(), T)
    live.registry.apply("s", "v2", snapshot(), T)

    def signal(visitor_id: str, rule_id: str | None) -> bytes:
        shown = ShownInvitation(
            id=UUID("0192f0c3-aaaa-7bbb-8ccc-000000000009"),
            message="Hi",
            team="sales",
            expires_at=NOW + timedelta(minutes=10),
            rule_id=rule_id,
        )
        return (
            InvitationSignal(site_id="s", visitor_id=visitor_id, invitation=shown)
            .model_dump_json()
            .encode()
        )

    live.handle_news(CHAT_SIGNALS.name, signal("v1", None), T)
    live.handle_news(CHAT_SIGNALS.name, signal("v2", "size-help"), T)  # triggers' snapshot says
    live.handle_news(CHAT_SIGNALS.name, b'{"kind":"invitation","site_id":"s"}', T)  # skipped
    assert live.registry.visitor("s", "v1")["invited"] is True  # type: ignore[index]
    assert live.registry.visitor("s", "v2")["invited"] is False  # type: ignore[index]
