"""A visitor's data in leads: erased on request (`privacy.requests`, in the
`<LEADS_CONSUMER_GROUP>-privacy` group) and exported (`POST /v1/privacy/export`).
docs/privacy.md says what is erased where."""

from __future__ import annotations

from beckon_contracts.privacy import ErasureRequested
from beckon_contracts.topics import PRIVACY_REQUESTS
from beckon_messaging.privacy import PrivacyConsumer
from beckon_messaging.progress import Watchdog

from leads.adapters.bus import Bus
from leads.config import Settings
from leads.privacy import service
from leads.uow import UnitsOfWork

__all__ = ["privacy_consumer"]


def privacy_consumer(
    settings: Settings, uow: UnitsOfWork, bus: Bus, watchdog: Watchdog
) -> PrivacyConsumer:
    async def erase(command: ErasureRequested) -> object:
        return await service.erase(uow=uow, command=command)

    group = f"{settings.consumer_group}-privacy"
    return PrivacyConsumer(
        erase,
        bus.producer,
        topic=PRIVACY_REQUESTS,
        service="leads",
        bootstrap=settings.kafka_bootstrap,
        group_id=f"{settings.consumer_group}-privacy",
        client_id=f"leads-{settings.instance_id}-privacy",
        security=settings.kafka_security,
        progress=watchdog.track(group),
    )
