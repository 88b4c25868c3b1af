"""Console feature: admin (issue 5)."""

from __future__ import annotations

from chat.features import Stop, no_router
from chat.runtime import Runtime

router = no_router()


async def start(rt: Runtime) -> Stop | None:
    """Start what this feature runs in the background; return how to stop it."""
    return None
