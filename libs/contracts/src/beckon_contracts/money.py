"""Money on the wire: a JSON number, a Decimal in Python, never a float in arithmetic."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer, StringConstraints

Amount = Annotated[
    Decimal,
    Field(ge=0, le=Decimal("1000000000"), allow_inf_nan=False),
    PlainSerializer(lambda d: float(d), return_type=float, when_used="json"),
]
Currency = Annotated[
    str,
    BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 code, e.g. EUR"),
]

# ---- money as text ----------------------------------------------------------------------------
# One formatter for every text a visitor reads (invitation templates, canned replies), so one
# conversation never shows "318.90 €" beside "€318.90". It agrees with the console's
# Intl.NumberFormat for en-GB and fi-FI (core.js `fmt.money`).
MONEY_LOCALES = ("en", "fi")
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def money_locale(language: str | None) -> str:
    """The formatting locale for a site's language setting ("fi", "fi-FI" → "fi"; "auto",
    unknown or none → "en")."""
    code = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in MONEY_LOCALES else "en"


def format_money(amount: object, currency: str | None, locale: str = "en") -> str:
    """1234.5, EUR: en → "€1,234.50", fi → "1 234,50 €" (no-break spaces); a currency
    without a symbol is written as its code ("10.00 SEK"); "" for no amount."""
    if amount is None or amount == "" or isinstance(amount, bool):
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return ""
    if not value.is_finite():
        return ""
    code = (currency or "").strip().upper()
    symbol = _SYMBOLS.get(code)
    sign = "-" if value < 0 else ""
    whole, _, cents = f"{abs(value):.2f}".partition(".")
    groups = f"{int(whole):,}"
    if money_locale(locale) == "fi":
        number = groups.replace(",", "\u00a0") + "," + cents
        unit = symbol or code
        return f"{sign}{number}\u00a0{unit}" if unit else f"{sign}{number}"
    number = groups + "." + cents
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {code}" if code else f"{sign}{number}"
