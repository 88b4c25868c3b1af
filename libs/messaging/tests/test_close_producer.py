"""Closing a producer ends, even the idempotent one with the broker down: what the broker has
not acknowledged within the grace period fails, so its sender sees an error (never a silent
drop), and the warning says how many records were abandoned."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from beckon_contracts.topics import TRACKING_EVENTS
from beckon_devstack.broker import wait_until_serving
from beckon_devstack.kafka import KafkaBroker
from beckon_messaging import SendAbandoned, close_producer, ensure_topics, make_producer

pytestmark = pytest.mark.integration

# Not a measurement: it only turns a hang (aiokafka's own stop() with the idempotent producer
# and the broker down never returns) into a failure instead of a stuck run.
HANG_GUARD_S = 60


async def test_closing_waits_for_the_acks_of_what_was_sent(kafka_bootstrap: str) -> None:
    producer = make_producer(kafka_bootstrap, "close-test-up", idempotent=True)
    await producer.start()
    key = uuid.uuid4().hex.encode()
    futures = [await producer.send(TRACKING_EVENTS.name, b"%d" % n, key=key) for n in range(20)]
    async with asyncio.timeout(HANG_GUARD_S):
        abandoned = await close_producer(producer, grace_s=HANG_GUARD_S, name="close-test-up")
    assert abandoned == 0
    offsets = [(await future).offset for future in futures]
    assert offsets == sorted(offsets)  # one key: one partition, in order
    assert len(set(offsets)) == 20


async def test_closing_with_the_broker_down_fails_the_unacknowledged_and_ends(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = await asyncio.to_thread(KafkaBroker(tmp_path / "kafka").start)  # this test stops it
    try:
        await wait_until_serving(broker.bootstrap, timeout_s=60)
        await ensure_topics(broker.bootstrap)
        producer = make_producer(broker.bootstrap, "close-test-down", idempotent=True)
        await producer.start()
        await producer.send_and_wait(TRACKING_EVENTS.name, b"before", key=b"k")
        await asyncio.to_thread(broker.stop)

        futures = [
            await producer.send(TRACKING_EVENTS.name, b"after", key=b"k%d" % n) for n in range(7)
        ]
        with caplog.at_level(logging.WARNING, logger="beckon_messaging.producer"):
            async with asyncio.timeout(HANG_GUARD_S):
                abandoned = await close_producer(producer, grace_s=0.5, name="close-test-down")
                for future in futures:
                    with pytest.raises(SendAbandoned):
                        await future

        assert abandoned == 7
        (warning,) = [r for r in caplog.records if r.name == "beckon_messaging.producer"]
        assert warning.levelno == logging.WARNING
        assert (warning.producer, warning.abandoned) == ("close-test-down", 7)  # type: ignore[attr-defined]
    finally:
        broker.stop()
