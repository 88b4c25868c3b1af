"""The librdkafka publisher's pure parts: its settings and one future per request."""

from __future__ import annotations

import asyncio
import logging

import pytest
from beckon_messaging import MAX_REQUEST_SIZE, librdkafka_config
from tracker.adapters.kafka import AioKafkaPublisher, BrokerUnavailable, make_publisher
from tracker.adapters.librdkafka import ConfluentPublisher, _OncePerWindow, _Request
from tracker.config import Settings


def test_the_guarantees_hold_in_the_librdkafka_settings():
    config = librdkafka_config("b:9092", "tracker", linger_ms=2, request_timeout_ms=4_000)
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is False  # the library's default: the settings decide
    assert config["partitioner"] == "murmur2_random"  # the Java client's, and aiokafka's
    assert config["message.max.bytes"] == MAX_REQUEST_SIZE
    assert config["message.timeout.ms"] == 4_000  # then a 503, not a retry for ever
    assert config["compression.type"] == "none"
    assert librdkafka_config("b", "c", compression_type="zstd")["compression.type"] == "zstd"


async def test_both_clients_produce_idempotent_with_acks_all_by_default(monkeypatch):
    monkeypatch.delenv("TRACKER_KAFKA_IDEMPOTENT", raising=False)
    settings = Settings()
    assert settings.kafka_idempotent is True
    config = ConfluentPublisher(settings)._config
    assert (config["enable.idempotence"], config["acks"]) == (True, "all")
    producer = AioKafkaPublisher(settings).make_producer()
    assert producer._txn_manager is not None  # aiokafka's mark of the idempotent producer
    assert producer._sender._acks == -1
    plain = ConfluentPublisher(Settings(kafka_idempotent=False))._config
    assert plain["enable.idempotence"] is False


def test_the_client_is_a_setting():
    assert isinstance(make_publisher(Settings()), ConfluentPublisher)
    assert isinstance(make_publisher(Settings(kafka_client="aiokafka")), AioKafkaPublisher)


async def test_a_request_is_done_only_when_its_last_record_is_acknowledged():
    request = _Request(asyncio.get_running_loop().create_future(), 3)
    request.delivered(None, object())
    request.delivered(None, object())
    assert not request.future.done()
    request.delivered(None, object())
    assert request.future.done()
    assert request.future.result() is None


async def test_one_failed_record_fails_the_request():
    request = _Request(asyncio.get_running_loop().create_future(), 3)
    request.delivered(None, object())
    request.delivered("Local: Message timed out", object())  # type: ignore[arg-type]
    request.delivered(None, object())  # later reports change nothing
    with pytest.raises(BrokerUnavailable, match="timed out"):
        request.future.result()


async def test_reports_for_an_abandoned_request_are_ignored():
    request = _Request(asyncio.get_running_loop().create_future(), 2)
    request.future.cancel()  # its waiter timed out
    request.delivered(None, object())
    request.delivered("error", object())  # type: ignore[arg-type]
    assert request.future.cancelled()


def test_a_repeated_librdkafka_failure_is_logged_once_a_window():
    once = _OncePerWindow(60.0)

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("tracker.librdkafka", logging.ERROR, "", 0, message, None, None)

    refused = (
        "FAIL 127.0.0.1:9092: Connect failed: Connection refused (after {}ms in state CONNECT)"
    )
    assert once.filter(record(refused.format(0)))
    assert not once.filter(record(refused.format(3)))  # the same failure, again
    assert once.filter(record("FAIL 127.0.0.1:9093: Connect failed"))


def test_both_publishers_take_the_kafka_security_settings(monkeypatch):
    for name, value in {
        "TRACKER_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TRACKER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "TRACKER_KAFKA_SASL_USERNAME": "beckon-tracker",
        "TRACKER_KAFKA_SASL_PASSWORD": "from-the-kafkauser-secret",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert "from-the-kafkauser-secret" not in repr(settings)
    config = ConfluentPublisher(settings)._config
    assert config["security.protocol"] == "sasl_plaintext"
    assert config["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == (
        "beckon-tracker",
        "from-the-kafkauser-secret",
    )
