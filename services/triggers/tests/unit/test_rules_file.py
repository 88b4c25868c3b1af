"""Rules as YAML files: the demo file, one site or many, and errors a person can act on."""

from pathlib import Path

import pytest
from triggers.domain.rules import CompiledRules
from triggers.rules_file import RulesFileError, load_rules_file, load_rules_text

DEMO = Path(__file__).resolve().parents[2] / "rules" / "demo.yaml"

ONE_SITE = """
site_id: shop
min_browsing: 30s
rules:
  - id: big-cart
    name: Big cart
    message: "Your cart is at {cart_value}; free delivery questions?"
    when: {cart_value: {gte: 100}}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RulesFileError) as caught:
        load_rules_text(text, "rules.yaml")
    assert str(caught.value).startswith("rules.yaml: ")
    return caught.value.problems


def test_the_demo_file_loads_and_compiles():
    [site] = load_rules_file(DEMO)
    assert site.site_id == "demo"
    ids = [rule.id for rule in site.rules]
    assert len(ids) == 8
    assert {"checkout-idle", "big-cart", "product-4th-view", "default-3min"} <= set(ids)
    defaults = [rule for rule in site.rules if rule.default]
    assert len(defaults) == 1
    assert defaults[0].priority == min(rule.priority for rule in site.rules)
    assert "{cart_value}" in site.rule("big-cart").message
    for rule in site.rules:
        assert "how can we help" not in rule.message.lower()
    assert len(CompiledRules.from_site(site).rules) == 8


def test_one_site_mapping(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(ONE_SITE)
    [site] = load_rules_file(path)
    assert site.site_id == "shop"
    assert site.min_browsing == 30.0


def test_a_list_of_sites():
    text = """
sites:
  - site_id: shop
    rules:
      - id: big-cart
        name: Big cart
        message: "Your cart is at {cart_value}."
        when: {cart_value: {gte: 100}}
  - site_id: other
"""
    sites = load_rules_text(text)
    assert [s.site_id for s in sites] == ["shop", "other"]
    assert sites[0].rules[0].id == "big-cart"
    assert sites[1].rules == []


def test_validation_errors_name_the_place_one_per_line():
    text = ONE_SITE.replace("{gte: 100}", "{gte : 100, more: 1}").replace("30s", "30 sec")
    found = problems(text)
    assert found == [
        "min_browsing: invalid duration '30 sec'; use seconds or e.g. '20s', '3m', '1h30m', '2d'",
        "rules[0].when.cart_value: unknown operator 'more'; use one of gte, gt, lte, lt",
    ]


def test_errors_in_a_list_of_sites_carry_the_site_index():
    text = """
sites:
  - site_id: ok
  - site_id: bad
    rules:
      - {id: x, name: x, message: hello, when: {segmnt: hot}}
"""
    [error] = problems(text)
    assert error.startswith("sites[1].rules[0].when: unknown condition 'segmnt'")


def test_duplicate_sites_are_refused():
    found = problems("sites:\n  - site_id: a\n  - site_id: a\n")
    assert found == ["sites[1].site_id: site 'a' also in sites[0]"]


def test_yaml_syntax_errors_give_line_and_column():
    [error] = problems("site_id: demo\nrules: [\n  {id: x\n")
    assert error.startswith("line ")
    assert "invalid YAML" in error


def test_duplicate_keys_are_refused():
    text = "site_id: demo\nmin_browsing: 10\nmin_browsing: 20\n"
    [error] = problems(text)
    assert "duplicate key 'min_browsing'" in error
    assert "line 3" in error


@pytest.mark.parametrize("text", ["", "- site_id: demo\n", "just text\n"])
def test_the_top_level_must_be_a_mapping(text):
    [error] = problems(text)
    assert "expected a site mapping" in error


def test_sites_must_be_a_list():
    assert problems("sites: {site_id: demo}\n") == [
        "sites: must be a non-empty list of site mappings"
    ]
    assert "unexpected top-level keys" in problems("sites: []\nextra: 1\n")[0]


def test_a_missing_file(tmp_path):
    with pytest.raises(RulesFileError, match="cannot read the file") as caught:
        load_rules_file(tmp_path / "nope.yaml")
    assert "nope.yaml" in str(caught.value)
