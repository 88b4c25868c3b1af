"""Per-rule funnel and hold-out uplift: plain counters and sums, and the two tests on them.

A rule's eligible visitors are split into an invited arm and a held-out arm (similar visitors
deliberately not invited). `RuleFunnel` counts the funnel steps and, per arm, the visitors who
ordered and the revenue that followed, keeping sums and sums of squares of revenue *per
visitor* so Welch's t-test needs no per-visitor list.

Conversion is per visitor: the caller reports a visitor's first order after the assignment
with `first_for_visitor=True` (it counts as a conversion) and later orders with `False` (only
revenue). Because the variance is over each visitor's *total* revenue, a later order must
say how much that visitor had already brought (`revenue_before`): the sum of squares grows by
(before + x)² - before², not x².

Conversion uses a pooled two-proportion z-test; revenue per visitor uses Welch's t-test whose
p-value is taken from the normal distribution instead of Student's t. That is accurate for the
hundreds of visitors per arm a rule needs before its numbers mean anything, and slightly
optimistic (p too small) for tiny arms. Both p-values are two-sided, via `math.erfc`.
Every division is guarded: with no data the tests say z = 0, p = 1 (no evidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from beckon_contracts.rule_stats import RuleCounts, RuleStatsPayload, Uplift

Arm = Literal["invited", "held_out"]
CountKind = Literal[
    "eligible", "invited", "held_out", "shown", "accepted", "declined", "conversation"
]
OrderKind = Literal["order_invited", "order_held_out", "revenue_invited", "revenue_held_out"]
COUNT_KINDS: tuple[str, ...] = get_args(CountKind)
ORDER_KINDS: tuple[str, ...] = get_args(OrderKind)
SIGNIFICANCE = 0.05
_SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True, slots=True)
class Significance:
    statistic: float
    p_value: float


def two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> Significance:
    """Pooled two-proportion z-test of a vs b, two-sided."""
    if n_a <= 0 or n_b <= 0:
        return Significance(0.0, 1.0)
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b))
    if se <= 0.0:
        return Significance(0.0, 1.0)
    z = (successes_a / n_a - successes_b / n_b) / se
    return Significance(z, _two_sided_p(z))


def welch_t(
    n_a: int, sum_a: float, sumsq_a: float, n_b: int, sum_b: float, sumsq_b: float
) -> Significance:
    """Welch's t-test of means a vs b from sums; p from the normal approximation."""
    if n_a < 2 or n_b < 2:
        return Significance(0.0, 1.0)
    mean_a, mean_b = sum_a / n_a, sum_b / n_b
    var_a = max(0.0, (sumsq_a - n_a * mean_a * mean_a) / (n_a - 1))
    var_b = max(0.0, (sumsq_b - n_b * mean_b * mean_b) / (n_b - 1))
    se = math.sqrt(var_a / n_a + var_b / n_b)
    if se <= 0.0:
        return Significance(0.0, 1.0)
    t = (mean_a - mean_b) / se
    return Significance(t, _two_sided_p(t))


def _two_sided_p(statistic: float) -> float:
    return min(1.0, math.erfc(abs(statistic) / _SQRT2))


