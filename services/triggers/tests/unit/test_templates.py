"""Message templates: which variables a template uses, what we know, and rendering."""

from datetime import UTC, datetime

import pytest
from triggers.domain.observation import Observation, Product
from triggers.domain.state import VisitorState, apply
from triggers.domain.templates import format_money, render, variables_for, variables_used

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp()


def ev(kind: str, at: float, **fields) -> Observation:
    return Observation(
        event_id=f"{kind}-{at}",
        type=kind,
        site_id="demo",
        visitor_id="v1",
        session_id="s1",
        at=T0 + at,
        **fields,
    )


def visit(*observations: Observation) -> tuple[VisitorState, Observation]:
    state = VisitorState(site_id="demo", visitor_id="v1")
    for obs in observations:
        apply(state, obs)
    return state, observations[-1]


def product_view(
    at: float, item: Product, title: str = "Trail Runner X · Ridgeline"
) -> Observation:
    return ev(
        "product_viewed",
        at,
        url=f"https://shop.example/p/{item.product_id}",
        path=f"/p/{item.product_id}",
        title=title,
        page_type="product",
        product=item,
        currency=item.currency,
    )


def test_variables_used_in_order_without_repeats():
    assert variables_used("{product_name} for {product_price}, {product_name}!") == (
        "product_name",
        "product_price",
    )
    assert variables_used("No variables, {{literal}} braces") == ()


def test_unknown_variables_and_stray_braces_are_errors():
    with pytest.raises(ValueError, match=r"unknown variable \{price\}.*known variables: "):
        variables_used("Only {price}!")
    with pytest.raises(ValueError, match="unmatched"):
        variables_used("Oops { here")


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (129, "EUR", "€129.00"),
        (129.9, "eur", "€129.90"),
        (129, "USD", "$129.00"),
        (129, "SEK", "129.00 SEK"),
        (0.5, None, "0.50"),
    ],
)
def test_money_formatting(amount, currency, text):
    assert format_money(amount, currency) == text


def test_variables_from_a_visit():
    shoes = Product("trail-runner-x", "Trail Runner X", "Shoes", 129.9, "EUR")
    who = ev("identified", 1, traits={"name": "Ann"})
    cart = ev("cart_updated", 30, cart_value=259.8, cart_items=2, currency="EUR")
    state, obs = visit(who, product_view(10, shoes), cart)
    assert variables_for(state, obs) == {
        "product_name": "Trail Runner X",
        "product_category": "Shoes",
        "product_price": "€129.90",
        "cart_value": "€259.80",
        "cart_items": "2",
        "currency": "EUR",
        "page_title": "Trail Runner X · Ridgeline",
        "visitor_name": "Ann",
    }
    finnish = variables_for(state, obs, "fi")  # a Finnish site: as its canned replies say it
    assert (finnish["product_price"], finnish["cart_value"]) == ("129,90\u00a0€", "259,80\u00a0€")


def test_only_variables_with_values_are_given():
    page = ev("page_viewed", 0, url="https://shop.example/", path="/", page_type="home")
    state, obs = visit(page)
    assert variables_for(state, obs) == {}


def test_values_lose_control_characters():
    odd = Product("x", "Trail\x00 Runner\nX\x1b[31m", None, 10.0, "USD")
    state, obs = visit(product_view(0, odd, title="A\ttitle"))
    found = variables_for(state, obs)
    assert found["product_name"] == "Trail Runner X [31m"
    assert found["page_title"] == "A title"
    assert "product_category" not in found
    assert found["product_price"] == "$10.00"


def test_render_fills_variables():
    text = render(
        "The {product_name} is {product_price}; {{sizes}} on request.",
        {"product_name": "Rain Shell", "product_price": "€179.00"},
    )
    assert text == "The Rain Shell is €179.00; {sizes} on request."


def test_render_returns_none_when_a_variable_is_missing():
    assert render("Your cart: {cart_value}", {"product_name": "x"}) is None
    assert render("Hi, I'm {agent_name}", {}) is None
    assert render("Hi, I'm {agent_name}", {"agent_name": "Mia"}) == "Hi, I'm Mia"


def test_render_strips_control_characters_but_keeps_line_breaks():
    assert render("Hello\x07 there\nfriend {visitor_name}", {"visitor_name": "A\x00nn\n"}) == (
        "Hello there\nfriend A nn"
    )
