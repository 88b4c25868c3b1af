"""Faust's Kafka consumer, with each fetch asking for the partitions active when it began.

Faust (faust-streaming 0.15.3) hands its *live* set of active partitions to aiokafka's
`fetched_records`, which holds on to it while it waits for records. Faust empties that set for
a moment at the end of table recovery (changelog partitions paused, stream partitions not yet
resumed), and aiokafka reads an empty set as "every partition": a fetch that wakes then drains
the stream partitions, and Faust drops those records as not active. aiokafka's position has
moved past them all the same; Faust's seek to the committed offsets, which follows, brings
back only partitions that have a committed offset. Records of a partition without one (a
worker killed before its first commit, a new consumer group) were never processed, and the
worker sat idle with lag it never took (robinhood/faust fixed the same race in 2018, PR 69;
it came back). Asking with a copy of the set keeps the fetch to what was active when it began.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka


class Consumer(faust_aiokafka.Consumer):
    async def _getmany(self, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        asked = None if active_partitions is None else set(active_partitions)
        return await self._thread.getmany(asked, timeout)


class Transport(faust_aiokafka.Transport):
    Consumer = Consumer


class App(faust.App):
    """`faust.App` on the transport above (the same `kafka://` brokers and settings)."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
