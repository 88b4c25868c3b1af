"""A visitor's data: erasure and export on request, retention per site (docs/privacy.md).

- `api.py`: `/v1/privacy/erasure`, `/export`, `/requests`, `/retention` (admins).
- `service.py`: the use cases; `store.py`: their SQL; `domain.py`: the records and the export's
  document (pure); `parts.py`: leads' and the notifier's parts of an export, over HTTP.
- The feature joins `<CHAT_CONSUMER_GROUP>-privacy` on `privacy.requests` (as leads, the
  notifier and triggers do in theirs) and applies each site's retention every
  `CHAT_RETENTION_SWEEP_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaProducer
from beckon_contracts.privacy import ErasureRequested
from beckon_contracts.topics import PRIVACY_REQUESTS
from beckon_messaging.privacy import PrivacyConsumer
from beckon_messaging.progress import Watchdog

from chat.config import Settings
from chat.features import RequestsOnly
from chat.privacy import service
from chat.privacy.api import PrivacyLimiter, router
from chat.privacy.parts import ExportParts
from chat.runtime import Runtime
from chat.uow import UnitsOfWork

__all__ = ["PrivacyFeature", "privacy_consumer"]
log = logging.getLogger("chat.privacy")


def privacy_consumer(
    settings: Settings, uow: UnitsOfWork, producer: AIOKafkaProducer, watchdog: Watchdog
) -> PrivacyConsumer:
    """Chat's `<CHAT_CONSUMER_GROUP>-privacy` consumer of `privacy.requests` (as leads' and the
    notifier's): each command goes to `service.erase`."""

    async def erase(command: ErasureRequested) -> object:
        return await service.erase(uow=uow, command=command)

    group = f"{settings.consumer_group}-privacy"
    return PrivacyConsumer(
        erase,
        producer,
        topic=PRIVACY_REQUESTS,
        service="chat",
        bootstrap=settings.kafka_bootstrap,
        group_id=f"{settings.consumer_group}-privacy",
        client_id=f"chat-{settings.instance_id}-privacy",
        security=settings.kafka_security,
        progress=watchdog.track(group),
    )


def export_parts(settings: Settings) -> ExportParts:
    """Where an export asks for leads' and the notifier's parts (chat's own address for each
    API, else the console's)."""
    return ExportParts(
        {
            "leads": settings.leads_api_url or settings.leads_url,
            "notifier": settings.notifier_api_url or settings.notifier_url,
        },
        timeout_s=settings.privacy_export_timeout_s,
    )


class PrivacyFeature(RequestsOnly):
    router = router

    def __init__(self) -> None:
        self.consumer: PrivacyConsumer | None = None
        self.parts: ExportParts | None = None
        self.sweep: asyncio.Task[None] | None = None

    async def start(self, rt: Runtime) -> None:
        consumer = privacy_consumer(rt.settings, rt.uow, rt.bus.producer, rt.watchdog)
        await consumer.start()
        self.consumer = consumer
        rt.provide(consumer)
        rt.provide(PrivacyLimiter())
        self.parts = export_parts(rt.settings)
        rt.provide(self.parts)
        self.sweep = asyncio.create_task(self._sweep(rt), name="retention")

    async def _sweep(self, rt: Runtime) -> None:
        while True:
            try:
                await service.prune(uow=rt.uow)
            except Exception:  # the next round tries again
                log.exception("retention sweep failed")
            await asyncio.sleep(rt.settings.retention_sweep_s)

    async def stop(self) -> None:
        sweep, self.sweep = self.sweep, None
        if sweep is not None:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()
        parts, self.parts = self.parts, None
        if parts is not None:
            await parts.aclose()
