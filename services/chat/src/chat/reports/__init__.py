"""Console feature: reports — per agent, per team, per rule, and the share of orders and
revenue assisted by chat; JSON and CSV. See docs/console-reports.md.

- `domain.py`: the maths (pure); `stats.py`: the latest `rules.stats` snapshot per rule (pure);
  `export.py`: CSV (pure)
- `service.py`: the use cases (each report as JSON and CSV, read through `uow.read`)
- `store.py`: SQL (`ReportsStore`); `consumer.py`: the `rules.stats` reader
- `api.py`: the routes, thin: the rule reports find the reader with `rt.running`
"""

from __future__ import annotations

from chat.features import RequestsOnly
from chat.reports.api import router
from chat.reports.consumer import RuleStatsReader
from chat.reports.stats import RuleStatsBook
from chat.runtime import Runtime

__all__ = ["ReportsFeature"]


class ReportsFeature(RequestsOnly):
    """Follows `rules.stats` from its beginning; the rule reports read the book it keeps."""

    router = router

    def __init__(self) -> None:
        self.reader: RuleStatsReader | None = None
        self._rt: Runtime | None = None

    async def start(self, rt: Runtime) -> None:
        reader = RuleStatsReader(
            rt.settings.kafka_bootstrap,
            f"chat-{rt.settings.instance_id}",
            RuleStatsBook(),
            security=rt.settings.kafka_security,
        )
        await reader.start()
        self.reader, self._rt = reader, rt
        rt.provide(reader)

    async def stop(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            if self._rt is not None:
                self._rt.withdraw(reader)
            await reader.stop()
