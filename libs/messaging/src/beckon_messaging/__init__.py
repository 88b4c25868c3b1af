"""Kafka plumbing shared by the services: topic creation, producer settings, the follower
of small compacted topics, the dead-letter records, TLS/SASL for every client, and a
producer close that ends even while the broker is down. For the services that keep their
state in Postgres: the transactional outbox and its relay (`beckon_messaging.outbox`), the
schema migration runner (`beckon_messaging.migrations`) and the pool's start-up and readiness
(`beckon_messaging.postgres`), imported from their modules."""

from beckon_messaging.admin import TopicSettings, ensure_topics
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
    ProducerSettings,
    SendAbandoned,
    close_producer,
    librdkafka_config,
    make_producer,
    producer_options,
)
from beckon_messaging.refusal import KafkaAuthenticationError, authentication_refused
from beckon_messaging.security import (
    PLAINTEXT,
    KafkaClientSettings,
    KafkaSecurity,
    KafkaSecurityError,
)

__all__ = [
    "MAX_REQUEST_SIZE",
    "PLAINTEXT",
    "CompactedTopicFollower",
    "KafkaAuthenticationError",
    "KafkaClientSettings",
    "KafkaSecurity",
    "KafkaSecurityError",
    "ProducerSettings",
    "SendAbandoned",
    "TopicSettings",
    "authentication_refused",
    "classify",
    "close_producer",
    "dead_letter",
    "dead_letter_for",
    "encode_dead_letter",
    "ensure_topics",
    "field_errors",
    "librdkafka_config",
    "make_producer",
    "producer_options",
]
