"""The latest `visitors.state` of recently active visitors, for the score, segment, cart and
campaign a lead records at capture.

Every instance follows the compacted topic whole (`CompactedTopicFollower`) but keeps only
the `max_visitors` most recently *updated* visitors. Why bounded: the topic holds every
visitor a site ever had, and capture needs the state only of someone chatting now, whose
snapshot triggers rewrites at most about once a second while they browse and chat, so they are
always among the most recently updated. A visitor pushed out (quiet for longer than it takes
`max_visitors` others to move) is captured without a state: the lead then has no score or
campaign, and routing falls back to the chat's own facts.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from aiokafka import ConsumerRecord
from beckon_contracts.visitors import VisitorSnapshot

from leads.capture.model import VisitorView

log = logging.getLogger("leads.capture")


class VisitorStates:
    """`(site_id, visitor_id)` → `VisitorView`, least recently updated evicted first."""

    def __init__(self, max_visitors: int) -> None:
        self.max_visitors = max_visitors
        self._views: OrderedDict[tuple[str, str], VisitorView] = OrderedDict()

    def __len__(self) -> int:
        return len(self._views)

    def get(self, site_id: str, visitor_id: str) -> VisitorView | None:
        return self._views.get((site_id, visitor_id))

    def put(self, site_id: str, visitor_id: str, view: VisitorView) -> None:
        key = (site_id, visitor_id)
        known = self._views.get(key)
        if known is not None and known.as_of > view.as_of:
            return  # an older snapshot (a replay): the newer one stays
        self._views[key] = view
        self._views.move_to_end(key)
        while len(self._views) > self.max_visitors:
            self._views.popitem(last=False)

    def forget(self, site_id: str, visitor_id: str) -> None:
        self._views.pop((site_id, visitor_id), None)

    def on_record(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """The follower's callback: a snapshot, or a tombstone (erased visitor)."""
        if record.value is None:
            site_id, _, visitor_id = (record.key or b"").decode().partition(":")
            self.forget(site_id, visitor_id)
            return
        snapshot = VisitorSnapshot.model_validate_json(record.value)
        self.put(snapshot.site_id, snapshot.visitor_id, VisitorView.of(snapshot))
