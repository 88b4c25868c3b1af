"""Live visitors: every visitor on the site now, pushed to consoles as deltas (issue 5).

- `domain.py`: the registry (pure): snapshots per site, coalesced deltas, idle expiry, filters
- `reader.py`: `LiveVisitors`, this instance's reader of `visitors.state` and its pushes
- `api.py`: socket frames `visitors.subscribe|unsubscribe`, `GET /visitors`, `POST .../invite`
- `invite.py`: personal invitations

Other features read a visitor's latest snapshot with
`rt.features["live"].visitor(site_id, visitor_id) -> dict | None`.
"""

from __future__ import annotations

from chat.api.console import FRAME_HANDLERS, ON_DISCONNECT
from chat.features import Stop
from chat.live.api import on_disconnect, on_subscribe, on_unsubscribe, router
from chat.live.reader import METRICS, LiveVisitors
from chat.runtime import Runtime

__all__ = ["METRICS", "LiveVisitors", "router", "start"]


async def start(rt: Runtime) -> Stop | None:
    """Read `visitors.state` into the live list and push deltas to subscribed consoles."""
    settings = rt.settings
    live = LiveVisitors(
        settings.kafka_bootstrap,
        f"chat-{settings.instance_id}",
        idle_after_s=settings.live_idle_after_s,
        push_interval_s=settings.live_push_interval_s,
        pool=rt.service.pool,
        security=settings.kafka_security,
    )
    await live.start()
    rt.features["live"] = live
    FRAME_HANDLERS["visitors.subscribe"] = on_subscribe
    FRAME_HANDLERS["visitors.unsubscribe"] = on_unsubscribe
    if on_disconnect not in ON_DISCONNECT:
        ON_DISCONNECT.append(on_disconnect)

    async def stop() -> None:
        rt.features.pop("live", None)
        await live.stop()

    return stop
