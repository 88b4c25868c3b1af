"""The admin pages' pure logic: located rule errors, previews, site settings, invitations."""

from __future__ import annotations

from typing import Any

import pytest
from chat.admin import domain
from pydantic import ValidationError

SITE = "shop"
RULE: dict[str, Any] = {
    "id": "big-cart",
    "name": "Big cart",
    "when": {"all": [{"page_type": "cart"}, {"cart_value": {"gte": 150}}]},
    "message": "Questions about your {cart_value} order?",
}


def _doc(*rules: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"site_id": SITE, "rules": list(rules), **extra}


def _locs(problems: list[domain.Problem]) -> dict[str, str]:
    return {p.loc: p.msg for p in problems}


def test_a_valid_document_is_the_callers_site_and_ignores_the_posted_version() -> None:
    rules, problems = domain.check_site_rules({"rules": [RULE], "version": 99}, SITE)
    assert problems == []
    assert rules is not None
    assert (rules.site_id, rules.version, rules.rules[0].id) == (SITE, 1, "big-cart")
    # round trip: what the editor gets back validates again unchanged
    again, _ = domain.check_site_rules(domain.rules_json(rules), SITE)
    assert again == rules


def test_errors_name_the_place_in_the_contracts_notation() -> None:
    bad = {**RULE, "when": {"all": [{"page_type": "cart"}, {"cart_value": {"gte": "lots"}}]}}
    _, problems = domain.check_site_rules(_doc(RULE, bad), SITE)
    assert list(_locs(problems)) == ["rules[1].when.all[1].cart_value.gte"]

    typo = {**RULE, "when": {"not": {"page_typ": "cart"}}}
    _, problems = domain.check_site_rules(_doc(typo), SITE)
    assert list(_locs(problems)) == ["rules[0].when.not"]
    assert "did you mean 'page_type'" in problems[0].msg
    assert not problems[0].msg.startswith("Value error")


def test_a_duplicate_id_is_located_at_the_second_rules_id() -> None:
    _, problems = domain.check_site_rules(_doc(RULE, RULE), SITE)
    assert [(p.loc, p.msg) for p in problems] == [
        ("rules[1].id", "id 'big-cart' is already used by rules[0]")
    ]


def test_another_sites_document_is_refused_at_site_id() -> None:
    rules, problems = domain.check_site_rules(_doc(RULE, site_id="other"), SITE)
    assert rules is None
    assert [p.loc for p in problems] == ["site_id"]


@pytest.mark.parametrize(
    "data",
    [None, [], "x", 1, {"rules": "x"}, {"rules": [None]}, {"timezone": "Mars/Base"}],
)
def test_any_shape_gives_problems_not_exceptions(data: Any) -> None:
    rules, problems = domain.check_site_rules(data, SITE)
    assert rules is None
    assert problems
    rule, problems = domain.check_rule(data)
    assert rule is None
    assert problems


def test_a_deeply_nested_document_is_refused_before_pydantic_sees_it() -> None:
    condition: dict[str, Any] = {"page_type": "cart"}
    for _ in range(domain.MAX_DEPTH + 5):
        condition = {"not": condition}
    _, problems = domain.check_rule({**RULE, "when": condition})
    assert [p.loc for p in problems] == ["rule"]
    assert "deeper" in problems[0].msg


def test_one_rule_is_located_under_its_prefix() -> None:
    _, problems = domain.check_rule({**RULE, "message": "Hi {agent}"})
    assert list(_locs(problems)) == ["rule.message"]
    assert "agent_name" in problems[0].msg  # did you mean


def test_the_preview_fills_samples_as_triggers_renders() -> None:
    values = domain.sample_values("Anna", {"cart_value": 99, "unknown": "x", "visitor_name": " "})
    assert values["agent_name"] == "Anna"
    assert values["cart_value"] == "99"
    assert "unknown" not in values
    assert "visitor_name" not in values  # blank: removed, so a template needing it shows why
    shown = domain.preview("Hi {agent_name}: {{ {cart_value} }}", values)
    assert shown.to_dict() == {
        "ok": True,
        "text": "Hi Anna: { 99 }",
        "variables": ["agent_name", "cart_value"],
        "errors": [],
    }
    missing = domain.preview("Hello {visitor_name}", values)
    assert missing.text is None
    assert missing.problems[0].msg == "no sample value for {visitor_name}"
    for bad in ("", "   ", None, 3, "stray {", "x" * 501, "{nope}"):
        result = domain.preview(bad, values, loc="rules[2].message")
        assert result.text is None
        assert result.problems[0].loc == "rules[2].message"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://Shop.Example/", "https://shop.example"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        (" https://shop.example:443 ", "https://shop.example:443"),
        ("http://[::1]:3000", "http://[::1]:3000"),
    ],
)
def test_origins_are_normalized(given: str, expected: str) -> None:
    assert domain.normalize_origin(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "shop.example",
        "ftp://shop.example",
        "https://shop.example/path",
        "https://x.test?a=1",
        "https://user@x.test",
        "https://x.test:99999",
        "javascript:alert(1)",
        "",
    ],
)
def test_what_is_not_an_origin_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"origin|port"):
        domain.normalize_origin(bad)


