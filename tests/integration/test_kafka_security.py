"""Every kind of Kafka client Beckon makes, against a broker that wants SASL/SCRAM, TLS or mTLS.

One broker of its own for the module (the session's broker stays PLAINTEXT): SASL_PLAINTEXT with
SCRAM-SHA-512/256 and PLAIN for user `beckon` (SCRAM credentials written at format time, as
KRaft needs), SSL with client certificates required (a Strimzi `KafkaUser` with
`authentication: tls`), and SASL_SSL; the certificates come from a CA made here with `openssl`.
Each client is made as the services make it: from their Settings, through `beckon_messaging`.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from beckon_contracts.topics import SITES_CONFIG, TRACKING_EVENTS
from beckon_devstack.kafka import BrokerTls, KafkaBroker
from beckon_devstack.tls import CertificateAuthority, CertifiedKey, make_certificate_authority
from beckon_messaging import (
    CompactedTopicFollower,
    KafkaAuthenticationError,
    KafkaSecurity,
    ensure_topics,
    librdkafka_config,
    make_producer,
)
from confluent_kafka import KafkaError, KafkaException, Producer

pytestmark = pytest.mark.integration

USER = "beckon"
PASSWORD = "scram-test-password-1"
TOPICS = [TRACKING_EVENTS, SITES_CONFIG]


@dataclass(frozen=True)
class Pki:
    authority: CertificateAuthority
    client: CertifiedKey
    stranger_ca: Path  # a CA the broker's certificate is not signed by


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    authority = make_certificate_authority(tmp_path_factory.mktemp("pki"))
    authority.issue("broker", common_name="127.0.0.1", server=True)
    client = authority.issue("beckon-user", common_name="beckon-user")
    stranger = make_certificate_authority(tmp_path_factory.mktemp("stranger-pki"), "stranger-ca")
    return Pki(authority=authority, client=client, stranger_ca=stranger.ca_cert)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[KafkaBroker]:
    keystore = pki.authority.directory / "broker.keystore.pem"
    secured = KafkaBroker(
        tmp_path_factory.mktemp("kafka-secured"),
        heap_mb=384,
        sasl_users={USER: PASSWORD},
        tls=BrokerTls(keystore=keystore, truststore=pki.authority.ca_cert),
    )
    with secured:
        yield secured


def scram(mechanism: str = "SCRAM-SHA-512", password: str = PASSWORD) -> dict[str, Any]:
    """The settings a service is given for a SCRAM user (without its prefix)."""
    return {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": USER,
        "kafka_sasl_password": password,
    }


def mtls(pki: Pki, ca: Path | None = None) -> KafkaSecurity:
    return KafkaSecurity(
        protocol="SSL",
        ssl_ca_file=ca or pki.authority.ca_cert,
        ssl_cert_file=pki.client.cert,
        ssl_key_file=pki.client.key,
    )


async def read_back(bootstrap: str, security: KafkaSecurity, topic: str, value: bytes) -> None:
    """Read `topic` from its start until a record holds `value` (an assertion error if none)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"read-back-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        **security.aiokafka_options(),
    )
    await consumer.start()
    try:
        seen: list[Any] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while value not in seen:
                    batches = await consumer.getmany(timeout_ms=500)
                    seen.extend(r.value for batch in batches.values() for r in batch)
        assert value in seen, f"{value!r} is not on {topic}: {seen}"
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def admin(bootstrap: str, security: KafkaSecurity) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security.aiokafka_options())
    await client.start()
    try:
        yield client
    finally:
        await client.close()


# ---- SASL/SCRAM -----------------------------------------------------------------------------


async def test_aiokafka_admin_producer_consumer_and_follower_authenticate_with_scram(
    broker: KafkaBroker,
) -> None:
    from chat.config import Settings as ChatSettings

    settings = ChatSettings(**scram())
    security = settings.kafka_security
    bootstrap = broker.bootstrap_for("SASL_PLAINTEXT")
    await ensure_topics(bootstrap, TOPICS, security=security)
    async with admin(bootstrap, security) as client:
        assert {t.name for t in TOPICS} <= set(await client.list_topics())

    producer = make_producer(bootstrap, "scram-test", security=security)
    await producer.start()
    try:
        await producer.send_and_wait(TRACKING_EVENTS.name, b"over scram", key=b"v1")
        await producer.send_and_wait(SITES_CONFIG.name, b"site", key=b"demo")
    finally:
        await producer.stop()
    await read_back(bootstrap, security, TRACKING_EVENTS.name, b"over scram")

    seen: list[ConsumerRecord[bytes, bytes]] = []
    follower = CompactedTopicFollower(bootstrap, SITES_CONFIG, seen.append, security=security)
    await follower.start()
    try:
        assert await follower.wait_caught_up(30)
    finally:
        await follower.stop()
    assert [(r.key, r.value) for r in seen] == [(b"demo", b"site")]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
async def test_the_other_sasl_mechanisms_authenticate_too(
    broker: KafkaBroker, mechanism: str
) -> None:
    from chat.config import Settings as ChatSettings

    security = ChatSettings(**scram(mechanism)).kafka_security
    async with admin(broker.bootstrap_for("SASL_PLAINTEXT"), security) as client:
        assert isinstance(await client.list_topics(), list)


