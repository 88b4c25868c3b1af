"""What agents call a visitor, and where a visit came from: pure functions, no I/O."""

from __future__ import annotations

import pytest
from chat.visitors import external_referrer, landing, pseudonym, visitor_label


def test_the_pseudonym_is_a_pure_function_of_the_id_in_both_languages() -> None:
    label = pseudonym("0196a1b2-0000-7000-8000-000000000001")
    assert label == pseudonym("0196a1b2-0000-7000-8000-000000000001")  # every call, instance
    assert label == {"en": "Purple Moose 592", "fi": "Violetti hirvi 592"}  # and every release
    number = label["en"].rsplit(" ", 1)[1]
    assert label["fi"].endswith(f" {number}")
    assert 100 <= int(number) <= 999


def test_visitors_of_the_same_moment_get_different_names() -> None:
    # UUIDv7s of one moment share their first characters: the names must not
    ids = [f"0196a1b2-0000-7000-8000-{n:012x}" for n in range(200)]
    assert len({pseudonym(visitor_id)["en"] for visitor_id in ids}) >= 198


def test_a_name_beats_an_email_beats_the_pseudonym() -> None:
    assert visitor_label("v1", name="  Maija   Meikäläinen ", email="m@example.fi") == {
        "en": "Maija Meikäläinen",
        "fi": "Maija Meikäläinen",
    }
    assert visitor_label("v1", name=" ", email="m@example.fi") == {
        "en": "m@example.fi",
        "fi": "m@example.fi",
    }
    assert visitor_label("v1") == pseudonym("v1")


@pytest.mark.parametrize(
    ("referrer", "page", "kept"),
    [
        ("https://news.example/a", "https://shop.example/p", True),
        ("https://shop.example/", "https://shop.example/p", False),  # the store's own page
        ("https://www.shop.example/", "https://shop.example/p", False),
        ("https://shop.example/", "https://checkout.shop.example/pay", False),  # a subdomain
        ("http://localhost:8000/", "http://localhost:8000/demo", False),
        ("not a url", "https://shop.example/", False),
        (None, "https://shop.example/", False),
        ("https://news.example/a", None, True),
    ],
)
def test_only_another_sites_page_is_a_referrer(
    referrer: str | None, page: str | None, kept: bool
) -> None:
    assert external_referrer(referrer, page) == (referrer if kept else None)


def test_where_the_visit_came_from() -> None:
    assert landing(source="direct", medium=None, campaign=None, referrer=None) == {
        "kind": "direct",
        "text": None,
    }
    assert landing(source=None, medium=None, campaign=None, referrer=None)["kind"] == "direct"
    assert landing(
        source="news.example", medium="referral", campaign=None, referrer="https://news.example/"
    ) == {"kind": "referral", "text": "news.example"}
    assert landing(source="google", medium="cpc", campaign="spring", referrer=None) == {
        "kind": "campaign",
        "text": "google",
    }
    assert landing(source=None, medium=None, campaign="spring", referrer=None) == {
        "kind": "campaign",
        "text": "spring",
    }
    # an external referrer without triggers' verdict (the card's history) is a referral
    assert landing(source=None, medium=None, campaign=None, referrer="https://www.x.example/") == {
        "kind": "referral",
        "text": "x.example",
    }
