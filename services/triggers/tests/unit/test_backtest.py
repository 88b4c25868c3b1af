"""`Backtest`: recorded events replayed through the engine, decided like admission would with
unlimited capacity, and sized per rule and per site. Event time is simulated with
`occurred_at` (T0 + seconds); every expected figure below is computed by hand."""

from __future__ import annotations

import argparse
import math
from typing import Any

import orjson
import pytest
from beckon_contracts.rules import SiteRules
from beckon_devstack.ports import free_port
from triggers.backtest import (
    Backtest,
    Report,
    RuleReport,
    agents_needed,
    format_report,
    parse_instant,
    run_backtest_command,
)
from triggers.domain.rules import holdout_position
from triggers_testing import T0, product_view, tracking_event

SITE = "bt-site"
FOURTH_VIEW: dict[str, Any] = {
    "id": "fourth-view",
    "name": "Keeps coming back to one product",
    "when": {"all": [{"event": "product_viewed"}, {"product_views": {"gte": 4}}]},
    "message": "Still thinking about the {product_name}?",
    "holdout_percent": 0,
}
CHECKOUT: dict[str, Any] = {
    "id": "checkout",
    "name": "Started checkout",
    "when": {"event": "checkout_started"},
    "message": "Need a hand with your order?",
    "holdout_percent": 0,
}
H = 3600


def site_rules(*rules: dict[str, Any], site_id: str = SITE, **settings: Any) -> SiteRules:
    return SiteRules.model_validate({"site_id": site_id, "rules": list(rules), **settings})


def feed(backtest: Backtest, events: list[dict[str, Any]]) -> None:
    for event in sorted(events, key=lambda e: str(e["occurred_at"])):
        backtest.feed(event)


def views(visitor: str, start: float, n: int = 4, every: float = 30, **kw: Any) -> list[Any]:
    return [product_view(SITE, visitor, start + every * i, **kw) for i in range(n)]


def checkout(visitor: str, start: float) -> list[dict[str, Any]]:
    return [
        tracking_event(SITE, visitor, "page_viewed", start, url="https://shop.example/cart"),
        tracking_event(
            SITE,
            visitor,
            "checkout_started",
            start + 30,
            url="https://shop.example/checkout",
            payload={"value": 120.0, "currency": "EUR", "items": [{"quantity": 2}]},
        ),
    ]


def row(report: Report, rule_id: str, site_id: str = SITE) -> RuleReport:
    site = next(s for s in report.sites if s.site_id == site_id)
    return site.total if rule_id == "*" else next(r for r in site.rules if r.rule_id == rule_id)


def test_fourth_view_fires_once_per_visitor_session() -> None:
    backtest = Backtest([site_rules(FOURTH_VIEW)])
    events = [
        *views("v1", 30, n=6),  # the 4th view fires; the 5th and 6th don't (once per session)
        *views("v2", 30, n=3),  # only 3 views: never
        *views("v1", 4000, n=2, session_id="s2"),  # a new session: views 7 and 8 → fires again
    ]
    feed(backtest, events)
    report = backtest.report(handling_time_s=480)
    fourth = row(report, "fourth-view")
    assert (fourth.eligible, fourth.fired, fourth.held_out) == (2, 2, 0)
    assert report.replayed == len(events) == 11
    assert report.sites[0].visitors == 2
    # the second session's first view is at 4000 s (time on site 0 < 20 s); the second fires
    assert fourth.peak_fires_per_hour == 1


def test_min_browsing_holds_back_early_matches() -> None:
    backtest = Backtest([site_rules(FOURTH_VIEW, min_browsing="20s")])
    # views at 0, 5, 10, 15 s: the 4th view comes only 15 s into the session
    feed(backtest, views("quick", 0, n=4, every=5))
    assert row(backtest.report(handling_time_s=480), "fourth-view").fired == 0
    # a 5th view at 25 s: browsed long enough now
    backtest.feed(product_view(SITE, "quick", 25))
    assert row(backtest.report(handling_time_s=480), "fourth-view").fired == 1


def test_cooldown_is_respected() -> None:
    any_view = {
        "id": "any-view",
        "name": "Any product view",
        "when": {"event": "product_viewed"},
        "message": "Hello!",
        "holdout_percent": 0,
        "limits": {"once_per": None, "cooldown": "5m"},
    }
    backtest = Backtest([site_rules(any_view)])
    # a view every 30 s from 0 to 900 s: fires at 30 s (after min_browsing), 330 s, 630 s
    feed(backtest, views("v1", 0, n=31))
    result = row(backtest.report(handling_time_s=480), "any-view")
    assert result.fired == 3
    assert result.eligible == 1  # one (session, rule), counted once like admission does


def _visitors(inside: bool, count: int, percent: float, rule_id: str) -> list[str]:
    found = []
    for i in range(1000):
        visitor = f"h{i}"
        if (holdout_position(SITE, visitor, rule_id) < percent) is inside:
            found.append(visitor)
            if len(found) == count:
                return found
    raise AssertionError("not enough visitors")


