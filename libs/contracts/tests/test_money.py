"""One money formatter for every text a visitor reads (invitations and canned replies)."""

from __future__ import annotations

import pytest
from beckon_contracts.money import format_money, money_locale


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "text"),
    [
        (318.9, "EUR", "en", "€318.90"),
        (318.9, "EUR", "fi", "318,90\u00a0€"),
        (1234.5, "eur", "en", "€1,234.50"),
        (1234.5, "EUR", "fi", "1\u00a0234,50\u00a0€"),
        ("129.995", "USD", "en", "$130.00"),  # half up, from text too
        (10, "SEK", "en", "10.00 SEK"),
        (10, "SEK", "fi", "10,00\u00a0SEK"),
        (0.5, None, "en", "0.50"),
        (0.5, None, "fi", "0,50"),
        (None, "EUR", "en", ""),
        ("lots", "EUR", "en", ""),
        (float("nan"), "EUR", "en", ""),
    ],
)
def test_money_reads_the_same_in_every_message(
    amount: object, currency: str | None, locale: str, text: str
) -> None:
    assert format_money(amount, currency, locale) == text


@pytest.mark.parametrize(
    ("language", "locale"),
    [("fi", "fi"), ("fi-FI", "fi"), ("FI_fi", "fi"), ("en", "en"), ("auto", "en"), (None, "en")],
)
def test_a_sites_language_picks_the_money_locale(language: str | None, locale: str) -> None:
    assert money_locale(language) == locale
