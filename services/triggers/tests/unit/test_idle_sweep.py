"""Nothing in a worker's tables lives for good: a visitor not seen for the idle period is
forgotten from `visitors` (with a tombstone on its changelog partition and on
`visitors.state`) and from `admission-visitors`, an outcome id after its keep period; what is
active, undated or no longer this worker's is kept. The soak found the tables growing by
every visitor ever seen (docs/reliability.md, bug 9)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from beckon_contracts import topics
from stage_fakes import Outputs, Table, event, runtime
from triggers import stages
from triggers.domain.decide import VisitorMarks
from triggers.domain.state import InvitationMark
from triggers.tables import IdleSweep
from triggers_testing import product_view

SITE = "idle-shop"
DAY = 86_400.0


def dated(at: float) -> bytes:
    return orjson.dumps({"last_seen": at})


def every_partition() -> set[int]:
    return set(range(16))


def sweep_of(table: Table, idle_s: float = DAY, **kw: Any) -> IdleSweep:
    kw.setdefault("owned", every_partition)
    return IdleSweep(table, idle_s=idle_s, every_s=0, last_active=stages.visitor_last_active, **kw)


async def test_only_keys_idle_longer_than_the_period_are_forgotten_each_on_its_partition() -> None:
    now = time.time()
    table, out = Table(), Outputs()
    values = {
        "old-on-0": (dated(now - 2 * DAY), 0),
        "old-on-3": (dated(now - DAY - 1), 3),
        "active": (dated(now - DAY + 60), 1),
        "undated": (orjson.dumps({"last_seen": 0}), 2),
        "not-ours": (dated(now - 9 * DAY), None),  # a revoked partition's key: not ours
        "standby": (dated(now - 9 * DAY), 7),  # a standby replica's: its owner forgets it
    }
    for key, (value, partition) in values.items():
        table[key] = value
        if partition is not None:
            table._key_partition[key] = partition

    forgot = await sweep_of(table, owned=lambda: {0, 1, 2, 3}).step(out, now)  # type: ignore[arg-type]

    assert sorted(forgot) == ["old-on-0", "old-on-3"]
    assert set(table) == {"active", "undated", "not-ours", "standby"}
    assert "old-on-0" not in table._key_partition
    tombstones = {(s.key, s.partition) for s in out.sent if s.value is None}
    assert tombstones == {('"old-on-0"', 0), ('"old-on-3"', 3)}  # keys as Faust writes them


async def test_a_sweep_goes_in_slices_and_starts_again_only_when_due() -> None:
    now = time.time()
    table, out = Table(), Outputs()

    def put(key: str, partition: int) -> None:
        table[key] = dated(now - 2 * DAY)
        table._key_partition[key] = partition

    for i in range(5):
        put(f"k{i}", i)
    clock = [0.0]
    sweep = IdleSweep(
        table,
        idle_s=DAY,
        every_s=50,
        last_active=stages.visitor_last_active,
        owned=every_partition,
        slice_keys=2,
        clock=lambda: clock[0],
    )

    async def step() -> int:
        return len(await sweep.step(out, now))  # type: ignore[arg-type]

    assert await step() == 0  # a worker's first sweep waits every_s after its start
    clock[0] = 60.0
    assert [await step(), await step(), await step()] == [2, 2, 1]
    put("k9", 9)
    assert await step() == 0  # the next sweep is due at 110
    clock[0] = 111.0
    assert await step() == 1
    assert sweep.forgotten == 6
    assert not table


async def test_an_idle_visitor_is_forgotten_after_a_batch_and_its_snapshot_tombstoned() -> None:
    run, out = runtime(SITE)
    table = Table(name="visitors")
    run.sweeps = {"visitors": sweep_of(table, idle_s=90 * DAY)}
    old, fresh = f"{SITE}:gone", f"{SITE}:here"
    table[old] = orjson.dumps({"site_id": SITE, "visitor_id": "gone", "last_seen": 1.0e9})
    table._key_partition[old] = 4
    run.pending_snapshots[old] = (0.0, b"{}", [])
    view = product_view(SITE, "here", 30)  # at T0, a month or so ago: within the 90 days

    await stages.visitor_batch(run, table, [event(topics.TRACKING_EVENTS.name, view, ())])

    assert fresh in table
    assert old not in table
    assert old not in run.pending_snapshots
    assert [s.partition for s in out.on("changelog") if s.key == f'"{old}"'] == [4]
    assert [s.value for s in out.on(topics.VISITORS_STATE.name) if s.key == old] == [None]


async def test_admission_marks_and_outcome_ids_are_dated_for_their_sweeps() -> None:
    marks = VisitorMarks(marks=[InvitationMark("i1", "r1", "invited", 100.0, "s1")])
    assert marks.last_active() == 100.0
    marks.seen_at = 250.0
    assert VisitorMarks.from_json(marks.to_json()).last_active() == 250.0
    assert VisitorMarks.from_json(b'{"marks": [], "eligible": ["r1:s1"]}').last_active() is None
    assert stages.outcome_seen_at(b"1796384726.125") == 1796384726.125
    assert stages.outcome_seen_at(b"1") is None  # written before ids were dated: kept