def test_holdout_is_counted_and_blocks_like_an_invitation() -> None:
    rule = {**FOURTH_VIEW, "holdout_percent": 50}
    held = _visitors(True, 2, 50, "fourth-view")
    invited = _visitors(False, 3, 50, "fourth-view")
    backtest = Backtest([site_rules(rule)])
    feed(backtest, [e for v in held + invited for e in views(v, 30, n=6)])
    report = backtest.report(handling_time_s=480)
    result = row(report, "fourth-view")
    assert (result.eligible, result.fired, result.held_out) == (5, 3, 2)
    assert result.expected_conversations == pytest.approx(3 * 0.3)  # only the invited arm


def test_per_hour_figures_and_agents_needed() -> None:
    backtest = Backtest([site_rules(FOURTH_VIEW, CHECKOUT, acceptance_rate=0.5)])
    events: list[dict[str, Any]] = []
    for i in range(3):  # hour 0: 3 fourth-view fires (the first event of all at 0 s)
        events += views(f"a{i}", 100 * i)
    for i in range(7):  # hour 1: 7 fourth-view fires
        events += views(f"b{i}", H + 100 * i)
    events += views("c0", 2 * H + 1710)  # hour 2: 1 fourth-view fire, the last event at 9000 s
    for i in range(5):  # hour 2: 5 checkout fires
        events += checkout(f"d{i}", 2 * H + 100 * i)
    feed(backtest, events)

    report = backtest.report(handling_time_s=40 * 60, chats_per_agent=1)
    site = report.sites[0]
    assert site.span_hours == pytest.approx(2.5)
    assert site.first_event == "2026-11-02T10:00:00Z"
    assert site.last_event == "2026-11-02T12:30:00Z"

    fourth = row(report, "fourth-view")
    assert fourth.fired == 11
    assert fourth.fires_per_hour == pytest.approx(11 / 2.5)
    assert fourth.peak_fires_per_hour == 7
    assert fourth.peak_hour == "2026-11-02T11:00:00Z"
    assert fourth.expected_conversations == pytest.approx(5.5)
    assert fourth.peak_conversations_per_hour == pytest.approx(3.5)
    assert fourth.concurrent_chats == pytest.approx(3.5 * 40 / 60)  # 2.33
    assert fourth.agents_needed == 3

    check = row(report, "checkout")
    assert (check.fired, check.peak_fires_per_hour) == (5, 5)
    assert check.fires_per_hour == pytest.approx(2.0)
    assert check.agents_needed == math.ceil(5 * 0.5 * 40 / 60)  # 1.67 → 2

    # agents are shared: the site's peak hour is hour 1 (7), not 7 + 5 from different hours
    total = row(report, "*")
    assert (total.fired, total.peak_fires_per_hour) == (16, 7)
    assert total.fires_per_hour == pytest.approx(16 / 2.5)
    assert total.expected_conversations == pytest.approx(8.0)
    assert total.agents_needed == 3

    # with 2 chats per agent and the acceptance rate given on the command line
    other = backtest.report(handling_time_s=40 * 60, chats_per_agent=2, acceptance_rate=0.25)
    assert row(other, "fourth-view").expected_conversations == pytest.approx(11 * 0.25)
    assert row(other, "*").concurrent_chats == pytest.approx(7 * 0.25 * 40 / 60)  # 1.17
    assert row(other, "*").agents_needed == 1
    assert other.sites[0].acceptance_rate == 0.25


def test_agents_needed_rounds_up_without_float_noise() -> None:
    assert agents_needed(0.0, 3) == 0
    assert agents_needed(0.01, 3) == 1
    assert agents_needed(6.0, 3) == 2
    assert agents_needed(0.1 * 3 * 20, 3) == 2  # 6.000000000000001 concurrent chats
    assert agents_needed(6.5, 3) == 3


def test_short_span_averages_over_one_hour() -> None:
    backtest = Backtest([site_rules(FOURTH_VIEW)])
    feed(backtest, views("v1", 30) + views("v2", 60))
    result = row(backtest.report(handling_time_s=480), "fourth-view")
    assert result.fired == 2
    assert result.fires_per_hour == pytest.approx(2.0)  # span 2.5 min, counted as 1 h


def test_hourly_caps_per_rule_and_per_site() -> None:
    capped_rule = {**FOURTH_VIEW, "limits": {"max_per_hour": 2}}
    backtest = Backtest([site_rules(capped_rule, CHECKOUT, max_invitations_per_hour=3)])
    events: list[dict[str, Any]] = []
    for i in range(4):  # hour 0: 4 visitors match the capped rule: 2 fire
        events += views(f"a{i}", 100 * i)
    for i in range(3):  # hour 0, later: 3 checkouts; the site has room for 1 more this hour
        events += checkout(f"c{i}", 1000 + 100 * i)
    events += views("b0", H)  # hour 1: the caps start again
    feed(backtest, events)
    report = backtest.report(handling_time_s=480)
    fourth, check = row(report, "fourth-view"), row(report, "checkout")
    assert (fourth.eligible, fourth.fired, fourth.refused) == (5, 3, {"rule_hourly_cap": 2})
    assert (check.eligible, check.fired, check.refused) == (3, 1, {"site_hourly_cap": 2})


