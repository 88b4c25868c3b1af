"""Faust behaviour that faust-streaming does not let us configure.

Faust creates its consumer with `fetch_max_wait_ms=1500` hard-coded. On Apache Kafka a fetch
returns as soon as data arrives, so the wait only matters on idle partitions; Tansu answers
a fetch only when the wait is over, which put 1-1.5 s of latency on each hop of the pipeline
(events → candidates → invitations). The worker sets its own wait here instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
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


# ---- table recovery on Tansu ------------------------------------------------------------------
# Faust decides when a table has been rebuilt from its changelog by comparing with the end
# offsets (ListOffsets). Tansu reports the first offset of the partition's last record batch
# + 1 instead of the last offset + 1 (TANSU.md), so recovery would stop early or fail with a
# ConsistencyError whenever changelogs are written in batches. A fetch, however, returns the
# right high watermark: fetching from the reported end - 1 reads that last batch and with it
# the true end. With this, changelogs are batched normally on Tansu too.

_original_highwaters = faust_aiokafka.AIOKafkaConsumerThread._highwaters


async def _fetched_highwaters(self: Any, partitions: Any) -> Any:
    reported = await _original_highwaters(self, partitions)
    if not _settings.get("verify_highwaters"):
        return reported
    consumer = self._ensure_consumer()
    return await true_highwaters(consumer._client._bootstrap_servers, reported)


async def true_highwaters(bootstrap: Any, reported: Mapping[Any, int]) -> dict[Any, int]:
    """The partitions' real ends, read from fetch responses (Tansu-safe)."""
    ends = dict(reported)
    pending = {tp: end for tp, end in reported.items() if end > 0}
    if not pending:
        return ends
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        probe.assign([TopicPartition(tp.topic, tp.partition) for tp in pending])
        for tp, end in pending.items():
            probe.seek(TopicPartition(tp.topic, tp.partition), end - 1)
        deadline = asyncio.get_running_loop().time() + 30
        while pending and asyncio.get_running_loop().time() < deadline:
            await probe.getmany(timeout_ms=200)
            for tp in list(pending):
                highwater = probe.highwater(TopicPartition(tp.topic, tp.partition))
                if highwater is not None:
                    ends[tp] = max(highwater, pending.pop(tp))
        if pending:
            raise RuntimeError(f"no fetch answered for {sorted(map(str, pending))}")
    finally:
        await probe.stop()
    return ends


def verify_highwaters() -> None:
    """Use fetched high watermarks for table recovery (needed on Tansu, harmless on Kafka)."""
    _settings["verify_highwaters"] = 1
    faust_aiokafka.AIOKafkaConsumerThread._highwaters = _fetched_highwaters  # type: ignore[method-assign]
