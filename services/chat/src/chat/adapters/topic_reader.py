"""A whole (compacted) topic read by every instance: the shared follower of `libs/messaging`
with the chat's client id.

For the small topics a chat instance keeps the latest picture of in memory (`rules.config`,
`rules.stats`, `sites.config`): each instance reads the topic from the beginning at start-up,
then follows it. `caught_up` is set at the first poll that finds nothing new.
"""

from __future__ import annotations

from collections.abc import Callable

from aiokafka import ConsumerRecord
from beckon_contracts.topics import Topic
from beckon_messaging import PLAINTEXT, CompactedTopicFollower, KafkaSecurity


class TopicReader(CompactedTopicFollower):
    def __init__(
        self,
        bootstrap: str,
        client_id: str,
        topic: Topic,
        apply: Callable[[ConsumerRecord[bytes, bytes]], None],
        *,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        super().__init__(bootstrap, topic, apply, client_id=client_id, security=security)