def test_bad_records_are_skipped_and_counted() -> None:
    backtest = Backtest([site_rules(FOURTH_VIEW)])
    good = views("v1", 30)
    naive = {**good[0], "event_id": "naive", "occurred_at": "2026-11-02T10:00:00"}
    backtest.feed(42)
    backtest.feed({**good[0], "type": "teleported"})
    backtest.feed({**good[0], "visitor_id": ""})
    backtest.feed(naive)
    backtest.feed_bytes(b"{not json")
    backtest.feed_bytes(orjson.dumps({**good[0], "payload": {"name": "x"}}))  # no product_id
    feed(backtest, good)
    report = backtest.report(handling_time_s=480)
    assert report.read == 10
    assert report.replayed == 4
    assert sum(report.skipped.values()) == 6
    assert report.skipped == {
        "$: record must be a JSON object": 1,
        "type: unknown event type 'teleported'": 1,
        "visitor_id: must be a visible identifier of 1-128 characters": 1,
        "occurred_at: must carry a timezone": 1,
        "$: not JSON": 1,
        "payload.product_id: is required": 1,
    }
    assert row(report, "fourth-view").fired == 1  # the good ones still count


def test_other_sites_window_and_duplicates() -> None:
    since = (T0.timestamp()) + 20
    backtest = Backtest([site_rules(FOURTH_VIEW)], since=since, until=T0.timestamp() + H)
    early = product_view(SITE, "v1", 0)  # before --from
    late = product_view(SITE, "v1", H)  # at --to: outside, the window is [from, to)
    stranger = product_view("someone-else", "v1", 30)
    first_three = views("v1", 30, n=3)
    backtest.feed(early)
    backtest.feed(stranger)
    feed(backtest, first_three)
    backtest.feed(first_three[2])  # a resend of the third view: not a fourth view
    backtest.feed(late)
    report = backtest.report(handling_time_s=480)
    assert (report.read, report.replayed) == (7, 3)
    assert (report.other_sites, report.out_of_range, report.duplicates) == (1, 2, 1)
    assert row(report, "fourth-view").fired == 0
    assert [s.site_id for s in report.sites] == [SITE]  # only the file's sites are reported
    assert report.to_dict()["window"] == {
        "from": "2026-11-02T10:00:20Z",
        "to": "2026-11-02T11:00:00Z",
    }


def test_table_is_aligned_and_json_is_plain_data() -> None:
    long_name = {**CHECKOUT, "name": "A rule with a name much longer than the column allows"}
    disabled = {**FOURTH_VIEW, "id": "off", "enabled": False}
    backtest = Backtest([site_rules(FOURTH_VIEW, long_name, disabled)])
    feed(backtest, views("v1", 30))
    report = backtest.report(handling_time_s=480)
    text = format_report(report)
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("rule "))
    table = [line for line in lines[header : header + 7] if not line.startswith("---")]
    assert [line.split()[0] for line in table] == ["rule", "fourth-view", "checkout", "off", "all"]
    assert len({len(line) for line in table}) == 1, text  # right-aligned numbers: same width
    assert "A rule with a name much longer th…" in text
    assert "disabled" in lines[header + 4]
    data = orjson.loads(report.to_json())
    assert data["sites"][0]["rules"][0]["fired"] == 1
    assert data["sites"][0]["total"]["agents_needed"] == 1  # 1 x 0.3 x 8 min / 3 → ceil


def test_parse_instant() -> None:
    assert parse_instant("2026-11-02") == T0.timestamp() - 10 * H
    assert parse_instant("2026-11-02T11:00:00+01:00") == T0.timestamp()
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_instant("yesterday")


def _args(**overrides: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "bootstrap": f"127.0.0.1:{free_port()}",
        "since": None,
        "until": None,
        "handling_time": "8m",
        "acceptance_rate": None,
        "json": True,
    }
    return argparse.Namespace(**{**values, **overrides})


@pytest.mark.parametrize(
    "overrides",
    [
        {"since": "not a time"},
        {"since": "2026-11-02T12:00Z", "until": "2026-11-02T10:00Z"},
        {"handling_time": "soon"},
        {"acceptance_rate": 1.5},
        {"chats_per_agent": 0},
    ],
)
def test_bad_arguments_exit_2(
    overrides: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_backtest_command(_args(**overrides), [site_rules(FOURTH_VIEW)]) == 2
    assert "beckon rules backtest:" in capsys.readouterr().err


def test_unreachable_broker_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    args = _args()
    assert run_backtest_command(args, [site_rules(FOURTH_VIEW)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert args.bootstrap in captured.err
    assert "make dev" in captured.err
