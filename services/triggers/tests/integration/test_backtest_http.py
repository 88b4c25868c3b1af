"""`POST /v1/backtest` on a real worker: the console's backtest of a rule set on the site's
recorded traffic of the last N hours (the same pure replay as `beckon rules backtest`)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from beckon_contracts.rules import SiteRules
from triggers.backtest_http import BacktestRequest, run_backtest
from triggers_testing import T0, Kafka, Worker, product_view

pytestmark = pytest.mark.integration

H = 3600
FOURTH_VIEW = {
    "id": "fourth-view",
    "name": "Keeps coming back to one product",
    "when": {"all": [{"event": "product_viewed"}, {"product_views": {"gte": 4}}]},
    "message": "Still thinking about the {product_name}?",
    "holdout_percent": 0,
}
NEVER = {
    "id": "never",
    "name": "Nobody orders twice here",
    "when": {"orders": {"gte": 2}},
    "message": "Welcome back!",
}


def _ago(seconds: float) -> float:
    """Event time `seconds` before now, as an offset from T0 (what triggers_testing takes)."""
    return time.time() - seconds - T0.timestamp()


def _views(site_id: str, visitor: str, start_ago: float, n: int) -> list[dict[str, Any]]:
    return [product_view(site_id, visitor, _ago(start_ago - 30 * i)) for i in range(n)]


def _rules(site_id: str) -> dict[str, Any]:
    return {"site_id": site_id, "acceptance_rate": 0.5, "rules": [FOURTH_VIEW, NEVER]}


async def test_the_worker_backtests_the_recorded_window(
    worker: Worker, kafka: Kafka, site_id: str
) -> None:
    await kafka.track(
        *_views(site_id, "v1", 2 * H + 600, 5),  # fires at the 4th view, two hours ago
        *_views(site_id, "v2", 2 * H + 300, 3),  # three views: never
        *_views(site_id, "v3", 1800, 4),  # fires, half an hour ago
        *_views(site_id, "v4", 30 * H, 4),  # would fire, but before the 24 h window
    )
    async with httpx.AsyncClient(base_url=worker.url, headers=worker.auth, timeout=60) as client:
        answer = await client.post(
            "/v1/backtest",
            json={"rules": _rules(site_id), "hours": 24, "handling_time": "6m"},
        )
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report["site_id"] == site_id
        assert report["truncated"] is None
        assert report["events"] == 5 + 3 + 4  # v4's views are outside the window
        assert report["visitors"] == 3
        rows = {row["rule_id"]: row for row in report["rules"]}
        fourth = rows["fourth-view"]
        assert (fourth["fired"], fourth["held_out"], fourth["peak_fires_per_hour"]) == (2, 0, 1)
        assert fourth["expected_conversations"] == pytest.approx(1.0)  # 2 x 0.5
        assert fourth["fires_per_hour"] == pytest.approx(2 / report["span_hours"])
        assert fourth["agents_needed"] == 1
        assert rows["never"]["fired"] == 0
        assert report["total"]["fired"] == 2

        # a shorter window sees only the last visitor
        answer = await client.post("/v1/backtest", json={"rules": _rules(site_id), "hours": 1})
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"]["fired"] == 1

        # a bad body is refused with the place of the mistake, never a 500
        bad = _rules(site_id)
        bad["rules"] = [{**FOURTH_VIEW, "when": {"cart_value": {"gte": "lots"}}}]
        answer = await client.post("/v1/backtest", json={"rules": bad, "hours": 24})
        assert answer.status_code == 422
        assert "rules.rules[0].when.cart_value" in answer.json()["detail"]
        answer = await client.post("/v1/backtest", content=b"not json")
        assert answer.status_code == 422

    # only chat, which holds the worker's token, may ask
    async with httpx.AsyncClient(base_url=worker.url, timeout=10) as stranger:
        answer = await stranger.post("/v1/backtest", json={"rules": _rules(site_id), "hours": 1})
        assert answer.status_code == 401
        assert (await stranger.get(f"/v1/sites/{site_id}")).status_code == 401


async def test_a_backtest_stops_at_its_record_budget(
    kafka: Kafka, kafka_bootstrap: str, site_id: str
) -> None:
    await kafka.track(*_views(site_id, "v1", 600, 5), *_views(site_id, "v2", 300, 5))
    request = BacktestRequest(rules=SiteRules.model_validate(_rules(site_id)), hours=2)
    whole = await run_backtest(kafka_bootstrap, request)
    assert whole["truncated"] is None
    assert whole["total"]["fired"] == 2
    cut = await run_backtest(kafka_bootstrap, request, max_records=whole["records"]["read"] - 3)
    assert cut["truncated"] == "records"
    assert cut["records"]["read"] == whole["records"]["read"] - 3
