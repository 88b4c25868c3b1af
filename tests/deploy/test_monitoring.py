"""Monitoring: deploy/components/monitoring (PodMonitors + PrometheusRule) and the Grafana
dashboard deploy/grafana/beckon.json.

What is checked: every metric the alert expressions and the dashboard queries use is one the
services define (found in their source: `Counter("name", ...)` and the like) or one of the few
named external series (Prometheus' `up`, kube-state-metrics); every alert has a severity, a
summary, a description and a runbook_url whose anchor is a heading of docs/operations.md; the
dashboard parses, uses the data source variable and every panel has a query; the component
renders with the base and each PodMonitor selects one workload's pods on a port they have.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from deploy_render import kustomize

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "base"
MONITORING = ROOT / "deploy" / "components" / "monitoring"
RULES = MONITORING / "prometheusrule.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "beckon.json"
OPERATIONS = ROOT / "docs" / "operations.md"
SERVICES = ("tracker", "triggers", "chat", "leads", "notifier")

# Series that do not come from our code: what they are and who exports them.
EXTERNAL_METRICS = {
    "up": "Prometheus itself: 1 when the scrape of a target worked",
    "kube_pod_status_ready": "kube-state-metrics",
    "kube_pod_status_phase": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}

# prometheus_client: a metric defined as `Counter("x")` or `Counter("x_total")` is exposed
# as x_total (and x_created); a histogram as its buckets, count and sum.
EXPOSED_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_count", "_sum", "_created"),
    "Summary": ("", "_count", "_sum", "_created"),
}
# `Gauge("x", ...)`, or a custom collector's `GaugeMetricFamily("x", ...)` (exposed alike)
DEFINITION = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary)(?:MetricFamily)?\(\s*[\"']([A-Za-z_:][\w:]*)[\"']"
)
PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def exposed(name: str, kind: str) -> set[str]:
    stem = name.removesuffix("_total") if kind == "Counter" else name
    return {stem + suffix for suffix in EXPOSED_SUFFIXES[kind]}


def defined_metrics() -> dict[str, str]:
    """Every series name the services' and libs' source defines -> the file defining it."""
    found: dict[str, str] = {}
    sources = [*ROOT.glob("services/*/src/**/*.py"), *ROOT.glob("libs/*/src/**/*.py")]
    for path in sorted(sources):
        for kind, name in DEFINITION.findall(path.read_text()):
            for series in exposed(name, kind):
                found[series] = str(path.relative_to(ROOT))
    return found


def known_metrics() -> set[str]:
    return set(defined_metrics()) | set(EXTERNAL_METRICS)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (loosely: strings, label matchers, ranges,
    groupings, Grafana variables, functions and keywords are not metric names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', " ", expr)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = GROUPING.sub(" ", text)
    return {
        match.group(1)
        for match in IDENTIFIER.finditer(text)
        if not match.group(2) and match.group(1).lower() not in PROMQL_KEYWORDS
    }


def unknown_metrics(expressions: list[str]) -> dict[str, list[str]]:
    """Each metric name used but not defined -> the expressions using it."""
    known, unknown = known_metrics(), {}
    for expr in expressions:
        for name in sorted(metric_names(expr) - known):
            unknown.setdefault(name, []).append(expr)
    return unknown


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def dashboard_queries(board: dict[str, Any]) -> list[str]:
    queries = [target["expr"] for panel in panels(board) for target in panel.get("targets", [])]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            # label_values(metric, label): the metric is the first argument
            queries.append(re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", query))
    return queries


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub makes for a document's headings."""
    anchors = set()
    for line in markdown.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_metric_names_reads_promql_loosely():
    expr = (
        'sum by (job, le) (rate(a_bucket{code=~"5..", job="x"}[5m])) / on (job) group_left '
        'b > 0.5 and time() - c offset 5m or histogram_quantile(0.99, d{x="{y}"}) > 1e-3'
    )
    assert metric_names(expr) == {"a_bucket", "b", "c", "d"}
    assert metric_names('sum(rate(x_total{namespace=~"$namespace"}[$__rate_interval]))') == {
        "x_total"
    }


def test_defined_metrics_are_found_in_the_source():
    defined = defined_metrics()
    # a counter, a histogram and gauges, from three services
    assert defined["tracker_events_total"] == "services/tracker/src/tracker/metrics.py"
    assert {"triggers_batch_seconds_bucket", "triggers_batch_seconds_sum"} <= set(defined)
    assert {"chat_sockets", "notifier_emails_sent", "leads_outbox_relayed"} <= set(defined)


def test_an_unknown_metric_is_reported():
    assert unknown_metrics(["sum(rate(beckon_made_up_total[5m]))"]) == {
        "beckon_made_up_total": ["sum(rate(beckon_made_up_total[5m]))"]
    }


def test_alerts_use_only_metrics_the_services_define():
    unknown = unknown_metrics([rule["expr"] for rule in alert_rules()])
    assert not unknown, f"no service defines {sorted(unknown)}: {unknown}"


def test_the_dashboard_uses_only_metrics_the_services_define():
    unknown = unknown_metrics(dashboard_queries(dashboard()))
    assert not unknown, f"no service defines {sorted(unknown)}: {unknown}"


def test_every_alert_is_described_and_has_a_runbook_section():
    anchors = heading_anchors(OPERATIONS.read_text())
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        url = urlsplit(annotations["runbook_url"])
        assert url.path.endswith("/docs/operations.md"), name
        assert url.fragment == name.lower(), f"{name}: its anchor is its own name"
        assert url.fragment in anchors, f"{name}: no heading '### {name}' in docs/operations.md"


def test_the_dashboard_is_well_formed():
    board = dashboard()
    assert board["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], f"{panel['title']}: no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), f"{panel['title']}: empty query {target['refId']}"
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The base with the monitoring component, as an overlay would list them."""
    overlay = tmp_path_factory.mktemp("monitoring-overlay")
    # kustomize refuses absolute roots: the paths are relative to the overlay
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(BASE, overlay)],
        "components": [os.path.relpath(MONITORING, overlay)],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return kustomize(overlay)


def test_the_component_renders_with_the_base(rendered):
    base = kustomize(BASE)
    added = [doc for doc in rendered if doc not in base]
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in added)
    assert kinds == sorted(
        [("PodMonitor", name) for name in SERVICES] + [("PrometheusRule", "beckon")]
    )
    assert all(doc["apiVersion"] == "monitoring.coreos.com/v1" for doc in added)


def test_each_pod_monitor_scrapes_a_port_its_pods_serve_metrics_on(rendered):
    workloads = [doc for doc in rendered if doc["kind"] in ("Deployment", "StatefulSet")]
    for monitor in (doc for doc in rendered if doc["kind"] == "PodMonitor"):
        name, selector = monitor["metadata"]["name"], monitor["spec"]["selector"]["matchLabels"]
        [workload] = [
            doc
            for doc in workloads
            if selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert monitor["spec"]["jobLabel"] == "app"
        assert workload["spec"]["template"]["metadata"]["labels"]["app"] == name
        [container] = workload["spec"]["template"]["spec"]["containers"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        env = {variable["name"]: variable.get("value") for variable in container.get("env", [])}
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["path"] == "/metrics", name
            assert endpoint["port"] in ports, f"{name}: no container port {endpoint['port']!r}"
            if endpoint["port"] == "metrics":  # the public services' separate metrics server
                assert env[f"{name.upper()}_METRICS_PORT"] == str(ports["metrics"]), name
