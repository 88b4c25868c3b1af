"""Prometheus metrics of the triggers worker (served on /metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field

from beckon_messaging.metrics import REGISTRY as MESSAGING_METRICS
from beckon_messaging.progress import Watchdog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter("triggers_records_total", "Records processed", ["stage"], registry=r)
        self.batch_seconds = Histogram(
            "triggers_batch_seconds", "Time to process one batch", ["stage"], registry=r
        )
        self.duplicates = Counter(
            "triggers_duplicates_total", "Records skipped as already applied", registry=r
        )
        self.dead_lettered = Counter(
            "triggers_dead_lettered_total",
            "Records sent to a dead-letter topic",
            ["topic"],
            registry=r,
        )
        self.idle_forgotten = Counter(
            "triggers_idle_forgotten_total",
            "Table keys forgotten as idle (a visitor not seen for TRIGGERS_VISITOR_IDLE_S, an "
            "outcome id older than TRIGGERS_OUTCOME_IDS_KEEP_S)",
            ["table"],
            registry=r,
        )
        self.candidates = Counter(
            "triggers_candidates_total", "Visitors a rule selected", registry=r
        )
        self.decisions = Counter(
            "triggers_decisions_total", "Invitations issued or held out", ["kind"], registry=r
        )
        self.refused = Counter(
            "triggers_refused_total", "Candidates admission refused", ["reason"], registry=r
        )

    def observe_batch(self, stage: str, size: int, seconds: float) -> None:
        self.batch_seconds.labels(stage).observe(seconds)

    def render(self, watchdog: Watchdog | None = None) -> tuple[bytes, str]:
        """This worker's metrics, the shared messaging ones and the stages' progress."""
        body = generate_latest(self.registry) + generate_latest(MESSAGING_METRICS)
        if watchdog is not None:
            progress = CollectorRegistry()
            progress.register(watchdog.collector())
            body += generate_latest(progress)
        return body, CONTENT_TYPE_LATEST


METRICS = Metrics()
