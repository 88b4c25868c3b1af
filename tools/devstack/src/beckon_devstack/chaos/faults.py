"""Faults that are not a process or a link: consumer offset rewinds (records delivered again)
and wall-clock jumps (for the leads SLA scheduler).

Rewinds: with every member of a consumer group stopped, each partition's committed offset is
moved back by `fraction` of what the group had consumed there (since the log start), so that
share of the records is delivered again when the group's instances start: what a rebalance
after a crash, a restore or an operator's `--reset-offsets` does to a consumer. aiokafka's admin
client has no "alter offsets", so the commit is made by a consumer of the group that assigns
the partitions itself (no membership: the broker takes such commits for an empty group).

Clock jumps: `libfaketime` (Debian's `faketime` package) preloaded into a process, reading its
offset from a file on every call (FAKETIME_NO_CACHE), so the battery moves that process's wall
clock while it runs. The monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC): event
loops and timeouts keep real time, as they do when NTP steps a server's clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

LIBFAKETIME_PATHS = (
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
)


@dataclass(frozen=True)
class Rewind:
    """One partition moved back: `before - after` records will be delivered again."""

    topic: str
    partition: int
    before: int
    after: int

    @property
    def redelivered(self) -> int:
        return self.before - self.after


async def rewind_group(
    bootstrap: str, group: str, fraction: float = 0.1, topics: set[str] | None = None
) -> list[Rewind]:
    """Move the group's committed offsets back by `fraction` of what it consumed (per
    partition, rounded up, so a partition with anything consumed re-delivers at least one).
    Call it only while the group has no members: a running member would overwrite it."""
    if not 0 < fraction <= 1:
        raise ValueError("fraction is a share of the consumed records: 0 < fraction <= 1")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    chosen = {
        tp: meta
        for tp, meta in committed.items()
        if meta.offset >= 0 and (topics is None or tp.topic in topics)
    }
    if not chosen:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = list(chosen)
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        moves: list[Rewind] = []
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp in sorted(partitions, key=lambda p: (p.topic, p.partition)):
            before = chosen[tp].offset
            consumed = before - starts[tp]
            if consumed <= 0:
                continue
            after = before - math.ceil(consumed * fraction)
            offsets[tp] = OffsetAndMetadata(after, chosen[tp].metadata or "")
            moves.append(Rewind(tp.topic, tp.partition, before, after))
        if offsets:
            await consumer.commit(offsets)
        return moves
    finally:
        await consumer.stop()


def libfaketime() -> Path:
    """The preloadable libfaketime, or a clear word on what to install."""
    for path in LIBFAKETIME_PATHS:
        if path.exists():
            return path
    raise RuntimeError(
        "clock jumps need libfaketime: `apt-get install faketime` (Debian), then run again"
    )


def faketime_env(offset_file: Path) -> dict[str, str]:
    """The environment that makes a process read its wall-clock offset from `offset_file`."""
    if not offset_file.exists():
        offset_file.write_text("+0\n")
    return {
        "LD_PRELOAD": str(libfaketime()),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def set_clock_offset(offset_file: Path, seconds: float) -> None:
    """Move the processes reading `offset_file` to real time + `seconds` (negative: back)."""
    offset_file.write_text(f"{seconds:+.3f}\n")
