"""Invitation messages: `{variable}` templates filled from what we know about the visitor.

A contextual message ("Questions about the Trail Runner 2?") gets far more replies than a bare
greeting, but a message with a hole in it is worse than none: a rule whose template needs a
value we don't have does not fire. Text goes to the widget as plain text, so values are not
HTML-escaped; control characters are removed because product names come from store pages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from beckon_contracts.money import format_money
from beckon_contracts.rules import TEMPLATE_VARIABLES, render_template, template_variables

from triggers.domain.observation import Observation
from triggers.domain.state import VisitorState

__all__ = [
    "LATE_VARIABLES",
    "TEMPLATE_VARIABLES",
    "format_money",
    "render",
    "variables_for",
    "variables_used",
]

# Filled in after the rule matched (admission picks the agent), so never "missing" at match time.
LATE_VARIABLES = frozenset({"agent_name"})
MAX_VALUE_CHARS = 200

_VALUE_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def variables_used(template: str) -> tuple[str, ...]:
    """The variables a template uses, in order (ValueError for unknown ones or stray braces)."""
    return template_variables(template)


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = " ".join(_VALUE_CONTROL.sub(" ", str(value)).split())
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1].rstrip() + "…"
    return text or None


def variables_for(state: VisitorState, obs: Observation, locale: str = "en") -> dict[str, str]:
    """The template variables that have a value for this visitor now (agent_name excepted);
    money in the site's `locale`, with the formatter chat's canned replies use."""
    found: dict[str, str | None] = {}
    product = state.current_product
    if product is None and obs.product is not None:
        product = {
            "name": obs.product.name,
            "category": obs.product.category,
            "price": obs.product.price,
            "currency": obs.product.currency,
        }
    product_currency: str | None = None
    if product is not None:
        product_currency = product.get("currency")
        found["product_name"] = _clean(product.get("name"))
        found["product_category"] = _clean(product.get("category"))
        price = product.get("price")
        if isinstance(price, int | float):
            found["product_price"] = format_money(price, product_currency, locale)
    currency = state.currency or product_currency
    if state.cart_items > 0 or state.cart_value > 0:
        found["cart_value"] = format_money(state.cart_value, state.currency or currency, locale)
        found["cart_items"] = str(state.cart_items) if state.cart_items > 0 else None
    found["currency"] = _clean(currency)
    found["page_title"] = _clean(state.title or obs.title)
    found["visitor_name"] = _clean(state.name)
    return {name: value for name, value in found.items() if value}


def render(template: str, variables: Mapping[str, str]) -> str | None:
    """The message with its variables filled in, or None if one it uses has no value (the
    contracts' renderer: the console's rules editor previews with the very same code)."""
    return render_template(template, dict(variables))
