"""Applying a lifecycle change to a stored lead: the one place where a lead's status, holder
and outcome change, so every path (the inbox, the REST API, an order that wins a lead, the
assignment engine) updates the row, records the touch, publishes the event and starts or
stops the first-contact timers the same way.

    lead = await apply_change(tx, lead=locked, change=lifecycle.contact(agent), now=now,
                              by_agent_id=agent, channel="phone", note="left a voicemail")

The caller has locked the lead (`LeadStore.lock`) and, when the change moves it between its
team's queue and an agent, holds the team's lock (`tx.lock_team`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import asyncpg
import orjson
from beckon_contracts.ids import uuid7
from beckon_contracts.leads import (
    LeadAssigned,
    LeadContacted,
    LeadLost,
    LeadReassigned,
    LeadStatusChanged,
    LeadWon,
)
from beckon_edge.refusals import Conflict, Invalid

from leads import events
from leads.domain import lifecycle
from leads.lead import LEAD_COLUMNS, Lead
from leads.sla import service as sla_service
from leads.uow import UnitOfWork

# the touch a change leaves on the lead's history
TOUCH_OF: dict[lifecycle.ChangeKind, str] = {
    "assign": "assigned",
    "reassign": "reassigned",
    "unassign": "unassigned",
    "contact": "contacted",
    "qualify": "qualified",
    "win": "won",
    "lose": "lost",
    "recycle": "recycled",
    "reopen": "reopened",
}
# what a touch keeps of a change's details (the rest goes to the event only)
TOUCH_DETAILS = ("channel", "note", "reason", "how", "order_id", "value", "currency")


class SlaTimers(Protocol):
    """What a change needs of the SLA feature (`leads.sla.service`)."""

    async def start_first_contact(
        self, tx: UnitOfWork, *, lead: Lead, now: datetime
    ) -> datetime | None: ...

    async def stop(self, tx: UnitOfWork, *, lead: Lead, now: datetime) -> int: ...


class ChangeStore:
    """The writes of a change: the lead row, its touch, and the deadline it was due by."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def update(self, lead: Lead, values: dict[str, Any]) -> Lead:
        """Set `values` (column → value) on the lead; the row as it is after."""
        columns = sorted(values)
        sets = ", ".join(f"{column} = ${n}" for n, column in enumerate(columns, start=3))
        row = await self.conn.fetchrow(
            f"UPDATE leads.leads SET {sets}, updated_at = now() "  # noqa: S608 (column names are ours)
            f"WHERE site_id = $1 AND lead_id = $2 RETURNING {LEAD_COLUMNS}",
            lead.site_id,
            lead.lead_id,
            *(values[column] for column in columns),
        )
        if row is None:
            raise LookupError(f"no lead {lead.lead_id} on site {lead.site_id}")
        return Lead.of(row)

    async def add_touch(
        self,
        lead: Lead,
        *,
        kind: str,
        agent_id: str | None,
        details: dict[str, Any],
        now: datetime,
    ) -> None:
        await self.conn.execute(
            """INSERT INTO leads.touches (touch_id, lead_id, site_id, kind, agent_id, validation,
                                          details, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            uuid7(),
            lead.lead_id,
            lead.site_id,
            kind,
            agent_id,
            lead.validation,
            orjson.dumps(details, default=str).decode(),
            now,
        )

    async def first_contact_deadline(self, site_id: str, lead_id: UUID) -> datetime | None:
        """The latest first-contact deadline the lead's timers were set for (None: no SLA)."""
        deadline: datetime | None = await self.conn.fetchval(
            """SELECT max(deadline_at) FROM leads.timers
               WHERE site_id = $1 AND lead_id = $2 AND kind = 'breach'""",
            site_id,
            lead_id,
        )
        return deadline


async def apply_change(
    tx: UnitOfWork,
    *,
    lead: Lead,
    change: lifecycle.Change,
    now: datetime,
    by_agent_id: str | None = None,
    admin: bool = False,
    timers: SlaTimers = sla_service,
    **details: Any,
) -> Lead:
    """Apply `change` to `lead` (locked by the caller): the lifecycle's transition, the row
    updated, a touch recorded, the event published (`details` are its extra payload fields,
    e.g. channel for contacted, how/order_id/value/currency/order_event_id for won, reason for
    reassigned), SLA timers stopped or restarted (`timers`). Refusals are the lifecycle's
    (Conflict, Invalid, Forbidden), and Invalid naming the field a change needs."""
    if lead.merged_into is not None:
        raise Conflict(
            "lead_merged", f"the lead was merged into {lead.merged_into}; change that one"
        )
    transition = lifecycle.apply(lead.lifecycle_state, change, admin=admin)
    kind = change.kind
    if kind == "contact" and not details.get("channel"):
        raise Invalid(
            "channel_required",
            "say how the person was contacted (phone, email, chat, sms, meeting or other)",
            errors=[{"loc": "channel", "msg": "required for a contact"}],
        )
    if kind in ("assign", "reassign", "unassign") and lead.team is None:
        raise Conflict("not_routed", "the lead has no team yet; route it first")
    changes = tx.store(ChangeStore)
    before = lead
    after = await changes.update(lead, _row_changes(transition, lead, now, details))
    note = details.get("note") or change.note
    touch = {key: details[key] for key in TOUCH_DETAILS if details.get(key) is not None}
    if note:
        touch["note"] = note
    if change.reason:
        touch["reason"] = change.reason
    await changes.add_touch(
        after,
        kind=TOUCH_OF[kind],
        agent_id=by_agent_id or change.agent_id,
        details=touch,
        now=now,
    )
    await _publish(tx, transition, before, after, now, by_agent_id, details)
    if transition.stops_sla:
        await timers.stop(tx, lead=after, now=now)
    if transition.starts_sla and after.team is not None:
        await timers.start_first_contact(tx, lead=after, now=now)
    return after


def _row_changes(
    transition: lifecycle.Transition, lead: Lead, now: datetime, details: dict[str, Any]
) -> dict[str, Any]:
    """The columns a transition sets."""
    after = transition.after
    values: dict[str, Any] = {
        "status": after.status,
        "assignee": after.agent_id,
        "lost_reason": after.lost_reason,
    }
    if after.agent_id is not None and after.agent_id != lead.assignee:
        values["assigned_at"] = now
    if lead.queued_at is not None and (after.agent_id is not None or after.status != "new"):
        values["queued_at"] = None  # out of the team's queue
    if after.agent_id is None and after.status == "new" and lead.team is not None:
        values["queued_at"] = now  # back in the team's queue (unassigned, reopened)
        values["assigned_at"] = None
    if transition.change.kind == "contact" and lead.first_contact_at is None:
        values["first_contact_at"] = now
    if transition.closes or (after.status == "won" and lead.status != "won"):
        values["closed_at"] = now
    if transition.reopens:
        values["closed_at"] = None
    if after.status == "won":
        for column, key in (("order_id", "order_id"), ("order_value", "value")):
            if details.get(key) is not None:
                values[column] = details[key]
        if details.get("currency") is not None:
            values["currency"] = str(details["currency"]).upper()
    return values


async def _publish(
    tx: UnitOfWork,
    transition: lifecycle.Transition,
    before: Lead,
    after: Lead,
    now: datetime,
    by_agent_id: str | None,
    details: dict[str, Any],
) -> None:
    change = transition.change
    kind = change.kind
    note = details.get("note") or change.note or None
    if kind == "assign":
        await events.emit(
            tx,
            LeadAssigned,
            after,
            now=now,
            team=after.team,
            agent_id=after.assignee,
            how=details.get("how", "manual" if by_agent_id else "auto"),
            by_agent_id=by_agent_id,
            first_contact_due_at=details.get("first_contact_due_at"),
        )
    elif kind in ("reassign", "unassign"):
        await events.emit(
            tx,
            LeadReassigned,
            after,
            now=now,
            team=after.team,
            from_agent_id=before.assignee,
            to_agent_id=after.assignee,
            reason=details.get("reason", "manual"),
            by_agent_id=by_agent_id,
            first_contact_due_at=details.get("first_contact_due_at"),
        )
    elif kind == "contact":
        first = before.first_contact_at is None
        deadline = await tx.store(ChangeStore).first_contact_deadline(after.site_id, after.lead_id)
        within = None if not first or deadline is None else now <= deadline
        await events.emit(
            tx,
            LeadContacted,
            after,
            now=now,
            agent_id=change.agent_id,
            channel=details["channel"],
            first=first,
            within_sla=within,
            note=note,
        )
    elif kind == "win":
        await events.emit(
            tx,
            LeadWon,
            after,
            now=now,
            how=details.get("how", "agent"),
            order_id=details.get("order_id"),
            order_event_id=details.get("order_event_id"),
            value=details.get("value"),
            currency=details.get("currency"),
            agent_id=by_agent_id or after.assignee,
            note=note,
        )
    elif kind == "lose":
        await events.emit(
            tx,
            LeadLost,
            after,
            now=now,
            reason=transition.after.lost_reason,
            note=note,
            by_agent_id=by_agent_id,
        )
    else:  # qualify, recycle, reopen
        await events.emit(
            tx,
            LeadStatusChanged,
            after,
            now=now,
            from_status=before.status,
            to_status=after.status,
            by_agent_id=by_agent_id,
            note=note,
        )
