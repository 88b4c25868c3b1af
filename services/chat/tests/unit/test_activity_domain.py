"""The activity recorder's pure parts: a tracking event as a `chat.activity` row (what is
kept, what is trimmed, what is skipped), a fetch split into rows and dead letters, visits,
summaries, identity and the card's cursor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from beckon_contracts.ids import uuid7
from beckon_contracts.tracking import parse_tracking_event
from chat.activity import domain
from chat.activity.recorder import read_batch
from chat.visitors import pseudonym

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def event(type_: str, payload: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "event_id": str(uuid7()),
        "type": type_,
        "occurred_at": T0.isoformat(),
        "site_id": "shop",
        "visitor_id": "v-1",
        "session_id": "s-1",
        "context": {
            "page": {
                "url": "https://shop.test/p/trail",
                "path": "/p/trail",
                "title": "Trail Runner X",
                "referrer": "https://www.google.com/",
            },
            "campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
        },
    }
    if payload is not None:
        value["payload"] = payload
    value.update(extra)
    return value


def row_of(value: dict[str, Any]) -> domain.ActivityRow | None:
    return domain.to_row(parse_tracking_event(orjson.dumps(value)))


ITEMS = [
    {"product_id": "trail", "name": "Trail Runner X", "category": "shoes", "price": 129.9},
    {"product_id": "sock", "name": "Sock", "price": 9.5, "quantity": 2},
]


def test_a_product_view_keeps_the_product_the_page_and_where_the_visit_came_from() -> None:
    value = event(
        "product_viewed",
        {
            "product_id": "trail",
            "name": "Trail Runner X",
            "category": "shoes",
            "price": 129.9,
            "currency": "eur",
        },
    )
    row = row_of(value)
    assert row is not None
    assert row.event_id == UUID(value["event_id"])
    assert (row.site_id, row.visitor_id, row.session_id) == ("shop", "v-1", "s-1")
    assert row.type == "product.viewed"
    assert row.occurred_at == T0
    assert (row.url, row.title) == ("https://shop.test/p/trail", "Trail Runner X")
    assert row.value is None  # value is a cart's or an order's
    assert row.currency == "EUR"
    assert row.detail == {
        "product": {
            "product_id": "trail",
            "name": "Trail Runner X",
            "category": "shoes",
            "price": 129.9,
        },
        "campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
        "referrer": "https://www.google.com/",
        "path": "/p/trail",
    }


def test_a_cart_update_stores_its_value_and_its_lines() -> None:
    row = row_of(event("cart_updated", {"items": ITEMS, "value": 148.9, "currency": "EUR"}))
    assert row is not None
    assert row.type == "cart.updated"
    assert row.value == Decimal("148.9")
    assert row.currency == "EUR"
    assert row.detail["lines"] == 2
    assert row.detail["quantity"] == 3
    assert row.detail["items"][1] == {
        "product_id": "sock",
        "name": "Sock",
        "category": None,
        "price": 9.5,
        "quantity": 2,
    }


def test_an_order_stores_its_id_exact_value_and_currency_for_the_reports() -> None:
    row = row_of(
        event(
            "order_completed",
            {"order_id": "A-1001", "value": 1234567.89, "currency": "SEK", "items": ITEMS},
        )
    )
    assert row is not None
    assert row.type == "order.completed"
    assert row.value == Decimal("1234567.89")
    assert row.currency == "SEK"
    assert row.detail["order_id"] == "A-1001"
    assert [item["product_id"] for item in row.detail["items"]] == ["trail", "sock"]


def test_an_order_keeps_who_reported_it_and_the_trackers_cap_flag() -> None:
    payload = {"value": 999_999_999, "currency": "EUR"}
    old = row_of(event("order_completed", payload))  # recorded before the tracker said who
    assert old is not None
    assert (old.detail["reported_by"], "over_cap" in old.detail) == ("browser", False)
    flagged = event("order_completed", payload)
    flagged["context"] |= {"reported_by": "browser", "over_browser_cap": True}
    row = row_of(flagged)
    assert row is not None
    assert (row.detail["reported_by"], row.detail["over_cap"]) == ("browser", True)
    server = event("order_completed", payload)
    server["context"] |= {"reported_by": "server"}
    row = row_of(server)
    assert row is not None
    assert (row.detail["reported_by"], "over_cap" in row.detail) == ("server", False)


def test_long_carts_keep_twenty_lines_but_the_exact_count_and_value() -> None:
    items = [{"product_id": f"p{n}", "price": 1, "quantity": 1} for n in range(60)]
    row = row_of(event("cart_updated", {"items": items, "value": 60, "currency": "EUR"}))
    assert row is not None
    assert len(row.detail["items"]) == domain.MAX_ITEMS == 20
    assert row.detail["lines"] == 60
    assert row.detail["quantity"] == 60
    assert row.value == Decimal("60")


def test_identify_traits_are_trimmed_to_scalars_and_bounded() -> None:
    traits: dict[str, Any] = {
        "email": "maija@example.fi",
        "name": "Maija\x00 Meikäläinen",
        "vip": True,
        "orders": 3,
        "address": {"city": "Oulu"},  # nested: left out
        "tags": ["a", "b"],  # list: left out
        "bio": "x" * 5000,
    }
    traits.update({f"extra_{n}": n for n in range(60)})
    row = row_of(event("identified", {"user_id": "u-7", "traits": traits}))
    assert row is not None
    assert row.type == "visitor.identified"
    kept = row.detail["traits"]
    assert kept["email"] == "maija@example.fi"
    assert kept["name"] == "Maija Meikäläinen"  # NUL removed: Postgres cannot store it
    assert kept["vip"] is True
    assert "address" not in kept
    assert "tags" not in kept
    assert len(kept["bio"]) == domain.MAX_TEXT
    assert len(kept) == domain.MAX_TRAITS
    assert row.detail["user_id"] == "u-7"


def test_nul_characters_never_reach_postgres() -> None:
    value = event("page_viewed", {"page_type": "home"})
    value["context"]["page"]["title"] = "Home\x00page"
    row = row_of(value)
    assert row is not None
    assert row.title == "Homepage"
    assert row.detail["page_type"] == "home"


def test_heartbeats_are_not_recorded() -> None:
    assert row_of(event("heartbeat", {"seconds_on_page": 30})) is None


def test_custom_events_keep_their_name_and_few_properties() -> None:
    properties = {f"k{n}": n for n in range(40)}
    row = row_of(event("custom", {"event": "size_guide_opened", "properties": properties}))
    assert row is not None
    assert row.type == "custom.tracked"
    assert row.detail["event"] == "size_guide_opened"
    assert len(row.detail["properties"]) == domain.MAX_PROPERTIES


@dataclass
class FakeRecord:
    value: bytes
    partition: int = 3
    offset: int = 0


def test_a_fetch_splits_into_rows_and_dead_letters_with_their_reasons() -> None:
    good = event("page_viewed", {"page_type": "home"})
    bad_schema = event(
        "product_viewed", {"product_id": "x", "name": "X", "price": "free", "currency": "EUR"}
    )
    heartbeat = event("heartbeat", {"seconds_on_page": 5})
    records = [
        FakeRecord(orjson.dumps(good)),
        FakeRecord(orjson.dumps(good)),  # the same event twice in one fetch
        FakeRecord(orjson.dumps(bad_schema)),
        FakeRecord(b"{not json"),
        FakeRecord(orjson.dumps(heartbeat)),
    ]
    rows, letters = read_batch(records)  # type: ignore[arg-type]
    assert [str(row.event_id) for row in rows] == [good["event_id"]]
    assert [letter.reason for letter in letters] == ["schema_invalid", "malformed_json"]
    dead = letters[0].record()
    assert dead.site_id == "shop"
    assert dead.payload.source == "chat-activity:tracking.events:3"
    assert (dead.payload.topic, dead.payload.partition, dead.payload.offset) == (
        "tracking.events",
        3,
        0,
    )
    assert any(error.loc == "product_viewed.payload.price" for error in dead.payload.errors)
    assert orjson.loads(dead.payload.raw) == bad_schema
    assert letters[1].record().site_id == "unknown"


def test_the_retention_cutoff_id_orders_below_every_later_event() -> None:
    cutoff = T0
    below = domain.retention_cutoff_id(cutoff)
    ms = int(cutoff.timestamp() * 1000)
    assert uuid7(ms - 1) < below <= uuid7(ms) < uuid7(ms + 1)


# ---- the card's shaping -------------------------------------------------------------------


def stored(
    type_: str,
    minutes: float,
    *,
    session: str | None = "s-1",
    value: str | None = None,
    detail: dict[str, Any] | None = None,
    url: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": uuid7(int((T0 + timedelta(minutes=minutes)).timestamp() * 1000)),
        "session_id": session,
        "type": type_,
        "occurred_at": T0 + timedelta(minutes=minutes),
        "url": url,
        "title": title,
        "value": Decimal(value) if value is not None else None,
        "currency": "EUR" if value is not None else None,
        "detail": detail or {},
    }


def product(minutes: float, product_id: str, session: str | None = "s-1") -> dict[str, Any]:
    return stored(
        "product.viewed",
        minutes,
        session=session,
        detail={"product": {"product_id": product_id, "name": product_id, "price": 10.0}},
        url=f"https://shop.test/p/{product_id}",
        title=product_id.title(),
    )


def newest_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: row["occurred_at"], reverse=True)


def test_rows_group_into_visits_by_session_newest_first() -> None:
    rows = newest_first(
        [
            stored("page.viewed", 0, session="s-old"),
            product(1, "a", session="s-old"),
            stored("page.viewed", 60 * 24, session="s-new"),
            product(60 * 24 + 1, "b", session="s-new"),
        ]
    )
    visits = domain.group_visits(rows)
    assert [[row["session_id"] for row in visit] for visit in visits] == [
        ["s-new", "s-new"],
        ["s-old", "s-old"],
    ]
    assert visits[0][0]["type"] == "product.viewed"  # events newest first too


def test_events_without_a_session_split_into_visits_after_thirty_idle_minutes() -> None:
    rows = newest_first(
        [
            stored("page.viewed", 0, session=None),
            stored("page.viewed", 20, session=None),
            stored("page.viewed", 20 + 31, session=None),
        ]
    )
    assert [len(visit) for visit in domain.group_visits(rows)] == [1, 2]


def test_a_visit_summary_counts_pages_distinct_products_the_last_cart_and_orders() -> None:
    visit = newest_first(
        [
            stored("page.viewed", 0),
            product(1, "a"),
            product(2, "b"),
            product(3, "a"),
            product(4, "c"),
            product(5, "d"),
            stored("cart.updated", 6, value="99.00"),
            stored("cart.updated", 7, value="129.00"),
        ]
    )
    assert domain.visit_summary(visit) == {
        "pages": 6,
        "products": 4,
        "cart_value": 129.0,
        "currency": "EUR",
        "orders": 0,
        "order_value": None,
    }
    ordered = newest_first([*visit, stored("order.completed", 9, value="129.00")])
    summary = domain.visit_summary(ordered)
    assert (summary["orders"], summary["order_value"], summary["cart_value"]) == (1, 129.0, 0.0)


def test_visits_view_names_the_source_and_the_events() -> None:
    rows = newest_first(
        [
            stored(
                "page.viewed",
                0,
                detail={
                    "campaign": {"source": "google", "medium": "cpc"},
                    "referrer": "https://g/",
                },
            ),
            product(1, "a"),
        ]
    )
    (visit,) = domain.visits_view(rows)
    assert visit["campaign"] == {"source": "google", "medium": "cpc"}
    assert visit["referrer"] == "https://g/"
    assert visit["started_at"] == T0.isoformat()
    assert [event["type"] for event in visit["events"]] == ["product.viewed", "page.viewed"]
    assert visit["events"][0]["detail"]["product"]["product_id"] == "a"


def test_the_current_page_and_cart_come_from_the_newest_rows() -> None:
    rows = newest_first(
        [
            product(0, "a"),
            stored("cart.updated", 1, value="10.00", detail={"items": [{"product_id": "a"}]}),
            stored("page.viewed", 2, url="https://shop.test/cart", title="Cart"),
        ]
    )
    now = domain.latest_state(rows)
    assert (now["url"], now["title"]) == ("https://shop.test/cart", "Cart")
    assert now["cart"]["value"] == 10.0
    after_order = newest_first([*rows, stored("order.completed", 3, value="10.00")])
    assert domain.latest_state(after_order)["cart"] is None


def test_identity_prefers_what_the_visitor_told_chat_then_traits_then_triggers() -> None:
    traits = domain.merged_traits(
        [
            {"detail": {"traits": {"email": "new@x.fi", "plan": "pro"}}},
            {"detail": {"traits": {"email": "old@x.fi", "name": "Old"}, "user_id": "u1"}},
        ]
    )
    assert traits == {"email": "new@x.fi", "name": "Old", "plan": "pro", "user_id": "u1"}
    told = domain.identity(
        visitor_id="v1",
        visitor={"email": "chat@x.fi", "name": None},
        conversation_emails=[None],
        traits=traits,
        live={"email": "live@x.fi"},
    )
    assert (told["email"], told["name"]) == ("chat@x.fi", "Old")
    assert told["label"] == {"en": "Old", "fi": "Old"}  # the card's title, as in the lists
    anonymous = domain.identity(
        visitor_id="v1", visitor=None, conversation_emails=[], traits={}, live=None
    )
    assert anonymous == {
        "label": pseudonym("v1"),
        "email": None,
        "name": None,
        "identified": False,
        "traits": {},
        "verified": False,
        "verified_user_id": None,
        "verified_email": None,
        "verified_name": None,
    }


def test_only_an_identify_the_store_vouched_for_shows_as_verified() -> None:
    verified = {"detail": {"traits": {"email": "a@x.fi"}, "user_id": "u1", "verified": True}}
    claimed = {"detail": {"traits": {"email": "b@x.fi"}, "user_id": "u2", "verified": False}}
    old = {"detail": {"traits": {"email": "c@x.fi"}, "user_id": "u3"}}  # before verification
    assert domain.verified_user([verified, claimed]) == "u1"
    assert domain.verified_user([claimed, verified]) is None  # the newest is a claim
    assert domain.verified_user([old]) is None
    assert domain.verified_user([]) is None
    card = domain.identity(
        visitor_id="v1",
        visitor=None,
        conversation_emails=[],
        traits=domain.merged_traits([claimed]),
        live=None,
        verified_user_id=domain.verified_user([claimed]),
    )
    assert (card["email"], card["verified"]) == ("b@x.fi", False)
    assert (card["verified_email"], card["verified_name"]) == (None, None)


def test_what_the_store_vouched_for_comes_before_what_the_visitor_typed() -> None:
    traits = {"email": "ann@x.fi", "name": "Ann"}
    vouched = {"detail": {"traits": traits, "user_id": "u1", "verified": True}}
    newest = domain.verified_identify([vouched])
    assert newest is not None
    card = domain.identity(
        visitor_id="v1",
        visitor={"email": "typed@x.fi", "name": "Typed"},
        conversation_emails=["left@x.fi"],
        traits=domain.merged_traits([vouched]),
        live=None,
        verified_user_id=newest["user_id"],
        verified_traits=newest["traits"],
    )
    assert (card["email"], card["name"]) == ("ann@x.fi", "Ann")
    assert (card["verified_email"], card["verified_name"]) == ("ann@x.fi", "Ann")
    # traits without a verified user id are never called verified, whoever passes them
    claimed = domain.identity(
        visitor_id="v1",
        visitor={"email": "typed@x.fi"},
        conversation_emails=[],
        traits={},
        live=None,
        verified_traits={"email": "ann@x.fi"},
    )
    assert (claimed["email"], claimed["verified_email"], claimed["verified"]) == (
        "typed@x.fi",
        None,
        False,
    )


def _widget_row(newest: dict[str, Any] | None, **given: Any) -> domain.ActivityRow | None:
    options = {"user_id": "u1", "email": "ann@x.fi", "name": "Ann", **given}
    return domain.widget_identified_row(
        site_id="s1",
        visitor_id="v1",
        newest=newest,
        event_id=uuid7(),
        occurred_at=datetime(2025, 5, 1, tzinfo=UTC),
        **options,
    )


def test_the_widgets_verified_user_is_recorded_once_as_a_verified_identify() -> None:
    row = _widget_row(None)
    assert row is not None
    assert (row.type, row.site_id, row.visitor_id) == ("visitor.identified", "s1", "v1")
    assert row.detail == {
        "user_id": "u1",
        "traits": {"email": "ann@x.fi", "name": "Ann"},
        "verified": True,
        "via": "widget",
    }
    same = {"detail": row.detail}
    assert _widget_row(same) is None  # the widget starts on every page: once is enough
    assert _widget_row(same, name=None) is None  # says less: nothing new
    snippet = {"detail": {"user_id": "u1", "verified": True, "traits": {"email": "ann@x.fi"}}}
    assert _widget_row(snippet, name="Ann") is not None  # a name the newest lacks
    assert _widget_row(same, email="new@x.fi") is not None
    assert _widget_row(same, user_id="u2") is not None  # another user logged in
    claimed = {"detail": {**row.detail, "verified": False}}  # the page's newest claim
    assert _widget_row(claimed) is not None
    bare = _widget_row(None, email=None, name=None)
    assert bare is not None
    assert bare.detail["traits"] == {}


def test_the_source_comes_from_the_live_snapshot_when_there_is_one() -> None:
    visits = [{"campaign": {"source": "google"}, "referrer": None}]
    assert domain.source_view(None, visits, 2)["source"] == "google"
    assert domain.source_view(None, visits, 2)["returning"] is True
    live = {"source": "facebook", "medium": "social", "returning": False, "sessions": 1}
    assert domain.source_view(live, visits, 1) == {
        "source": "facebook",
        "medium": "social",
        "campaign": None,
        "referrer": None,
        "returning": False,
        "visits": 1,
        "landing": {"kind": "campaign", "text": "facebook"},
    }


def test_the_stores_own_pages_are_never_the_referrer() -> None:
    own = "https://shop.test/category"
    rows = newest_first(
        [
            stored("page.viewed", 0, url="https://shop.test/", detail={"referrer": own}),
            stored("page.viewed", 1, url="https://shop.test/p", detail={"referrer": own}),
        ]
    )
    (visit,) = domain.visits_view(rows)
    assert visit["referrer"] is None
    source = domain.source_view(None, [visit], 1)
    assert (source["referrer"], source["landing"]["kind"]) == (None, "direct")
    live = {"source": "direct", "referrer": own, "url": "https://shop.test/p", "sessions": 1}
    source = domain.source_view(live, [visit], 1)
    assert (source["referrer"], source["landing"]["kind"]) == (None, "direct")
    came = {**live, "source": "news.example", "medium": "referral"}
    came["referrer"] = "https://news.example/a"
    assert domain.source_view(came, [], 1)["referrer"] == "https://news.example/a"


def test_the_cursor_round_trips_and_refuses_garbage() -> None:
    event_id = uuid7()
    cursor = domain.encode_cursor(T0, event_id)
    assert domain.decode_cursor(cursor) == (T0, event_id)
    assert domain.decode_cursor("not-a-cursor") is None
    assert domain.decode_cursor("") is None


def test_a_product_page_counts_once_though_it_sends_a_page_view_and_a_product_view() -> None:
    url = "https://shop.test/p/a"
    visit = newest_first(
        [
            stored("page.viewed", 0, url="https://shop.test/"),
            stored("page.viewed", 1, url=url),
            {**product(1.01, "a"), "url": url},
        ]
    )
    assert domain.visit_summary(visit)["pages"] == 2


def test_products_without_name_or_price_are_recorded_as_far_as_known() -> None:
    """Segment's spec makes them optional; the tracker passes such events on."""
    viewed = row_of(event("product_viewed", {"product_id": "trail", "currency": "EUR"}))
    assert viewed is not None
    assert viewed.detail["product"] == {
        "product_id": "trail",
        "name": None,
        "category": None,
        "price": None,
    }
    cart = row_of(
        event("cart_updated", {"items": [{"name": "Gift wrap"}], "value": 0, "currency": "EUR"})
    )
    assert cart is not None
    assert cart.detail["items"] == [
        {"product_id": None, "name": "Gift wrap", "category": None, "price": None, "quantity": 1}
    ]
