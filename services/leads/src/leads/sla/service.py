"""SLA use cases. INTERFACE STUB: the signatures other features call; the SLA engineer
replaces the bodies (and this line)."""

from __future__ import annotations

from datetime import datetime

from leads.lead import Lead
from leads.uow import UnitOfWork


async def start_first_contact(tx: UnitOfWork, *, lead: Lead, now: datetime) -> datetime | None:
    """Plan a routed lead's first-contact deadline under its team's policy (or the default),
    in the site's business hours, and store its timers. Returns the deadline (None: no SLA).
    Called once the lead has a team; a lead whose timers run already keeps them."""
    return None


async def stop(tx: UnitOfWork, *, lead: Lead, now: datetime) -> int:
    """Cancel the lead's pending timers (contacted or closed); returns how many."""
    return 0
