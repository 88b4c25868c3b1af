"""Sample records the chat tests feed to the service (unit and integration alike)."""

from __future__ import annotations

from datetime import UTC, datetime

from beckon_contracts.ids import uuid7
from beckon_contracts.rule_stats import RuleCounts, RuleStats, RuleStatsPayload, Uplift


def rule_stats_record(
    site_id: str,
    rule_id: str,
    invited: int,
    *,
    at: datetime | None = None,
    orders_invited: int = 2,
    p_value: float = 0.03,
) -> bytes:
    """A `rules.stats` snapshot since 2025-03-01: `invited` of twice as many eligible, as many
    held out, a significant uplift at `p_value`, 120.5 of revenue from the invited."""
    return (
        RuleStats(
            event_id=uuid7(),
            occurred_at=at or datetime.now(UTC),
            site_id=site_id,
            payload=RuleStatsPayload(
                rule_id=rule_id,
                window_start=datetime(2025, 3, 1, tzinfo=UTC),
                counts=RuleCounts(
                    eligible=invited * 2,
                    invited=invited,
                    held_out=invited,
                    shown=invited,
                    accepted=3,
                    conversations=2,
                    orders_invited=orders_invited,
                    orders_held_out=1,
                    revenue_invited=120.5,
                    revenue_held_out=40.0,
                ),
                uplift=Uplift(
                    conversion_invited=0.2,
                    conversion_held_out=0.1,
                    absolute=0.1,
                    relative=1.0,
                    z=2.1,
                    p_value=p_value,
                    significant=True,
                ),
            ),
        )
        .model_dump_json()
        .encode()
    )
