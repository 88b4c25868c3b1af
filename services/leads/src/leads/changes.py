"""Applying a lifecycle change to a stored lead. INTERFACE STUB: the signature other
features call (capture wins a lead by an order); the inbox engineer replaces the body."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leads.domain import lifecycle
from leads.lead import Lead
from leads.uow import UnitOfWork


async def apply_change(
    tx: UnitOfWork,
    *,
    lead: Lead,
    change: lifecycle.Change,
    now: datetime,
    by_agent_id: str | None = None,
    admin: bool = False,
    **details: Any,
) -> Lead:
    """Apply `change` to `lead` (locked by the caller): the lifecycle's transition, the row
    updated, the event published (`details` are its extra payload fields, e.g. channel for
    contacted, how/order_id/value/currency/order_event_id for won), SLA timers stopped or
    restarted. Refusals are the lifecycle's (Conflict, Invalid, Forbidden)."""
    raise NotImplementedError
