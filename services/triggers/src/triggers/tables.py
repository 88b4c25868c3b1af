"""Writing Faust tables from batched streams, through the worker's own producer.

A Faust table is a local store plus a changelog topic it is rebuilt from. `table[key] = v`
sends the changelog record through Faust's producer, which costs several times a plain
aiokafka send and needs a "current event" that `take_events` batches don't have. Here the
store is set directly and the changelog record goes out with the stage's other outputs, to
the partition of the event that changed it (the partition Faust itself would use, so
recovery and rebalancing work as usual). The stage awaits those sends before its events are
acknowledged, so a committed offset always has its table changes on the broker.

Nothing in a table lives for good: `IdleSweep` forgets the keys whose value was last active
longer ago than the table's idle period (a visitor not seen for a month), with the same
tombstone an erasure sends, a slice at a time between the stage's batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson
from faust.types import EventT

if TYPE_CHECKING:
    from triggers.adapters.outputs import Outputs

Event: TypeAlias = EventT[Any]  # records arrive as raw bytes


async def set_table_key(out: Outputs, table: Any, key: str, value: bytes, event: Event) -> None:
    partition = event.message.partition
    table.data[key] = value
    _key_partitions(table)[key] = partition
    # the changelog record exactly as Faust writes it for key_type=str, value_type=bytes:
    # the key as a JSON string, the value raw
    await out.send(
        table.changelog_topic.get_topic_name(),
        orjson.dumps(key).decode(),
        value,
        partition=partition,
    )


async def delete_table_key(out: Outputs, table: Any, key: str, event: Event) -> None:
    """Forget `key`: gone from the store, and a tombstone on its changelog partition, so a
    recovery (and the log cleaner) forgets it too."""
    await _delete(out, table, key, event.message.partition)


async def _delete(out: Outputs, table: Any, key: str, partition: int) -> None:
    table.data.pop(key, None)
    _key_partitions(table).pop(key, None)
    await out.send(
        table.changelog_topic.get_topic_name(),
        orjson.dumps(key).decode(),
        None,
        partition=partition,
    )


def _key_partitions(table: Any) -> dict[str, int]:
    """The changelog partition of each key in the table's memory store. Faust's store keeps it
    for the keys it recovers (`_key_partition`, and drops a revoked partition's keys with it
    once a rebalance's recovery completes); the keys written here are added, so those follow
    a rebalance too and a sweep knows where each key's tombstone goes."""
    found: dict[str, int] = table.data._key_partition
    return found


class IdleSweep:
    """Forgets a table's keys idle for longer than `idle_s`.

    Every `every_s` a sweep takes the keys then in the table and goes through them a slice
    (`slice_keys`) per `step`, which its stage calls after each batch: a key whose value
    `last_active` says was last active before `now - idle_s` is deleted with a tombstone on
    its changelog partition. A value it cannot date (None) is
    kept. Only the stage that writes the table calls `step`, so nothing changes a key
    between the look and the delete. Only keys of the partitions `owned()` names (this
    worker's active ones) are forgotten: a standby replica's copy may lag its owner's, and a
    tombstone from it could land after the owner's newer value."""

    def __init__(
        self,
        table: Any,
        *,
        idle_s: float,
        every_s: float,
        last_active: Callable[[bytes], float | None],
        owned: Callable[[], Collection[int]],
        slice_keys: int = 2_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table = table
        self.idle_s = idle_s
        self.every_s = every_s
        self.last_active = last_active
        self.owned = owned
        self.slice_keys = slice_keys
        self.clock = clock
        self.forgotten = 0
        self._keys: list[str] = []
        self._next_sweep = clock() + every_s

    async def step(self, out: Outputs, now: float) -> list[str]:
        """One slice of the sweep in progress (starting one when it is time): the keys it
        forgot. `now` is the wall clock the values' times are compared with."""
        if not self._keys:
            if self.clock() < self._next_sweep:
                return []
            self._next_sweep = self.clock() + self.every_s
            self._keys = list(self.table.data.keys())
        cut = len(self._keys) - self.slice_keys
        looked, self._keys = self._keys[max(cut, 0) :], self._keys[: max(cut, 0)]
        partitions = _key_partitions(self.table)
        mine = set(self.owned())
        before = now - self.idle_s
        forgotten: list[str] = []
        for key in looked:
            raw = self.table.data.get(key)
            partition = partitions.get(key)
            if raw is None or partition not in mine:
                continue  # gone meanwhile, or not this worker's to forget
            at = self.last_active(raw)
            if at is None or at >= before:
                continue
            await _delete(out, self.table, key, partition)
            forgotten.append(key)
        self.forgotten += len(forgotten)
        return forgotten
