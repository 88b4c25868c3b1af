"""Every condition leaf (a case that holds and one that doesn't) and every combinator,
evaluated on states built the way the engine builds them: by applying observations."""

from datetime import UTC, datetime

import pytest
from beckon_contracts.rules import Condition, Rule, SiteRules
from pydantic import TypeAdapter
from triggers.domain.observation import Observation, Product
from triggers.domain.rules import CompiledRules, compile_condition, event_types
from triggers.domain.state import VisitorState, apply

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp()
SHOES = Product("trail-runner-x", "Trail Runner X", "shoes", 129.9, "EUR")
SHELL = Product("rain-shell", "Rain Shell Jacket", "apparel", 179.0, "EUR")
_condition = TypeAdapter(Condition)


def ev(kind: str, at: float, **fields) -> Observation:
    """An observation `at` seconds after T0."""
    return Observation(
        event_id=f"{kind}-{at}",
        type=kind,
        site_id="demo",
        visitor_id="v1",
        session_id=fields.pop("session_id", "s1"),
        at=T0 + at,
        **fields,
    )


def page(at: float, path: str, page_type: str = "category", **fields) -> Observation:
    fields.setdefault("title", "Ridgeline")
    return ev(
        "page_viewed",
        at,
        url=f"https://shop.example{path}",
        path=path,
        page_type=page_type,
        **fields,
    )


def product(at: float, item: Product = SHOES, **fields) -> Observation:
    path = f"/p/{item.product_id}"
    return ev(
        "product_viewed",
        at,
        url=f"https://shop.example{path}",
        path=path,
        page_type="product",
        product=item,
        currency=item.currency,
        **fields,
    )


def cart(at: float, value: float, items: int = 1, kind: str = "cart_updated") -> Observation:
    return ev(kind, at, cart_value=value, cart_items=items, currency="EUR")


def visit(*observations: Observation) -> tuple[VisitorState, Observation]:
    state = VisitorState(site_id="demo", visitor_id="v1")
    for obs in observations:
        apply(state, obs)
    return state, observations[-1]


def holds(cond: object, state: VisitorState, obs: Observation, now: float | None = None) -> bool:
    test = compile_condition(_condition.validate_python(cond))
    return test(state, obs, obs.at if now is None else T0 + now)


# ---- pages ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*/sale/*", True),
        ("*/SALE/*", True),  # globs ignore case
        ("/sale/*", True),  # matches the path as well as the full URL
        ("*/outlet/*", False),
        ({"glob": "https://shop.example/sale/*"}, True),
        ({"regex": r"/sale/\w+-boots$"}, True),
        ({"regex": r"/SALE/"}, False),  # a regex is used as written
        ({"contains": "WINTER"}, True),
        ({"contains": "summer"}, False),
    ],
)
def test_url_patterns(pattern, expected):
    state, obs = visit(page(0, "/sale/winter-boots"))
    assert holds({"url": pattern}, state, obs) is expected


def test_page_type_one_or_a_list():
    state, obs = visit(page(0, "/cart", "cart"))
    assert holds({"page_type": "cart"}, state, obs)
    assert holds({"page_type": ["checkout", "cart"]}, state, obs)
    assert not holds({"page_type": "product"}, state, obs)


def test_category_of_the_current_product():
    state, obs = visit(product(0, SHOES))
    assert holds({"category": "Shoes"}, state, obs)
    assert not holds({"category": ["apparel"]}, state, obs)
    state, obs = visit(product(0, SHOES), page(10, "/", "home"))
    assert not holds({"category": "shoes"}, state, obs)  # no current product any more


def test_categories_viewed_anywhere_in_the_visit():
    state, obs = visit(product(0, SHELL), page(10, "/", "home"))
    assert holds({"categories_viewed": "apparel"}, state, obs)
    assert holds({"categories_viewed": ["shoes", "apparel"]}, state, obs)
    assert not holds({"categories_viewed": "shoes"}, state, obs)


# ---- cart and orders ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("compare", "expected"),
    [
        ({"gte": 100}, True),
        ({"gte": 129.9}, True),
        ({"gt": 129.9}, False),
        ({"lte": 129.9}, True),
        ({"lt": 129.9}, False),
        ({"gt": 50, "lte": 150}, True),
        ({"gt": 50, "lte": 100}, False),
    ],
)
def test_cart_value_comparisons(compare, expected):
    state, obs = visit(cart(0, 129.9))
    assert holds({"cart_value": compare}, state, obs) is expected


def test_cart_items():
    state, obs = visit(cart(0, 60, items=3))
    assert holds({"cart_items": {"gte": 3}}, state, obs)
    assert not holds({"cart_items": {"gt": 3}}, state, obs)


