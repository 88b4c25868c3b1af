"""Faust behaviour that faust-streaming does not let us configure.

Faust creates its consumer with `fetch_max_wait_ms=1500` hard-coded. On Apache Kafka a fetch
returns as soon as data arrives, so the wait only matters on idle partitions; Tansu answers
a fetch only when the wait is over, which put 1-1.5 s of latency on each hop of the pipeline
(events → candidates → invitations). The worker sets its own wait here instead.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

_original = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_settings: dict[str, int] = {}


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    consumer = _original(self, transport)
    if "fetch_max_wait_ms" in _settings:
        consumer._fetch_max_wait_ms = _settings["fetch_max_wait_ms"]
    return consumer


def set_fetch_max_wait(ms: int) -> None:
    """Longest time the broker may hold a fetch of the worker's stream consumer."""
    _settings["fetch_max_wait_ms"] = ms
    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]
