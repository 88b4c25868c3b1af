"""Console feature: reports (issue 5) — per agent, per team, per rule, and the share of orders
and revenue assisted by chat; JSON and CSV. See docs/console-reports.md.

- `domain.py`: the maths (pure); `stats.py`: the latest `rules.stats` snapshot per rule (pure);
  `export.py`: CSV (pure); `store.py`: SQL; `consumer.py`: the `rules.stats` reader;
  `api.py`: the routes.
"""

from __future__ import annotations

from chat.features import Stop
from chat.reports.api import router
from chat.reports.consumer import RuleStatsReader
from chat.reports.stats import RuleStatsBook
from chat.runtime import Runtime

__all__ = ["router", "start"]


async def start(rt: Runtime) -> Stop | None:
    """Follow `rules.stats` from its beginning; the reports read the book it keeps."""
    book = RuleStatsBook()
    reader = RuleStatsReader(
        rt.settings.kafka_bootstrap,
        f"chat-{rt.settings.instance_id}",
        book,
        security=rt.settings.kafka_security,
    )
    await reader.start()
    rt.features["reports"] = reader
    return reader.stop
