"""Console feature: the visitor's recorded activity and the visitor card.

- `recorder`: the `chat-activity` consumer of `tracking.events` → `chat.activity`, and the
  retention sweep.
- `service`: the visitor card's use case; `api`: `GET /v1/console/visitors/{visitor_id}/card`.
- `domain`: pure mapping and shaping; `store`: `ActivityStore`, the SQL.

The recorder keeps its own pool use (not a unit of work): one fetch's rows span many sites
and go in with one statement, a refused batch is retried row by row on one connection, and
nothing it writes goes to the outbox (dead letters go straight to `tracking.dlq` before the
offsets are committed).
"""

from __future__ import annotations

from chat.activity.api import router
from chat.activity.recorder import ActivityRecorder
from chat.features import RequestsOnly
from chat.runtime import Runtime

__all__ = ["ActivityFeature"]


class ActivityFeature(RequestsOnly):
    """Joins the `<consumer group>-activity` group and records what visitors do."""

    router = router

    def __init__(self) -> None:
        self.recorder: ActivityRecorder | None = None

    async def start(self, rt: Runtime) -> None:
        settings = rt.settings
        recorder = ActivityRecorder(
            pool=rt.uow.pool,
            producer=rt.bus.producer,
            bootstrap=settings.kafka_bootstrap,
            client_id=f"chat-{settings.instance_id}-activity",
            retention_days=settings.activity_retention_days,
            group_id=f"{settings.consumer_group}-activity",
            security=settings.kafka_security,
            progress=rt.watchdog.track(f"{settings.consumer_group}-activity"),
        )
        await recorder.start()
        self.recorder = recorder

    async def stop(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            await recorder.stop()
