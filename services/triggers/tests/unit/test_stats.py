import json
import math
import statistics
from datetime import UTC, datetime

import orjson
import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.rule_stats import RuleStats, parse_rule_stats, rule_stats_key
from triggers.domain.stats import RuleFunnel, two_proportion_z, welch_t


def _funnel(invited, orders_invited, held_out, orders_held_out):
    funnel = RuleFunnel()
    for _ in range(invited):
        funnel.record("invited")
    for _ in range(held_out):
        funnel.record("held_out")
    for _ in range(orders_invited):
        funnel.record_order("invited", 50.0, first_for_visitor=True)
    for _ in range(orders_held_out):
        funnel.record_order("held_out", 50.0, first_for_visitor=True)
    return funnel


def test_z_test_matches_the_formula():
    uplift = _funnel(1000, 120, 1000, 90).uplift()
    p1, p2 = 0.12, 0.09
    pooled = (120 + 90) / 2000
    z = (p1 - p2) / math.sqrt(pooled * (1 - pooled) * (2 / 1000))
    assert uplift.z == pytest.approx(z)
    assert uplift.z == pytest.approx(2.19, abs=0.01)
    assert uplift.p_value == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert uplift.p_value == pytest.approx(0.028, abs=0.001)
    assert uplift.significant is True
    assert uplift.conversion_invited == pytest.approx(0.12)
    assert uplift.conversion_held_out == pytest.approx(0.09)
    assert uplift.absolute == pytest.approx(0.03)
    assert uplift.relative == pytest.approx(0.03 / 0.09)


def test_a_small_difference_is_not_significant_and_the_sign_follows_the_arms():
    uplift = _funnel(200, 10, 200, 14).uplift()
    assert uplift.z < 0
    assert uplift.p_value > 0.05
    assert uplift.significant is False


@pytest.mark.parametrize(
    ("invited", "orders_invited", "held_out", "orders_held_out"),
    [(0, 0, 0, 0), (100, 5, 0, 0), (0, 0, 100, 5), (100, 0, 100, 0), (50, 50, 50, 50)],
)
def test_zero_counts_never_divide_by_zero(invited, orders_invited, held_out, orders_held_out):
    uplift = _funnel(invited, orders_invited, held_out, orders_held_out).uplift()
    assert (uplift.z, uplift.p_value, uplift.significant) == (0.0, 1.0, False)
    assert (uplift.revenue_t, uplift.revenue_p_value) == (0.0, 1.0)
    assert 0.0 <= uplift.revenue_per_visitor_invited <= 50.0


def test_relative_uplift_is_none_without_a_base():
    uplift = _funnel(100, 5, 100, 0).uplift()
    assert uplift.relative is None
    assert uplift.absolute == pytest.approx(0.05)


def test_welch_on_revenue_per_visitor_matches_the_formula():
    invited = [0.0] * 80 + [100.0] * 15 + [250.0] * 5
    held_out = [0.0] * 90 + [100.0] * 10
    funnel = RuleFunnel()
    for arm, values in (("invited", invited), ("held_out", held_out)):
        for value in values:
            funnel.record(arm)
            if value:
                funnel.record_order(arm, value, first_for_visitor=True)
    m1, m2 = statistics.fmean(invited), statistics.fmean(held_out)
    v1, v2 = statistics.variance(invited), statistics.variance(held_out)
    t = (m1 - m2) / math.sqrt(v1 / len(invited) + v2 / len(held_out))
    uplift = funnel.uplift()
    assert uplift.revenue_per_visitor_invited == pytest.approx(m1)
    assert uplift.revenue_per_visitor_held_out == pytest.approx(m2)
    assert uplift.revenue_t == pytest.approx(t)
    assert uplift.revenue_p_value == pytest.approx(math.erfc(abs(t) / math.sqrt(2)))


def test_later_orders_add_revenue_per_visitor_not_conversions():
    """A visitor who orders 100 then 50 is one conversion with 150 of revenue."""
    funnel = RuleFunnel()
    for _ in range(3):
        funnel.record("invited")
    funnel.record_order("invited", 100.0, first_for_visitor=True)
    funnel.record_order("invited", 50.0, first_for_visitor=False, revenue_before=100.0)
    funnel.record("order_invited", 30.0)
    funnel.record("revenue_invited", 10.0, revenue_before=30.0)
    assert funnel.orders["invited"] == 2
    assert funnel.revenue["invited"] == 190.0
    assert funnel.revenue_sq["invited"] == pytest.approx(150.0**2 + 40.0**2)
    assert funnel.uplift().conversion_invited == pytest.approx(2 / 3)


def test_stand_alone_tests_handle_degenerate_input():
    assert two_proportion_z(0, 0, 0, 10).p_value == 1.0
    assert welch_t(1, 5.0, 25.0, 10, 5.0, 25.0).p_value == 1.0
    assert welch_t(3, 30.0, 300.0, 3, 30.0, 300.0).p_value == 1.0  # zero variance


def test_funnel_steps_and_payload():
    funnel = RuleFunnel()
    start = datetime(2026, 11, 23, 10, tzinfo=UTC).timestamp()
    for kind, times in [
        ("eligible", 10),
        ("invited", 8),
        ("held_out", 2),
        ("shown", 7),
        ("accepted", 3),
        ("declined", 2),
        ("conversation", 3),
    ]:
        for i in range(times):
            funnel.record(kind, at=start + 60 + i)
    funnel.record("eligible", at=start)  # the earliest step sets the window start
    funnel.record_order("invited", 120.456, first_for_visitor=True, at=start + 500)
    payload = funnel.to_payload("cart-rescue")
    assert payload.rule_id == "cart-rescue"
    assert payload.window_start == datetime(2026, 11, 23, 10, tzinfo=UTC)
    counts = payload.counts
    assert (counts.eligible, counts.invited, counts.held_out) == (11, 8, 2)
    assert (counts.shown, counts.accepted, counts.declined, counts.conversations) == (7, 3, 2, 3)
    assert (counts.orders_invited, counts.orders_held_out) == (1, 0)
    assert counts.revenue_invited == 120.46
    assert payload.uplift.conversion_invited == pytest.approx(1 / 8)


def test_unknown_steps_and_bad_revenue_are_rejected():
    funnel = RuleFunnel()
    with pytest.raises(ValueError, match="unknown funnel step"):
        funnel.record("clicked")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown arm"):
        funnel.record_order("control", 1.0, first_for_visitor=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite amount"):
        funnel.record_order("invited", -1.0, first_for_visitor=True)
    with pytest.raises(ValueError, match="finite amount"):
        funnel.record_order("invited", math.nan, first_for_visitor=True)


def test_funnel_round_trips_as_plain_json():
    funnel = _funnel(1000, 120, 1000, 90)
    funnel.record("shown", at=1_800_000_000.0)
    data = json.loads(json.dumps(funnel.to_dict()))
    restored = RuleFunnel.from_dict(data)
    assert restored.to_dict() == funnel.to_dict()
    assert restored.uplift() == funnel.uplift()


def test_rule_stats_record_round_trips():
    funnel = _funnel(1000, 120, 1000, 90)
    record = RuleStats(
        event_id=uuid7(),
        occurred_at=datetime(2026, 11, 23, 10, tzinfo=UTC),
        site_id="demo",
        payload=funnel.to_payload("r1"),
    )
    raw = record.model_dump_json()
    assert parse_rule_stats(raw) == record
    assert orjson.loads(raw)["type"] == "rule.stats"
    assert rule_stats_key("demo", "r1") == b"demo:r1"