async def test_a_wrong_password_is_refused_with_a_clear_error(broker: KafkaBroker) -> None:
    from tracker.config import Settings as TrackerSettings

    bootstrap = broker.bootstrap_for("SASL_PLAINTEXT")
    wrong = TrackerSettings(**scram(password="not-the-password")).kafka_security
    with pytest.raises(KafkaAuthenticationError) as refused:
        await ensure_topics(bootstrap, TOPICS, security=wrong, timeout_s=30)
    message = str(refused.value)
    assert f"refused user '{USER}' with SCRAM-SHA-512" in message
    assert "invalid credentials" in message
    assert "TRACKER_KAFKA_SASL_PASSWORD" in message

    # librdkafka (the tracker's publisher) reports it as an authentication error
    errors: list[KafkaError] = []
    config = librdkafka_config(bootstrap, "wrong-password", security=wrong)
    client = Producer(config | {"error_cb": errors.append})
    try:
        with pytest.raises(KafkaException):
            await asyncio.to_thread(client.list_topics, None, 10)
    finally:
        client.close()
    assert any(error.code() == KafkaError._AUTHENTICATION for error in errors), errors
    assert "invalid credentials" in str(errors)


async def test_the_trackers_librdkafka_publisher_authenticates_with_scram(
    broker: KafkaBroker,
) -> None:
    from tracker.adapters.kafka import OutboundRecord
    from tracker.adapters.librdkafka import ConfluentPublisher
    from tracker.config import Settings as TrackerSettings

    bootstrap = broker.bootstrap_for("SASL_PLAINTEXT")
    settings = TrackerSettings(
        kafka_bootstrap=bootstrap, kafka_client="confluent", follow_sites=False, **scram()
    )
    publisher = ConfluentPublisher(settings)
    await publisher.start()
    try:
        async with asyncio.timeout(60):
            while not await publisher.is_ready():
                await asyncio.sleep(0.2)
        await publisher.publish(
            [OutboundRecord(TRACKING_EVENTS.name, b"v2", b"from librdkafka", [("h", b"1")])]
        )
    finally:
        await publisher.stop()
    await read_back(bootstrap, settings.kafka_security, TRACKING_EVENTS.name, b"from librdkafka")


async def test_the_triggers_faust_app_authenticates_with_scram_and_produces(
    broker: KafkaBroker, tmp_path: Path
) -> None:
    from triggers.app import create_app
    from triggers.config import Settings as TriggersSettings

    bootstrap = broker.bootstrap_for("SASL_PLAINTEXT")
    settings = TriggersSettings(
        app_id="scram-test", kafka_bootstrap=bootstrap, data_dir=tmp_path, **scram()
    )
    app, _ = create_app(settings)
    assert app.conf.broker_credentials.mechanism.value == "SCRAM-SHA-512"
    await app.producer.start()
    try:
        await app.producer.send_and_wait(
            TRACKING_EVENTS.name, b"v3", b"from faust", partition=None, timestamp=None, headers=None
        )
    finally:
        await app.producer.stop()
    await read_back(bootstrap, settings.kafka_security, TRACKING_EVENTS.name, b"from faust")


# ---- TLS ------------------------------------------------------------------------------------


async def test_a_client_certificate_authenticates_as_a_strimzi_tls_user(
    broker: KafkaBroker, pki: Pki
) -> None:
    bootstrap = broker.bootstrap_for("SSL")
    security = mtls(pki)
    await ensure_topics(bootstrap, TOPICS, security=security)
    producer = make_producer(bootstrap, "mtls-test", security=security)
    await producer.start()
    try:
        await producer.send_and_wait(SITES_CONFIG.name, b"over mtls", key=b"mtls")
    finally:
        await producer.stop()

    client = Producer(librdkafka_config(bootstrap, "mtls-librdkafka", security=security))
    try:
        metadata = await asyncio.to_thread(client.list_topics, None, 20)
    finally:
        client.close()
    assert SITES_CONFIG.name in metadata.topics
    await read_back(bootstrap, security, SITES_CONFIG.name, b"over mtls")


async def test_tls_without_a_client_certificate_or_with_a_stranger_ca_is_refused(
    broker: KafkaBroker, pki: Pki
) -> None:
    bootstrap = broker.bootstrap_for("SSL")
    stranger = mtls(pki, ca=pki.stranger_ca)
    with pytest.raises(KafkaAuthenticationError, match=r"is not trusted.*KAFKA_SSL_CA_FILE"):
        await ensure_topics(bootstrap, TOPICS, security=stranger, timeout_s=30)

    without_certificate = KafkaSecurity(protocol="SSL", ssl_ca_file=pki.authority.ca_cert)
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, **without_certificate.aiokafka_options()
    )
    with pytest.raises(Exception, match="Unable to bootstrap"):
        await client.start()
    await client.close()


async def test_scram_over_tls_checks_the_brokers_certificate(broker: KafkaBroker, pki: Pki) -> None:
    security = KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=PASSWORD,
        ssl_ca_file=pki.authority.ca_cert,
    )
    async with admin(broker.bootstrap_for("SASL_SSL"), security) as client:
        assert isinstance(await client.list_topics(), list)
    producer = Producer(librdkafka_config(broker.bootstrap_for("SASL_SSL"), "x", security=security))
    try:
        assert (await asyncio.to_thread(producer.list_topics, None, 20)).brokers
    finally:
        producer.close()
