"""Faust's Kafka consumer, with its fetch asking for a fixed set of partitions.

Faust (faust-streaming 0.15) passes its *live* set of active partitions to aiokafka's
`fetched_records`, which waits for records while Faust pauses and resumes partitions around a
rebalance and table recovery. aiokafka reads an empty set as "every partition", so a fetch that
wakes while Faust has paused everything (between the end of changelog recovery and the resume
of the stream partitions) drains records of paused partitions; Faust then drops them as not
active. The consumer's position has moved past them all the same, and a partition without a
committed offset (a worker killed before its first commit) is not sought back: those records
are never processed, and the worker sits idle with lag it never takes.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger("triggers.consumer")


class Consumer(faust_aiokafka.Consumer):
    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:
        asked = frozenset(active_partitions) if active_partitions is not None else None
        passed = asked if os.environ.get("TRIGGERS_FETCH_SNAPSHOT", "1") == "1" else active_partitions
        records = await self._thread.getmany(passed, timeout)
        if asked is not None:
            leaked = {tp for tp in records if tp not in asked}
            if leaked:
                log.warning(
                    "FETCH LEAK: %d records of %d partitions not asked for (%s)",
                    sum(len(records[tp]) for tp in leaked),
                    len(leaked),
                    sorted(f"{tp.topic}[{tp.partition}]" for tp in leaked)[:6],
                )
        return records


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


class App(faust.App):
    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
