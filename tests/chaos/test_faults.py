"""The battery's non-network faults do what they claim: a rewind re-delivers the share of a
group's records it says (on the session broker, a topic and group of the test's own), and a
clock jump moves a running process's wall clock but not its monotonic clock."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from beckon_devstack.chaos.faults import faketime_env, rewind_group, set_clock_offset


async def consume_all(bootstrap: str, topic: str, group: str) -> list[bytes]:
    """Everything the group has not committed yet, committed on the way out."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        while True:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                seen.extend(record.value or b"" for record in records)
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                break
        await consumer.commit()
    finally:
        await consumer.stop()
    return seen


@pytest.mark.integration
async def test_rewind_redelivers_the_share_it_reports(kafka_bootstrap: str) -> None:
    topic = f"chaos-rewind-{uuid.uuid4().hex[:8]}"
    group = f"chaos-rewind-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for n in range(200):
            await producer.send(topic, f"r{n}".encode(), partition=n % 2)
        await producer.flush()
    finally:
        await producer.stop()

    assert len(await consume_all(kafka_bootstrap, topic, group)) == 200
    moves = await rewind_group(kafka_bootstrap, group, 0.1)
    assert sorted((m.partition, m.before, m.after) for m in moves) == [(0, 100, 90), (1, 100, 90)]

    again = await consume_all(kafka_bootstrap, topic, group)
    assert len(again) == sum(m.redelivered for m in moves) == 20
    # the last tenth of each partition: the records consumed most recently
    assert set(again) == {f"r{n}".encode() for n in range(180, 200)}


CLOCK_PRINTER = """
import sys, time
for _ in sys.stdin:
    print(time.time(), time.monotonic(), flush=True)
"""


def test_clock_jump_moves_a_running_process_wall_clock(tmp_path: Path) -> None:
    offset = tmp_path / "clock.offset"
    env = faketime_env(offset)
    child = subprocess.Popen(
        [sys.executable, "-c", CLOCK_PRINTER],
        env={"PATH": "/usr/bin:/bin", **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:

        def read() -> tuple[float, float]:
            assert child.stdin is not None
            assert child.stdout is not None
            child.stdin.write("\n")
            child.stdin.flush()
            wall, mono = child.stdout.readline().split()
            return float(wall), float(mono)

        wall_0, mono_0 = read()
        set_clock_offset(offset, 3600)
        wall_1, mono_1 = read()
        assert wall_1 - wall_0 >= 3600
        # the monotonic clock keeps real time: no hour passed there
        assert mono_1 - mono_0 < 3600
        set_clock_offset(offset, -600)
        wall_2, _ = read()
        assert wall_2 < wall_1 - 3600
    finally:
        child.stdin.close()
        child.wait(timeout=30)
