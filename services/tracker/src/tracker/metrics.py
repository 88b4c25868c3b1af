"""The tracker's Prometheus metrics, in a registry of its own (one per app instance)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class TrackerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tracker_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tracker_http_request_duration_seconds",
            "Time to answer, including broker acknowledgement",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.events = Counter(
            "tracker_events", "Events by outcome", ["outcome"], registry=self.registry
        )
        self.ack_seconds = Histogram(
            "tracker_broker_ack_seconds",
            "Wait for the broker to acknowledge a request's records",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "tracker_rate_limited", "Requests refused with 429", ["scope"], registry=self.registry
        )
        self.broker_failures = Counter(
            "tracker_broker_failures",
            "Requests answered 503 because the broker did not acknowledge",
            registry=self.registry,
        )
