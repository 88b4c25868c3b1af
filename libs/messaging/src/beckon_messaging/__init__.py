"""Kafka plumbing shared by the services: topic creation and producer settings."""

from beckon_messaging.admin import ensure_topics
from beckon_messaging.producer import (
    MAX_REQUEST_SIZE,
    librdkafka_config,
    make_producer,
    producer_options,
)

__all__ = [
    "MAX_REQUEST_SIZE",
    "ensure_topics",
    "librdkafka_config",
    "make_producer",
    "producer_options",
]
