"""The metrics every service's Kafka and outbox plumbing shares, in one registry per process
(`REGISTRY`: each service serves it beside its own on its metrics port).

- `beckon_dead_letters_total{topic,reason}`: records written to a dead-letter topic (`topic`
  is the dead-letter topic), counted once the write is done (`count_dead_letter`).
- `beckon_outbox_pending{outbox}` / `beckon_outbox_oldest_age_seconds{outbox}`: the rows of an
  outbox not yet relayed to Kafka, and the age of the oldest (set by the relay's own loop).
"""

from __future__ import annotations

from beckon_contracts.dead_letter import DeadLettered
from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry()

DEAD_LETTERS = Counter(
    "beckon_dead_letters",
    "Records written to a dead-letter topic",
    ["topic", "reason"],
    registry=REGISTRY,
)
OUTBOX_PENDING = Gauge(
    "beckon_outbox_pending",
    "Outbox rows not yet relayed to Kafka",
    ["outbox"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "beckon_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet relayed to Kafka (0: none)",
    ["outbox"],
    registry=REGISTRY,
)


def count_dead_letter(topic: str, letter: DeadLettered | str) -> None:
    """One record written to the dead-letter topic `topic` (the letter, or its reason)."""
    reason = letter if isinstance(letter, str) else letter.payload.reason
    DEAD_LETTERS.labels(topic, reason).inc()
