"""Writing Faust tables from batched streams, through the worker's own producer.

A Faust table is a local store plus a changelog topic it is rebuilt from. `table[key] = v`
sends the changelog record through Faust's producer, which costs several times a plain
aiokafka send and needs a "current event" that `take_events` batches don't have. Here the
store is set directly and the changelog record goes out with the stage's other outputs, to
the partition of the event that changed it (the partition Faust itself would use, so
recovery and rebalancing work as usual). The stage awaits those sends before its events are
acknowledged, so a committed offset always has its table changes on the broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import orjson
from faust.types import EventT

if TYPE_CHECKING:
    from triggers.adapters.outputs import Outputs

Event: TypeAlias = EventT[Any]  # records arrive as raw bytes


async def set_table_key(out: Outputs, table: Any, key: str, value: bytes, event: Event) -> None:
    table.data[key] = value
    # the changelog record exactly as Faust writes it for key_type=str, value_type=bytes:
    # the key as a JSON string, the value raw
    await out.send(
        table.changelog_topic.get_topic_name(),
        orjson.dumps(key).decode(),
        value,
        partition=event.message.partition,
    )


async def delete_table_key(out: Outputs, table: Any, key: str, event: Event) -> None:
    """Forget `key`: gone from the store, and a tombstone on its changelog partition, so a
    recovery (and the log cleaner) forgets it too."""
    table.data.pop(key, None)
    await out.send(
        table.changelog_topic.get_topic_name(),
        orjson.dumps(key).decode(),
        None,
        partition=event.message.partition,
    )
