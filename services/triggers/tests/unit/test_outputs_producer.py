"""The stages' producer is the idempotent one, acks=all, unless the settings say otherwise."""

from __future__ import annotations

from triggers.adapters.outputs import Outputs
from triggers.config import Settings


async def test_the_outputs_producer_is_idempotent_with_acks_all_by_default(monkeypatch):
    monkeypatch.delenv("TRIGGERS_KAFKA_IDEMPOTENT", raising=False)
    settings = Settings()
    assert settings.kafka_idempotent is True
    outputs = Outputs("b:9092", "c", idempotent=settings.kafka_idempotent)  # as the app does
    producer = outputs._producer
    assert producer._txn_manager is not None  # aiokafka's mark of the idempotent producer
    assert producer._sender._acks == -1

    monkeypatch.setenv("TRIGGERS_KAFKA_IDEMPOTENT", "false")
    assert Settings().kafka_idempotent is False