def test_orders():
    order = ev("order_completed", 60, order_id="o1", order_value=99.0, currency="EUR")
    state, obs = visit(cart(0, 99), order)
    assert holds({"orders": {"gte": 1}}, state, obs)
    assert not holds({"orders": {"lt": 1}}, state, obs)
    fresh, obs = visit(cart(0, 99))
    assert holds({"orders": {"lt": 1}}, fresh, obs)


def test_seen_price():
    state, obs = visit(page(0, "/"), product(10))
    assert holds({"seen_price": True}, state, obs)
    state, obs = visit(page(0, "/"))
    assert holds({"seen_price": False}, state, obs)
    assert not holds({"seen_price": True}, state, obs)


# ---- products -------------------------------------------------------------------------------
def test_product_views_counts_this_product_only():
    views = [product(i * 30, SHOES) for i in range(3)]
    state, obs = visit(*views, product(100, SHELL), product(130, SHOES))
    assert state.current_product_views == 4
    assert holds({"product_views": {"gte": 4}}, state, obs)
    state, obs = visit(*views, product(100, SHELL))
    assert not holds({"product_views": {"gte": 4}}, state, obs)  # the shell's 1st view


# ---- time -----------------------------------------------------------------------------------
def test_time_on_site_and_on_page_with_durations():
    state, obs = visit(page(0, "/"), page(150, "/c/shoes"), ev("heartbeat", 190))
    assert holds({"time_on_site": {"gte": "3m"}}, state, obs)
    assert not holds({"time_on_site": {"gte": "3m30s"}}, state, obs)
    assert holds({"time_on_page": {"gte": "40s"}}, state, obs)
    assert not holds({"time_on_page": {"gt": 40}}, state, obs)
    assert holds({"time_on_page": {"gt": 40}}, state, obs, now=191)  # a later tick


def test_checkout_idle():
    state, obs = visit(page(0, "/checkout", "checkout"), cart(5, 150, kind="checkout_started"))
    assert not holds({"checkout_idle": {"gte": "45s"}}, state, obs)
    assert holds({"checkout_idle": {"gte": "45s"}}, state, obs, now=60)
    assert not holds({"checkout_idle": {"gte": "45s"}}, state, obs, now=40)
    elsewhere, obs = visit(cart(0, 150))
    assert not holds({"checkout_idle": {"gte": "45s"}}, elsewhere, obs, now=600)


# ---- arrival --------------------------------------------------------------------------------
def test_source_medium_campaign_ignore_case():
    arrival = page(
        0,
        "/",
        "home",
        campaign_source="Newsletter",
        campaign_medium="email",
        campaign_name="Spring-Sale",
    )
    state, obs = visit(arrival)
    assert holds({"source": "newsletter"}, state, obs)
    assert not holds({"source": ["google", "bing"]}, state, obs)
    assert holds({"medium": ["cpc", "EMAIL"]}, state, obs)
    assert not holds({"medium": "cpc"}, state, obs)
    assert holds({"campaign": "spring-sale"}, state, obs)
    assert not holds({"campaign": "winter"}, state, obs)


def test_referrer_pattern():
    state, obs = visit(page(0, "/", "home", referrer="https://www.outdoor-forum.example/t/123"))
    assert holds({"referrer": "*outdoor-forum*"}, state, obs)
    assert not holds({"referrer": {"contains": "google"}}, state, obs)
    direct, obs = visit(page(0, "/", "home"))
    assert not holds({"referrer": "*"}, direct, obs)


def test_from_email():
    state, obs = visit(page(0, "/", "home", campaign_medium="email"))
    assert holds({"from_email": True}, state, obs)
    assert not holds({"from_email": False}, state, obs)
    state, obs = visit(page(0, "/", "home"))
    assert holds({"from_email": False}, state, obs)


def test_returning_after_a_new_session():
    first, obs = visit(page(0, "/"))
    assert holds({"returning": False}, first, obs)
    assert not holds({"returning": True}, first, obs)
    again, obs = visit(page(0, "/"), page(3 * 3600, "/c/shoes", session_id="s2"))
    assert holds({"returning": True}, again, obs)
    assert not holds({"returning": False}, again, obs)


# ---- score, identity, events ----------------------------------------------------------------
def test_score_and_segment():
    state, obs = visit(page(0, "/"))
    state.score, state.segment = 72.0, "hot"  # kept by the scoring module, not by apply
    assert holds({"score": {"gte": 60}}, state, obs)
    assert not holds({"score": {"lt": 60}}, state, obs)
    assert holds({"segment": ["warm", "HOT"]}, state, obs)
    assert not holds({"segment": "warm"}, state, obs)


