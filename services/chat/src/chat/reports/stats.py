"""Per-rule figures from `rules.stats`, pure: the latest snapshot per (site, rule), and the
report rows made from it.

Each record on the compacted topic is a *cumulative* snapshot of a rule's funnel since its
first counted step (triggers re-sends the whole funnel after every batch), so the newest
record of a key replaces the older one; nothing is added up here. Records of one key share a
partition, so arrival order is the producer's order: the last one read wins, even when its
counts are lower (triggers' state was reset). A tombstone (no value) forgets the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from beckon_contracts.rule_stats import RuleStats, parse_rule_stats
from beckon_contracts.rules import Rule
from pydantic import ValidationError

# the funnel's steps in order, as (name, where the count is in the payload's counts)
FUNNEL = (
    ("eligible", "eligible"),
    ("invited", "invited"),
    ("held_out", "held_out"),
    ("shown", "shown"),
    ("accepted", "accepted"),
    ("declined", "declined"),
    ("conversations", "conversations"),
    ("orders_invited", "orders_invited"),
    ("orders_held_out", "orders_held_out"),
    ("revenue_invited", "revenue_invited"),
    ("revenue_held_out", "revenue_held_out"),
)


class RuleStatsBook:
    """The latest `rules.stats` record per (site, rule)."""

    def __init__(self) -> None:
        self.sites: dict[str, dict[str, RuleStats]] = {}
        self.rejected = 0

    def apply(self, key: bytes | None, value: bytes | None) -> bool:
        """One record off the topic; False when it could not be used (counted in `rejected`)."""
        if value is None:
            if key is None:
                return False
            site_id, _, rule_id = key.decode("utf-8", "replace").partition(":")
            self.sites.get(site_id, {}).pop(rule_id, None)
            return True
        try:
            record = parse_rule_stats(value)
        except ValidationError:
            self.rejected += 1
            return False
        self.sites.setdefault(record.site_id, {})[record.payload.rule_id] = record
        return True

    def rules(self, site_id: str) -> list[dict[str, Any]]:
        """The site's rules, by rule id, as report rows."""
        found = self.sites.get(site_id, {})
        return [rule_row(found[rule_id]) for rule_id in sorted(found)]


def rule_row(record: RuleStats) -> dict[str, Any]:
    """One rule's funnel and uplift, flat enough for a table and a CSV. `name` and `enabled`
    are unknown (None) until `with_names` fills them in from the site's current rules."""
    payload = record.payload
    counts = payload.counts.model_dump()
    uplift = payload.uplift
    return {
        "rule_id": payload.rule_id,
        "name": None,
        "enabled": None,
        "since": payload.window_start.isoformat() if payload.window_start else None,
        "updated_at": record.occurred_at.isoformat(),
        "funnel": {name: counts[source] for name, source in FUNNEL},
        "uplift": uplift.model_dump(),
    }


def with_names(rows: list[dict[str, Any]], rules: Sequence[Rule] | None) -> list[dict[str, Any]]:
    """The rows with each rule's name and enabled flag from the site's current rules (what
    the workers run); a rule no longer in them (removed, renamed id) keeps None for both."""
    known = {rule.id: rule for rule in rules or ()}
    named: list[dict[str, Any]] = []
    for row in rows:
        rule = known.get(row["rule_id"])
        named.append(
            {
                **row,
                "name": rule.name if rule is not None else None,
                "enabled": rule.enabled if rule is not None else None,
            }
        )
    return named


CSV_HEADER = (
    "rule_id",
    "name",
    "enabled",
    "since",
    "updated_at",
    *(name for name, _ in FUNNEL),
    "conversion_invited",
    "conversion_held_out",
    "uplift_absolute",
    "uplift_relative",
    "z",
    "p_value",
    "significant",
    "revenue_per_visitor_invited",
    "revenue_per_visitor_held_out",
    "revenue_t",
    "revenue_p_value",
)


def csv_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for row in rows:
        uplift = row["uplift"]
        out.append(
            [
                row["rule_id"],
                row["name"],
                row["enabled"],
                row["since"] or "",
                row["updated_at"],
                *(row["funnel"][name] for name, _ in FUNNEL),
                uplift["conversion_invited"],
                uplift["conversion_held_out"],
                uplift["absolute"],
                uplift["relative"],
                uplift["z"],
                uplift["p_value"],
                uplift["significant"],
                uplift["revenue_per_visitor_invited"],
                uplift["revenue_per_visitor_held_out"],
                uplift["revenue_t"],
                uplift["revenue_p_value"],
            ]
        )
    return out
