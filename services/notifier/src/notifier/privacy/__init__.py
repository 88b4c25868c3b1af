"""A visitor's data in the notifier: erased on request (`privacy.requests`, in the
`<NOTIFIER_CONSUMER_GROUP>-privacy` group) and exported (`POST /v1/privacy/export`).
docs/privacy.md says what is erased where."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from beckon_contracts.privacy import ErasureRequested
from beckon_contracts.topics import PRIVACY_REQUESTS
from beckon_messaging.privacy import PrivacyConsumer
from beckon_messaging.progress import Watchdog

from notifier.config import Settings
from notifier.privacy import service
from notifier.uow import UnitsOfWork

__all__ = ["privacy_consumer"]


def privacy_consumer(
    settings: Settings, uow: UnitsOfWork, producer: AIOKafkaProducer, watchdog: Watchdog
) -> PrivacyConsumer:
    async def erase(command: ErasureRequested) -> object:
        return await service.erase(uow=uow, command=command)

    group = f"{settings.consumer_group}-privacy"
    return PrivacyConsumer(
        erase,
        producer,
        topic=PRIVACY_REQUESTS,
        service="notifier",
        bootstrap=settings.kafka_bootstrap,
        group_id=f"{settings.consumer_group}-privacy",
        client_id=f"notifier-{settings.instance_id}-privacy",
        security=settings.kafka_security,
        progress=watchdog.track(group),
    )