def test_site_settings_are_checked_and_patched() -> None:
    change = domain.SiteSettingsChange.model_validate(
        {
            "allowed_origins": ["https://A.test/", "https://a.test"],
            "color": "#ABCDEF",
            "greeting": "  Hei   maailma ",
            "typing_preview": False,
            "timezone": "Europe/Helsinki",
            "business_hours": {"mon": "9:00-17:00"},
        }
    )
    assert change.allowed_origins == ["https://a.test"]
    patch = change.settings_patch()
    assert patch["color"] == "#abcdef"
    assert patch["greeting"] == "Hei maailma"
    assert patch["typing_preview"] is False
    assert patch["business_hours"]["mon"] == ["09:00-17:00"]
    assert "allowed_origins" not in patch
    assert "language" not in patch
    assert domain.SiteSettingsChange(clear_business_hours=True).settings_patch() == {
        "business_hours": None
    }
    with pytest.raises(ValidationError) as caught:
        domain.SiteSettingsChange.model_validate(
            {"color": "red", "timezone": "Nowhere/City", "allowed_origins": ["x"], "other": 1}
        )
    assert {p.loc for p in domain.problems(caught.value)} == {
        "color",
        "timezone",
        "allowed_origins",
        "other",
    }


def test_invite_tokens_are_random_and_only_their_hash_is_kept() -> None:
    token, digest = domain.new_invite_token()
    other, _ = domain.new_invite_token()
    assert token != other
    assert len(token) >= 40
    assert digest == domain.token_hash(token)
    assert token.encode() not in digest
    assert domain.agent_id_for("shop", "Anna.Virtanen+x@Example.com") == "shop-anna-virtanen-x"
    assert domain.password_problem("short") is not None
    assert domain.password_problem("aaaaaaaaaaaa") is not None
    assert domain.password_problem("a fine password") is None


# ---- site configuration (`sites.config`) ------------------------------------------------------


def test_a_site_row_becomes_its_sites_config_payload() -> None:
    config = domain.site_config(
        site_id="shop",
        version=4,
        site_key="pk_shop_key",
        write_key=None,
        allowed_origins=["https://shop.example"],
        settings={
            "greeting": "Hi",
            "timezone": "Europe/Helsinki",
            "business_hours": {"mon": ["09:00-17:00"]},
        },
    )
    assert (config.version, config.timezone, config.settings) == (
        4,
        "Europe/Helsinki",
        {"greeting": "Hi"},
    )
    assert config.business_hours is not None
    assert config.business_hours.mon == ["09:00-17:00"]
    unset = domain.site_config(
        site_id="shop", version=1, site_key="pk_shop_key", write_key=None,
        allowed_origins=[], settings={},
    )  # fmt: skip
    assert (unset.timezone, unset.business_hours) == (None, None)


def test_only_sites_the_topic_lacks_or_holds_older_are_republished() -> None:
    in_db = {"a": 3, "b": 1, "c": 2}
    assert domain.stale_sites(in_db, {}) == ["a", "b", "c"]
    assert domain.stale_sites(in_db, {"a": 3, "b": 2, "c": 1}) == ["c"]


PARIS = {"timezone": "Europe/Paris", "business_hours": None}


def test_the_whole_form_posted_back_pins_nothing_on_the_site() -> None:
    """The console posts every field; the rules' timezone it showed, or no hours, are no
    change (it was: the site got UTC and the rules were republished in UTC)."""
    patch = {"greeting": "Hei", "timezone": "Europe/Paris", "business_hours": None}
    assert domain.unchanged_worker_settings(patch, PARIS, own={}) == {"greeting": "Hei"}


def test_a_new_timezone_or_hours_are_saved_and_own_hours_can_be_cleared() -> None:
    hours = {"mon": ["09:00-17:00"]}
    patch = {"timezone": "Europe/Helsinki", "business_hours": hours}
    assert domain.unchanged_worker_settings(patch, PARIS, own={}) == patch
    own = {"business_hours": hours}
    shown = {"timezone": "Europe/Paris", "business_hours": hours}
    assert domain.unchanged_worker_settings({"business_hours": None}, shown, own) == {
        "business_hours": None
    }
    assert domain.unchanged_worker_settings({"business_hours": hours}, shown, own) == {}
