"""`PrivacyConsumer` without a broker: each command of `privacy.requests` reaches the service's
`erase` as the contract's model; a record that is no command is dead-lettered (never erased);
an outage is waited out on the same record; an `erase` that keeps failing is dead-lettered
after `Backoff.max_attempts` tries, and the records after it are still handled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord, TopicPartition
from beckon_contracts.dead_letter import DeadLettered
from beckon_contracts.ids import uuid7
from beckon_contracts.privacy import ErasureRequest, ErasureRequested, subject_hash
from beckon_contracts.topics import PRIVACY_REQUESTS, PRIVACY_REQUESTS_DLQ, Topic
from beckon_messaging.consumer import Backoff
from beckon_messaging.privacy import PrivacyConsumer

SITE = "shop"
NO_PAUSE = Backoff(initial_s=0.0, max_s=0.0, max_attempts=3)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, *, key: bytes, headers: Any) -> None:
        self.sent.append((topic, key, value))

    def letters(self) -> list[DeadLettered]:
        return [DeadLettered.model_validate_json(value) for _, _, value in self.sent]


def command(*visitors: str, site: str = SITE) -> ErasureRequested:
    return ErasureRequested(
        event_id=uuid7(),
        occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        site_id=site,
        payload=ErasureRequest(
            request_id=uuid.uuid4(),
            visitor_ids=list(visitors),
            email_hashes=[subject_hash("Anna@Example.org")],
            requested_by="shop-admin",
        ),
    )


def record(value: bytes, offset: int = 11) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=PRIVACY_REQUESTS.name,
        partition=1,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=SITE.encode(),
        value=value,
        checksum=None,
        serialized_key_size=len(SITE),
        serialized_value_size=len(value),
        headers=(),
    )


class Erasures:
    """The service's `erase`: records what it was handed; fails as it is told to."""

    def __init__(self, *failures: BaseException) -> None:
        self.handed: list[ErasureRequested] = []
        self.failures = list(failures)

    async def __call__(self, command: ErasureRequested) -> object:
        self.handed.append(command)
        if self.failures:
            raise self.failures.pop(0)
        return {"visitors": len(command.payload.visitor_ids)}


def consumer(erase: Erasures, producer: FakeProducer, service: str = "chat") -> PrivacyConsumer:
    return PrivacyConsumer(
        erase,
        producer,  # type: ignore[arg-type]
        topic=PRIVACY_REQUESTS,
        service=service,
        bootstrap="127.0.0.1:1",  # never dialled: the tests call handle/_process directly
        group_id=f"{service}-privacy",
        client_id=f"{service}-test-privacy",
        backoff=NO_PAUSE,
    )


async def test_a_command_reaches_erase_as_the_contracts_model() -> None:
    erase, producer = Erasures(), FakeProducer()
    sent = command("v-1", "v-2")
    privacy = consumer(erase, producer)
    assert await privacy.handle(record(sent.model_dump_json().encode())) == "erased"
    assert erase.handed == [sent]
    assert privacy.handled == 1
    assert producer.sent == []


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "malformed_json"),
        # a command of a kind this version does not know
        (
            orjson.dumps({**orjson.loads(command("v-1").model_dump_json()), "type": "privacy.x"}),
            "schema_invalid",
        ),
        # the contract's command with an e-mail address in clear where only hashes may travel
        (
            orjson.dumps(
                {
                    **orjson.loads(command("v-1").model_dump_json()),
                    "payload": {
                        **orjson.loads(command("v-1").model_dump_json())["payload"],
                        "email_hashes": ["anna@example.org"],
                    },
                }
            ),
            "schema_invalid",
        ),
    ],
)
async def test_a_record_that_is_no_command_is_dead_lettered_and_never_erased(
    value: bytes, reason: str
) -> None:
    erase, producer = Erasures(), FakeProducer()
    privacy = consumer(erase, producer, service="leads")
    assert await privacy.handle(record(value)) == "dead_lettered"
    assert erase.handed == []
    assert privacy.handled == 0
    [(topic, key, _)] = producer.sent
    assert topic == PRIVACY_REQUESTS_DLQ.name
    [letter] = producer.letters()
    assert letter.payload.reason == reason
    assert letter.payload.source == "leads:privacy.requests"
    assert (letter.payload.topic, letter.payload.partition, letter.payload.offset) == (
        PRIVACY_REQUESTS.name,
        1,
        11,
    )
    assert letter.payload.raw.encode() == value
    if reason == "schema_invalid":  # the site is read from the record: the key of its letter
        assert key == SITE.encode()


async def test_an_outage_is_waited_out_on_the_same_command() -> None:
    erase, producer = (
        Erasures(OSError("postgres is away"), TimeoutError(), OSError("again")),
        (FakeProducer()),
    )
    sent = command("v-1")
    privacy = consumer(erase, producer)
    # more transient failures than max_attempts: an outage never gives the command up
    await privacy._process(
        {TopicPartition(PRIVACY_REQUESTS.name, 1): [record(sent.model_dump_json().encode())]}
    )
    assert erase.handed == [sent] * 4
    assert privacy.handled == 1
    assert producer.sent == []


async def test_an_erase_that_keeps_failing_is_dead_lettered_and_the_next_is_handled() -> None:
    erase, producer = (
        Erasures(*(ValueError("bug") for _ in range(NO_PAUSE.max_attempts))),
        (FakeProducer()),
    )
    failing, next_one = command("v-1"), command("v-2")
    privacy = consumer(erase, producer, service="notifier")
    await privacy._process(
        {
            TopicPartition(PRIVACY_REQUESTS.name, 1): [
                record(failing.model_dump_json().encode(), offset=20),
                record(next_one.model_dump_json().encode(), offset=21),
            ]
        }
    )
    assert erase.handed == [failing] * NO_PAUSE.max_attempts + [next_one]
    assert privacy.handled == 1
    [letter] = producer.letters()
    assert letter.payload.reason == "processing_failed"
    assert letter.payload.detail == "ValueError: bug"
    assert letter.payload.offset == 20
    assert letter.payload.source == "notifier:privacy.requests"


def test_a_topic_without_a_dead_letter_topic_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a dead-letter topic"):
        PrivacyConsumer(
            Erasures(),
            FakeProducer(),  # type: ignore[arg-type]
            topic=Topic(name="privacy.other", partitions=1, key="site"),
            service="chat",
            bootstrap="127.0.0.1:1",
            group_id="chat-privacy",
            client_id="chat-test-privacy",
        )
