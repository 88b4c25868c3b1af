"""Kafka plumbing shared by the services: topic creation, producer settings, the follower
of small compacted topics and the dead-letter records."""

from beckon_messaging.admin import ensure_topics
from beckon_messaging.dead_letters import (
    classify,
    dead_letter,
    dead_letter_for,
    encode_dead_letter,
    field_errors,
)
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
    "classify",
    "dead_letter",
    "dead_letter_for",
    "encode_dead_letter",
    "ensure_topics",
    "field_errors",
    "librdkafka_config",
    "make_producer",
    "producer_options",
]
