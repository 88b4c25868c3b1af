"""Kafka plumbing shared by the services: topic creation, producer settings and the follower
of small compacted topics."""

from beckon_messaging.admin import ensure_topics
from beckon_messaging.follower import CompactedTopicFollower
from beckon_messaging.producer import (
    MAX_REQUEST_SIZE,
    librdkafka_config,
    make_producer,
    producer_options,
)

__all__ = [
    "MAX_REQUEST_SIZE",
    "CompactedTopicFollower",
    "ensure_topics",
    "librdkafka_config",
    "make_producer",
    "producer_options",
]
