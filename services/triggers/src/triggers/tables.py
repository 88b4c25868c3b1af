"""Writing Faust tables from batched streams."""

from __future__ import annotations

import weakref
from typing import Any, TypeAlias

from faust.streams import _current_event
from faust.types import EventT

Event: TypeAlias = EventT[Any]  # records arrive as raw bytes


def set_table_key(table: Any, key: str, value: bytes, event: Event) -> None:
    """`table[key] = value`, written to the changelog partition of `event`.

    Faust finds the changelog partition through the stream's "current event"; inside
    `take_events` there is none, so we point it at the batch's last event for this key,
    which came from the same partition as every other record of that key.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        table[key] = value
    finally:
        _current_event.reset(token)