def test_identified():
    who = ev("identified", 5, traits={"email": "ann@example.com", "name": "Ann"})
    state, obs = visit(page(0, "/"), who)
    assert holds({"identified": True}, state, obs)
    anonymous, obs = visit(page(0, "/"))
    assert holds({"identified": False}, anonymous, obs)
    assert not holds({"identified": True}, anonymous, obs)


def test_event_type_of_the_current_event():
    state, obs = visit(page(0, "/"), cart(10, 40))
    assert holds({"event": "cart_updated"}, state, obs)
    assert holds({"event": ["checkout_started", "cart_updated"]}, state, obs)
    assert not holds({"event": "product_viewed"}, state, obs)


def test_custom_event_by_name():
    state, obs = visit(page(0, "/"), ev("custom", 10, custom_event="Size_Guide_Opened"))
    assert holds({"custom_event": "size_guide_opened"}, state, obs)
    assert not holds({"custom_event": "newsletter_signup"}, state, obs)
    state, obs = visit(page(0, "/"))
    assert not holds({"custom_event": "size_guide_opened"}, state, obs)


# ---- combinators ----------------------------------------------------------------------------
def test_all_any_not_nest():
    state, obs = visit(page(0, "/"), product(10), cart(20, 129.9))
    big = {"cart_value": {"gte": 100}}
    small = {"cart_value": {"lt": 50}}
    on_cart = {"page_type": "cart"}
    assert holds({"all": [big, {"seen_price": True}]}, state, obs)
    assert not holds({"all": [big, on_cart]}, state, obs)
    assert holds({"any": [small, big]}, state, obs)
    assert not holds({"any": [small, on_cart]}, state, obs)
    assert holds({"not": small}, state, obs)
    assert not holds({"not": big}, state, obs)
    assert holds({"not": {"not": big}}, state, obs)
    nested = {"all": [{"any": [on_cart, {"page_type": "product"}]}, {"not": {"any": [small]}}]}
    assert holds(nested, state, obs)
    assert not holds({"all": [nested, {"returning": True}]}, state, obs)
    assert holds(
        {"all": [{"any": [small, big]}, {"any": [big, small]}, {"not": on_cart}]}, state, obs
    )


def test_all_and_any_with_many_children():
    state, obs = visit(page(0, "/"), product(10), cart(20, 129.9))
    many_true = [
        {"seen_price": True},
        {"cart_items": {"gte": 1}},
        {"page_type": "product"},
        {"cart_value": {"gte": 100}},
        {"returning": False},
    ]
    assert holds({"all": many_true}, state, obs)
    assert not holds({"all": [*many_true, {"returning": True}]}, state, obs)
    many_false = [
        {"returning": True},
        {"cart_items": {"gt": 5}},
        {"page_type": "cart"},
        {"from_email": True},
    ]
    assert not holds({"any": many_false}, state, obs)
    assert holds({"any": [*many_false, {"seen_price": True}]}, state, obs)


def test_event_type_index_of_a_condition():
    def types(cond):
        return event_types(_condition.validate_python(cond))

    assert types({"event": "cart_updated"}) == {"cart_updated"}
    assert types({"all": [{"event": "cart_updated"}, {"cart_value": {"gte": 1}}]}) == {
        "cart_updated"
    }
    assert types({"all": [{"event": ["cart_updated", "custom"]}, {"custom_event": "x"}]}) == {
        "custom"
    }
    assert types({"any": [{"event": "cart_updated"}, {"custom_event": "x"}]}) == {
        "cart_updated",
        "custom",
    }
    assert types({"any": [{"event": "cart_updated"}, {"cart_value": {"gte": 1}}]}) is None
    assert types({"not": {"event": "heartbeat"}}) is None


def test_a_rule_about_one_event_type_is_skipped_on_others():
    rule = Rule.model_validate(
        {
            "id": "cart",
            "name": "c",
            "message": "Cart of {cart_value}?",
            "limits": {"once_per": None, "cooldown": 0},
            "when": {"all": [{"event": "cart_updated"}, {"cart_value": {"gte": 10}}]},
        }
    )
    compiled = CompiledRules.from_site(SiteRules(site_id="demo", min_browsing=0, rules=[rule]))
    state, obs = visit(page(0, "/"), cart(30, 40))
    assert [m.rule_id for m in compiled.evaluate(state, obs)] == ["cart"]
    beat = ev("heartbeat", 40)
    apply(state, beat)
    assert compiled.evaluate(state, beat) == []
