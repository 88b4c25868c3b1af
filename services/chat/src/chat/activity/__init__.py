"""Console feature: the visitor's recorded activity and the visitor card (issue 5).

- `recorder`: the `chat-activity` consumer of `tracking.events` → `chat.activity`, and the
  retention sweep.
- `api`: `GET /v1/console/visitors/{visitor_id}/card`.
- `domain`: pure mapping and shaping; `store`: the SQL.
"""

from __future__ import annotations

from chat.activity.api import router
from chat.activity.recorder import ActivityRecorder
from chat.features import Stop
from chat.runtime import Runtime

__all__ = ["router", "start"]


async def start(rt: Runtime) -> Stop | None:
    """Join the `<consumer group>-activity` group and start recording; return how to stop."""
    settings = rt.settings
    recorder = ActivityRecorder(
        pool=rt.service.pool,
        producer=rt.bus.producer,
        bootstrap=settings.kafka_bootstrap,
        client_id=f"chat-{settings.instance_id}-activity",
        retention_days=settings.activity_retention_days,
        group_id=f"{settings.consumer_group}-activity",
        security=settings.kafka_security,
    )
    await recorder.start()
    rt.features["activity"] = recorder
    return recorder.stop
