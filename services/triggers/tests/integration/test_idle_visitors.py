"""A visitor not seen for the idle period is forgotten by a real worker on a real broker: a
tombstone on `visitors.state` and on the `visitors` changelog partition its state was written
to (so a recovering worker forgets it too), and a return starts a new history; a visitor seen
within the period is kept. The whole-system soak found every visitor kept for good
(docs/reliability.md, bug 9)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from beckon_contracts import topics
from beckon_devstack.kafka_probe import Record, read_records
from triggers_testing import T0, Kafka, Worker, tracking_event

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

IDLE_S = 60  # the least TRIGGERS_VISITOR_IDLE_S allows


def _now_s() -> float:
    """Seconds from T0 (a month ago) to now: the `seconds` of an event happening now."""
    return float((datetime.now(UTC) - T0).total_seconds())


async def test_an_idle_visitor_is_forgotten_and_starts_a_new_history(
    kafka: Kafka, kafka_bootstrap: str, site_id: str, tmp_path: Path
) -> None:
    app_id = f"triggers-idle-{uuid.uuid4().hex[:6]}"
    worker = Worker(
        kafka_bootstrap,
        app_id,
        tmp_path / "w.log",
        env={
            "TRIGGERS_VISITOR_IDLE_S": str(IDLE_S),
            "TRIGGERS_IDLE_SWEEP_EVERY_S": "0.5",
        },
    ).start()
    gone, kept = f"{site_id}:gone", f"{site_id}:kept"

    async def browsing() -> None:
        """A visitor seen now, again and again: the traffic between whose batches the
        worker sweeps its tables."""
        while True:
            await kafka.track(tracking_event(site_id, "kept", "page_viewed", _now_s()))
            await asyncio.sleep(0.3)

    traffic = asyncio.create_task(browsing())
    try:
        # a visitor last seen a month ago (event time)
        await kafka.track(tracking_event(site_id, "gone", "page_viewed", 0, session_id="s1"))
        states = await read_records(
            kafka_bootstrap,
            topics.VISITORS_STATE.name,
            match=lambda r: r.key in (gone.encode(), kept.encode()),
            until=lambda found: any(r.key == gone.encode() and r.value is None for r in found),
            timeout_s=60,
        )
        assert not any(r.key == kept.encode() and r.value is None for r in states)

        changelog = await read_records(
            kafka_bootstrap,
            f"{app_id}-visitors-changelog",
            match=lambda r: r.key == orjson.dumps(gone),
            count=2,
        )
        written, tombstone = changelog[0], changelog[-1]
        assert written.value is not None
        assert tombstone.value is None
        assert tombstone.partition == written.partition

        # back now, in a new session: a new history (one session), not the month-old one (two)
        await kafka.track(tracking_event(site_id, "gone", "page_viewed", _now_s(), session_id="s2"))

        def back(record: Record) -> bool:
            return record.key == gone.encode() and record.value is not None

        returned = await read_records(
            kafka_bootstrap, topics.VISITORS_STATE.name, match=back, count=2, timeout_s=60
        )
        payload = orjson.loads(returned[-1].value)["payload"]
        assert payload["sessions"] == 1
        assert payload["returning"] is False
    finally:
        traffic.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await traffic
        worker.stop()
