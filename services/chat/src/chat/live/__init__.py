"""Live visitors: every visitor on the site now, pushed to consoles as deltas.

- `domain.py`: the registry (pure): snapshots per site, coalesced deltas, idle expiry, filters
- `reader.py`: `LiveVisitors`, this instance's reader of `visitors.state` and its pushes
- `service.py`: the use cases: the list with filters, personal invitations
- `store.py`: `LiveStore`, what the feature reads and writes in Postgres
- `api.py`: socket frames `visitors.subscribe|unsubscribe`, `GET /visitors`, `POST .../invite`

The feature is the runtime's `VisitorLookup` (`rt.visitors`): the other features read a
visitor's latest snapshot with `rt.visitors.visitor(site_id, visitor_id)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chat.features import FrameHandler
from chat.hub import Connection
from chat.live.api import on_subscribe, on_unsubscribe, router
from chat.live.reader import METRICS, LiveVisitors
from chat.runtime import Runtime

__all__ = ["METRICS", "LiveFeature", "LiveVisitors"]


class LiveFeature:
    """Reads `visitors.state` into the live list and pushes deltas to subscribed consoles."""

    router = router
    frames: Mapping[str, FrameHandler] = {
        "visitors.subscribe": on_subscribe,
        "visitors.unsubscribe": on_unsubscribe,
    }

    def __init__(self) -> None:
        self.reader: LiveVisitors | None = None
        self._rt: Runtime | None = None

    async def start(self, rt: Runtime) -> None:
        settings = rt.settings
        reader = LiveVisitors(
            settings.kafka_bootstrap,
            f"chat-{settings.instance_id}",
            idle_after_s=settings.live_idle_after_s,
            push_interval_s=settings.live_push_interval_s,
            uow=rt.uow,
            security=settings.kafka_security,
            progress=rt.watchdog.track("chat-live"),
        )
        await reader.start()
        self.reader, self._rt = reader, rt
        rt.provide(reader)

    async def stop(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            if self._rt is not None:
                self._rt.withdraw(reader)
            await reader.stop()

    def disconnected(self, connection: Connection) -> None:
        if self.reader is not None:
            self.reader.unsubscribe(connection)

    # --- VisitorLookup ---------------------------------------------------------------------

    def visitor(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        return self.reader.visitor(site_id, visitor_id) if self.reader is not None else None

    def brief(self, site_id: str, visitor_id: str) -> dict[str, Any] | None:
        if self.reader is None:
            return None
        return self.reader.registry.brief(site_id, visitor_id)
