"""A visitor's data: erasure and export on request, retention per site (docs/privacy.md).

- `api.py`: `/v1/privacy/erasure`, `/export`, `/requests`, `/retention` (admins).
- `service.py`: the use cases; `store.py`: their SQL; `domain.py`: the records (pure).
- The feature joins `<CHAT_CONSUMER_GROUP>-privacy` on `privacy.requests` (as leads, the
  notifier and triggers do in theirs) and applies each site's retention every
  `CHAT_RETENTION_SWEEP_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from beckon_contracts.privacy import ErasureRequested
from beckon_contracts.topics import PRIVACY_REQUESTS
from beckon_messaging.privacy import PrivacyConsumer

from chat.features import RequestsOnly
from chat.privacy import service
from chat.privacy.api import PrivacyLimiter, router
from chat.runtime import Runtime

__all__ = ["PrivacyFeature"]
log = logging.getLogger("chat.privacy")


class PrivacyFeature(RequestsOnly):
    router = router

    def __init__(self) -> None:
        self.consumer: PrivacyConsumer | None = None
        self.sweep: asyncio.Task[None] | None = None

    async def start(self, rt: Runtime) -> None:
        settings = rt.settings

        async def erase(command: ErasureRequested) -> object:
            return await service.erase(uow=rt.uow, command=command)

        group = f"{settings.consumer_group}-privacy"
        consumer = PrivacyConsumer(
            erase,
            rt.bus.producer,
            topic=PRIVACY_REQUESTS,
            service="chat",
            bootstrap=settings.kafka_bootstrap,
            group_id=f"{settings.consumer_group}-privacy",
            client_id=f"chat-{settings.instance_id}-privacy",
            security=settings.kafka_security,
            progress=rt.watchdog.track(group),
        )
        await consumer.start()
        self.consumer = consumer
        rt.provide(consumer)
        rt.provide(PrivacyLimiter())
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
