"""`beckon rules backtest` on the real broker: recorded events in, figures out, nothing written.

`tracking.events` is shared with the other tests, so the rules file names a site of this test
only: every other site's records are read but not replayed (and not reported).
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from beckon_contracts import topics
from beckon_contracts.topics import Topic
from beckon_devstack.kafka_probe import Record, read_records
from beckon_messaging import ensure_topics
from triggers.backtest import Backtest, replay_topic
from triggers_testing import T0, Kafka, product_view

pytestmark = pytest.mark.integration

H = 3600
FOURTH_VIEW = {
    "id": "fourth-view",
    "name": "Keeps coming back to one product",
    "when": {"all": [{"event": "product_viewed"}, {"product_views": {"gte": 4}}]},
    "message": "Still thinking about the {product_name}?",
    "holdout_percent": 0,
}


def _backtest(bootstrap: str, rules_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "triggers.cli", "rules", "backtest", str(rules_file)),
            *("--bootstrap", bootstrap, *extra),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def _records_of(bootstrap: str, topic: str, site_id: str) -> list[Record]:
    def mine(record: Record) -> bool:
        try:
            return bool(orjson.loads(record.value).get("site_id") == site_id)
        except (orjson.JSONDecodeError, AttributeError):
            return False

    return await read_records(bootstrap, topic, match=mine, until=lambda _found: True, drain=True)


async def test_backtest_replays_recorded_events_without_side_effects(
    kafka: Kafka, kafka_bootstrap: str, site_id: str, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        yaml.safe_dump(
            {"site_id": site_id, "acceptance_rate": 0.5, "rules": [FOURTH_VIEW]}, sort_keys=False
        )
    )

    def views(visitor: str, start: float, n: int) -> list[dict[str, Any]]:
        return [product_view(site_id, visitor, start + 30 * i) for i in range(n)]

    await kafka.track(
        *views("v1", 30, 5),  # fires at the 4th view (hour 0)
        *views("v2", 60, 3),  # 3 views: never
        *views("v3", H + 30, 4),  # fires (hour 1)
        *views("v4", H + 60, 4),  # fires (hour 1): the peak hour has 2
        *views("v5", 3 * H, 4),  # would fire, but after --to
    )
    await kafka.raw(topics.TRACKING_EVENTS.name, f"{site_id}:bad".encode(), b"{definitely not json")

    window = [
        "--from",
        T0.isoformat(),
        "--to",
        (T0 + timedelta(hours=2)).isoformat(),
        "--handling-time",
        "30m",
    ]
    result = _backtest(kafka_bootstrap, rules_file, *window, "--json")
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)  # JSON only on stdout
    records = report["records"]
    assert records["replayed"] == 5 + 3 + 4 + 4
    assert records["out_of_range"] == 4
    assert records["skipped_reasons"].get("$: not JSON", 0) >= 1
    assert records["read"] >= 5 + 3 + 4 + 4 + 4 + 1
    assert [site["site_id"] for site in report["sites"]] == [site_id]
    site = report["sites"][0]
    assert (site["events"], site["visitors"]) == (16, 4)
    (rule,) = site["rules"]
    assert rule["rule_id"] == "fourth-view"
    assert (rule["eligible"], rule["fired"], rule["held_out"]) == (3, 3, 0)
    assert rule["peak_fires_per_hour"] == 2
    assert rule["expected_conversations"] == pytest.approx(1.5)
    assert rule["concurrent_chats"] == pytest.approx(2 * 0.5 * 0.5)
    assert rule["agents_needed"] == 1
    # first event at 30 s, last at 1 h + 150 s
    assert site["span_hours"] == pytest.approx((H + 150 - 30) / H)
    assert rule["fires_per_hour"] == pytest.approx(3 / ((H + 120) / H))
    assert site["total"]["fired"] == 3
    assert "records" in result.stderr  # the progress line

    # the table, and the --acceptance-rate override
    table = _backtest(kafka_bootstrap, rules_file, *window, "--acceptance-rate", "0.2")
    assert table.returncode == 0, table.stderr
    assert f"site {site_id} v1: 16 events, 4 visitors" in table.stdout
    fourth = next(line for line in table.stdout.splitlines() if line.startswith("fourth-view"))
    # eligible, fired, held out, capped, fires/h (3 over 1.03 h), peak/h, conversations, agents
    assert fourth.split()[-8:] == ["3", "3", "0", "0", "2.90", "2", "0.6", "1"], table.stdout
    assert "acceptance 20%" in table.stdout

    # no side effects: nothing about this site anywhere the worker would write
    for topic in (topics.CHAT_INVITATIONS, topics.TRIGGERS_CANDIDATES, topics.TRIGGERS_OUTCOMES):
        assert await _records_of(kafka_bootstrap, topic.name, site_id) == [], topic.name


async def test_an_empty_topic_returns_at_once(kafka_bootstrap: str, site_id: str) -> None:
    empty = Topic(name=f"backtest-empty-{site_id}", partitions=3, key="site:visitor")
    await ensure_topics(kafka_bootstrap, [empty])
    backtest = Backtest([])
    assert await replay_topic(kafka_bootstrap, backtest, topic=empty.name, timeout_s=20) == 0
    assert backtest.read == 0


def test_bad_rules_exit_2(kafka_bootstrap: str, tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("site_id: x\nrules:\n  - id: BAD ID\n")
    result = _backtest(kafka_bootstrap, rules_file, "--json")
    assert result.returncode == 2
    assert result.stdout == ""
