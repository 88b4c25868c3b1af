"""CSV export and the `rules.stats` book of the reports, without I/O."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import cast

from beckon_contracts.rule_stats import (
    rule_stats_key,
)
from beckon_contracts.rules import SiteRules
from beckon_edge.spreadsheet import cell, to_csv
from chat.admin import AdminFeature
from chat.admin.rules_feed import RulesFeed
from chat.features import NoRules, RulesLookup
from chat.reports.stats import CSV_HEADER, RuleStatsBook, csv_rows, with_names
from samples import rule_stats_record


def test_text_that_a_spreadsheet_would_run_is_defused() -> None:
    for dangerous in ('=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"):
        assert cell(dangerous) == "'" + dangerous
    assert cell("Anna") == "Anna"
    assert cell("a=b") == "a=b"


def test_full_width_and_spaced_formula_triggers_are_defused_too() -> None:
    # full-width = + - @, the small forms, an ideographic space before one, spaces before one
    for dangerous in (
        '\uff1dHYPERLINK("http://evil.test")',
        "\uff0b1",
        "\uff0d2+3",
        "\uff20SUM(A1)",
        "\ufe66cmd",
        "\ufe62cmd",
        "\u3000=1+1",
        "  =1+1",
        " \tx",
    ):
        assert cell(dangerous) == "'" + dangerous, repr(dangerous)
    assert cell("\uff21nna") == "\uff21nna"  # full-width letters are just text
    assert cell("Kysy \uff1d hinta") == "Kysy \uff1d hinta"


def test_numbers_stay_numbers_unformatted() -> None:
    assert cell(-0.25) == "-0.25"
    assert cell(1234567) == "1234567"
    assert cell(Decimal("1234.50")) == "1234.50"
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(False) == "false"


def test_a_csv_has_a_header_row_and_quotes_what_needs_quoting() -> None:
    text = to_csv(["agent", "name", "orders"], [["a1", 'Anna "A", Sales', 3], ["a2", "=1+1", 0]])
    assert text.splitlines()[0] == "agent,name,orders"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["agent", "name", "orders"],
        ["a1", 'Anna "A", Sales', "3"],
        ["a2", "'=1+1", "0"],
    ]


def _record(site: str, rule: str, invited: int, *, at: datetime | None = None) -> bytes:
    return rule_stats_record(site, rule, invited, at=at)


def test_the_latest_snapshot_of_a_rule_replaces_the_older_one() -> None:
    book = RuleStatsBook()
    assert book.apply(rule_stats_key("s1", "r1"), _record("s1", "r1", 10))
    assert book.apply(rule_stats_key("s1", "r1"), _record("s1", "r1", 7))  # a reset: still wins
    assert book.apply(rule_stats_key("s1", "r2"), _record("s1", "r2", 4))
    assert book.apply(rule_stats_key("s2", "r1"), _record("s2", "r1", 99))
    rows = book.rules("s1")
    assert [row["rule_id"] for row in rows] == ["r1", "r2"]
    first = rows[0]
    assert first["funnel"]["invited"] == 7  # not 17: snapshots are cumulative
    assert first["funnel"]["eligible"] == 14
    assert first["funnel"]["revenue_invited"] == 120.5
    assert first["uplift"]["significant"] is True
    assert first["since"] == "2025-03-01T00:00:00+00:00"
    assert book.rules("nobody") == []


def test_a_tombstone_forgets_the_rule_and_garbage_is_counted() -> None:
    book = RuleStatsBook()
    book.apply(rule_stats_key("s1", "r1"), _record("s1", "r1", 10))
    assert book.apply(rule_stats_key("s1", "r1"), None)
    assert book.rules("s1") == []
    assert not book.apply(b"s1:r1", b"{not json")
    assert not book.apply(None, None)
    assert book.rejected == 1


def test_rules_csv_rows_match_the_header() -> None:
    book = RuleStatsBook()
    book.apply(rule_stats_key("s1", "r1"), _record("s1", "r1", 10))
    [row] = csv_rows(book.rules("s1"))
    assert len(row) == len(CSV_HEADER)
    named = dict(zip(CSV_HEADER, row, strict=True))
    assert named["rule_id"] == "r1"
    assert named["name"] is None  # not named until the site's rules are known
    assert named["invited"] == 10
    assert named["p_value"] == 0.03
    assert named["significant"] is True


def _site_rules(site: str) -> SiteRules:
    rule = {"message": "Hi", "when": {"page_type": "cart"}}
    return SiteRules.model_validate(
        {
            "site_id": site,
            "rules": [
                {**rule, "id": "r1", "name": "Big carts"},
                {**rule, "id": "r2", "name": "Second look", "enabled": False},
            ],
        }
    )


def test_rule_rows_get_the_names_and_enabled_flags_of_the_current_rules() -> None:
    book = RuleStatsBook()
    for rule in ("r1", "r2", "gone"):
        book.apply(rule_stats_key("s1", rule), _record("s1", rule, 10))
    rows = with_names(book.rules("s1"), _site_rules("s1").rules)
    assert [(r["rule_id"], r["name"], r["enabled"]) for r in rows] == [
        ("gone", None, None),  # no longer in the rules: figures stay, by id
        ("r1", "Big carts", True),
        ("r2", "Second look", False),
    ]
    assert rows[1]["funnel"]["invited"] == 10
    named = [dict(zip(CSV_HEADER, row, strict=True)) for row in csv_rows(rows)]
    assert CSV_HEADER[:3] == ("rule_id", "name", "enabled")
    assert [(n["rule_id"], n["name"], n["enabled"]) for n in named] == [
        ("gone", None, None),
        ("r1", "Big carts", True),
        ("r2", "Second look", False),
    ]
    assert to_csv(CSV_HEADER, csv_rows(rows)).splitlines()[3].startswith("r2,Second look,false,")


def test_without_known_rules_the_rows_keep_their_ids_only() -> None:
    book = RuleStatsBook()
    book.apply(rule_stats_key("s1", "r1"), _record("s1", "r1", 10))
    [row] = with_names(book.rules("s1"), None)
    assert (row["rule_id"], row["name"], row["enabled"]) == ("r1", None, None)


class _Feed:
    def __init__(self, *sites: SiteRules) -> None:
        self.sites = {rules.site_id: rules for rules in sites}

    def current(self, site_id: str) -> SiteRules | None:
        return self.sites.get(site_id)


def _admin_following(feed: _Feed) -> AdminFeature:
    admin = AdminFeature()
    admin.feed = cast(RulesFeed, feed)
    return admin


def test_the_names_come_from_the_admin_features_feed_when_it_runs() -> None:
    rules = _site_rules("s1")
    lookups: tuple[RulesLookup, ...] = (_admin_following(_Feed(rules)), NoRules(), AdminFeature())
    following, no_admin_feature, not_started = lookups
    assert following.current("s1") is rules
    assert following.current("s2") is None
    assert no_admin_feature.current("s1") is None  # no admin feature: ids only
    assert not_started.current("s1") is None  # not started yet
