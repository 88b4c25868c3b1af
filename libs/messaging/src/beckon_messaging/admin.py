"""Explicit, idempotent topic creation from the registry (never rely on auto-creation)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError
from beckon_contracts.topics import ALL_TOPICS, Topic
from pydantic import Field
from pydantic_settings import BaseSettings

from beckon_messaging.refusal import authentication_refused
from beckon_messaging.security import PLAINTEXT, KafkaSecurity

log = logging.getLogger(__name__)


class TopicSettings(BaseSettings):
    """How a service creates the topics it needs, under the service's prefix (pass the two
    numbers to `ensure_topics`)."""

    create_topics: bool = True
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        description="Of the topics it creates (and its tables' changelogs): 1 on one broker, "
        "3 in production",
    )
    kafka_min_insync_replicas: int = Field(
        default=1,
        ge=1,
        description="Of the topics it creates (and its tables' changelogs): 1 on one broker, "
        "2 in production",
    )


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[Topic] = ALL_TOPICS,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int = 1,
    compacted_segment_ms: int | None = None,
    timeout_s: float = 30.0,
    security: KafkaSecurity = PLAINTEXT,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    Waits for a broker that is not up yet; raises KafkaAuthenticationError at once when a
    secured broker refuses the credentials or the TLS setup.

    `replication_factor` and `min_insync_replicas` come from the service's settings (1 and 1
    on one broker; 3 and 2 on a production cluster). Existing topics are left as they are:
    change their configs with the cluster's tools. `compacted_segment_ms` shortens how often
    compacted topics roll a segment (tests, so compaction runs while they look).
    """
    if not 1 <= min_insync_replicas <= replication_factor:
        raise ValueError(
            f"min.insync.replicas ({min_insync_replicas}) must be between 1 and the "
            f"replication factor ({replication_factor}): with more, no write could be "
            "acknowledged (acks=all)"
        )
    wanted = {topic.name: topic for topic in topics}
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=10_000,
        **security.aiokafka_options(),
    )
    async with asyncio.timeout(timeout_s):
        await _start_with_retry(admin, bootstrap_servers, security)
    try:
        existing = set(await admin.list_topics())
        missing = [topic for name, topic in wanted.items() if name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                name=topic.name,
                num_partitions=topic.partitions,
                replication_factor=replication_factor,
                topic_configs=topic.topic_configs(
                    min_insync_replicas=min_insync_replicas,
                    compacted_segment_ms=compacted_segment_ms,
                ),
            )
            for topic in missing
        ]
        # Another replica may win the race; that is the idempotent outcome too.
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(new)
        log.info("created topics", extra={"topics": [topic.name for topic in missing]})
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def _start_with_retry(
    admin: AIOKafkaAdminClient, bootstrap_servers: str, security: KafkaSecurity
) -> None:
    delay = 0.2
    while True:
        try:
            await admin.start()
            return
        except (KafkaConnectionError, KafkaError, OSError) as exc:
            refused = await authentication_refused(bootstrap_servers, security)
            if refused is not None:
                await admin.close()
                raise refused from exc
            log.info("waiting for the broker", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