class RuleFunnel:
    """The funnel of one rule of one site (plain data; see `to_dict`)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNT_KINDS, 0)
        self.orders: dict[str, int] = {"invited": 0, "held_out": 0}  # visitors who ordered
        self.revenue: dict[str, float] = {"invited": 0.0, "held_out": 0.0}
        self.revenue_sq: dict[str, float] = {"invited": 0.0, "held_out": 0.0}
        self.since: float | None = None

    def _touch(self, at: float | None) -> None:
        if at is not None and (self.since is None or at < self.since):
            self.since = at

    def record(
        self,
        kind: CountKind | OrderKind,
        value: float = 0.0,
        *,
        revenue_before: float = 0.0,
        at: float | None = None,
    ) -> None:
        """Count one funnel step. `order_<arm>` is a visitor's first order (value = revenue,
        counts as a conversion); `revenue_<arm>` is a later order of the same visitor
        (see `record_order`)."""
        if kind in COUNT_KINDS:
            self.counts[kind] += 1
            self._touch(at)
        elif kind in ORDER_KINDS:
            step, _, arm = kind.partition("_")
            self.record_order(
                "invited" if arm == "invited" else "held_out",
                value,
                first_for_visitor=step == "order",
                revenue_before=revenue_before,
                at=at,
            )
        else:
            raise ValueError(f"unknown funnel step {kind!r}")

    def record_order(
        self,
        arm: Arm,
        revenue: float,
        *,
        first_for_visitor: bool,
        revenue_before: float = 0.0,
        at: float | None = None,
    ) -> None:
        """An order by a visitor of `arm` after the assignment.

        `first_for_visitor` counts the visitor as converted (once per visitor and rule
        assignment). For later orders pass `revenue_before`, the revenue that visitor already
        brought under this assignment, so the per-visitor variance stays exact.
        """
        if arm not in self.orders:
            raise ValueError(f"unknown arm {arm!r}")
        if revenue < 0 or revenue_before < 0 or not math.isfinite(revenue + revenue_before):
            raise ValueError("revenue must be a finite amount >= 0")
        before = 0.0 if first_for_visitor else revenue_before
        if first_for_visitor:
            self.orders[arm] += 1
        self.revenue[arm] += revenue
        self.revenue_sq[arm] += (before + revenue) ** 2 - before**2
        self._touch(at)

    # ---- results ---------------------------------------------------------------------------
    def uplift(self) -> Uplift:
        n_inv, n_out = self.counts["invited"], self.counts["held_out"]
        conv_inv = min(1.0, self.orders["invited"] / n_inv) if n_inv else 0.0
        conv_out = min(1.0, self.orders["held_out"] / n_out) if n_out else 0.0
        z = two_proportion_z(self.orders["invited"], n_inv, self.orders["held_out"], n_out)
        t = welch_t(
            n_inv,
            self.revenue["invited"],
            self.revenue_sq["invited"],
            n_out,
            self.revenue["held_out"],
            self.revenue_sq["held_out"],
        )
        absolute = conv_inv - conv_out
        return Uplift(
            conversion_invited=conv_inv,
            conversion_held_out=conv_out,
            absolute=absolute,
            relative=absolute / conv_out if conv_out > 0 else None,
            z=z.statistic,
            p_value=z.p_value,
            significant=z.p_value < SIGNIFICANCE,
            revenue_per_visitor_invited=self.revenue["invited"] / n_inv if n_inv else 0.0,
            revenue_per_visitor_held_out=self.revenue["held_out"] / n_out if n_out else 0.0,
            revenue_t=t.statistic,
            revenue_p_value=t.p_value,
        )

    def to_payload(self, rule_id: str) -> RuleStatsPayload:
        """The `rules.stats` payload; the caller wraps it in a `RuleStats` envelope."""
        counts = RuleCounts(
            eligible=self.counts["eligible"],
            invited=self.counts["invited"],
            held_out=self.counts["held_out"],
            shown=self.counts["shown"],
            accepted=self.counts["accepted"],
            declined=self.counts["declined"],
            conversations=self.counts["conversation"],
            orders_invited=self.orders["invited"],
            orders_held_out=self.orders["held_out"],
            revenue_invited=round(self.revenue["invited"], 2),
            revenue_held_out=round(self.revenue["held_out"], 2),
        )
        since = None if self.since is None else datetime.fromtimestamp(self.since, tz=UTC)
        return RuleStatsPayload(
            rule_id=rule_id, window_start=since, counts=counts, uplift=self.uplift()
        )

    # ---- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "counts": dict(self.counts),
            "orders": dict(self.orders),
            "revenue": dict(self.revenue),
            "revenue_sq": dict(self.revenue_sq),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuleFunnel:
        funnel = cls()
        funnel.since = data.get("since")
        funnel.counts.update({k: int(v) for k, v in data.get("counts", {}).items()})
        funnel.orders.update({k: int(v) for k, v in data.get("orders", {}).items()})
        funnel.revenue.update({k: float(v) for k, v in data.get("revenue", {}).items()})
        funnel.revenue_sq.update({k: float(v) for k, v in data.get("revenue_sq", {}).items()})
        return funnel
