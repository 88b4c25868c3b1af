"""A lead as the service's use cases read it (`Lead`), and the queries every feature shares
on the `leads.leads` row (`LeadStore`): get one, lock one for a change, and count its events.

Features keep their own stores for what only they read or write (capture's dedup, the
assignment queue, timers, webhooks); this one is the lead itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from beckon_contracts.chat_events import LeadValidation
from beckon_contracts.leads import Contact, LeadState

from leads.domain import lifecycle
from leads.domain.lifecycle import Status

LEAD_COLUMNS = """lead_id, site_id, visitor_id, status, validation, team, assignee, name,
    company, email, email_key, phone, phone_key, country, language, source, rule_id, campaign,
    score, segment, capture, order_id, order_value, currency, lost_reason, merged_into,
    routing_version, created_at, updated_at, queued_at, assigned_at, first_contact_at,
    closed_at, event_seq"""


@dataclass(frozen=True, slots=True)
class Lead:
    """One row of `leads.leads`."""

    lead_id: UUID
    site_id: str
    visitor_id: str
    status: Status
    validation: LeadValidation
    team: str | None
    assignee: str | None
    name: str | None
    company: str | None
    email: str | None
    email_key: str | None
    phone: str | None
    phone_key: str | None
    country: str | None
    language: str | None
    source: str
    rule_id: str | None
    campaign: str | None
    score: int | None
    segment: str | None
    capture: dict[str, Any]
    order_id: str | None
    order_value: Decimal | None
    currency: str | None
    lost_reason: str | None
    merged_into: UUID | None
    routing_version: int | None
    created_at: datetime
    updated_at: datetime
    queued_at: datetime | None
    assigned_at: datetime | None
    first_contact_at: datetime | None
    closed_at: datetime | None
    event_seq: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> Lead:
        fields = dict(row)
        if isinstance(fields["capture"], str):  # jsonb comes as text (no codec on the pool)
            fields["capture"] = orjson.loads(fields["capture"])
        return cls(**fields)

    @property
    def open(self) -> bool:
        """Open (new, assigned, contacted, qualified) and not merged into another lead."""
        return self.merged_into is None and lifecycle.is_open(self.status)

    @property
    def lifecycle_state(self) -> lifecycle.LeadState:
        return lifecycle.LeadState(
            status=self.status,
            agent_id=self.assignee,
            lost_reason=self.lost_reason,  # type: ignore[arg-type]
        )

    def state(self) -> LeadState:
        """The lead as `leads.events` reports it after a change."""
        return LeadState(
            status=self.status,
            validation=self.validation,
            team=self.team,
            agent_id=self.assignee,
            contact=Contact(
                email=self.email_key or None,
                phone=self.phone_key or None,
                name=self.name,
                company=self.company,
            ),
        )


class LeadStore:
    """The lead row, scoped to one site in every query.

    It numbers each lead's events (`next_seq`): the first number a unit takes for a lead is
    counted on its row (the UPDATE locks it until the unit ends), the next ones here, and
    the last is written once, when the unit commits (`flush`, called by the unit)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self._seqs: dict[UUID, int] = {}  # lead → the seq of its last event in this unit
        self._unwritten: set[UUID] = set()

    async def get(self, site_id: str, lead_id: UUID) -> Lead | None:
        row = await self.conn.fetchrow(
            f"SELECT {LEAD_COLUMNS} FROM leads.leads WHERE site_id = $1 AND lead_id = $2",  # noqa: S608
            site_id,
            lead_id,
        )
        return Lead.of(row) if row else None

    async def lock(self, site_id: str, lead_id: UUID) -> Lead | None:
        """The lead, locked until the transaction ends (every change of a lead takes it)."""
        row = await self.conn.fetchrow(
            f"SELECT {LEAD_COLUMNS} FROM leads.leads "  # noqa: S608
            "WHERE site_id = $1 AND lead_id = $2 FOR UPDATE",
            site_id,
            lead_id,
        )
        return Lead.of(row) if row else None

    async def next_seq(self, site_id: str, lead_id: UUID) -> int:
        """The `seq` of the lead's next event (counted in this transaction)."""
        if lead_id in self._seqs:  # its row is this unit's until it ends
            seq = self._seqs[lead_id] = self._seqs[lead_id] + 1
            self._unwritten.add(lead_id)
            return seq
        found: int | None = await self.conn.fetchval(
            """UPDATE leads.leads SET event_seq = event_seq + 1
               WHERE site_id = $1 AND lead_id = $2 RETURNING event_seq""",
            site_id,
            lead_id,
        )
        if found is None:
            raise LookupError(f"no lead {lead_id} on site {site_id}")
        self._seqs[lead_id] = found
        return found

    def first_seq(self, lead_id: UUID) -> int:
        """The `seq` of the first event of a lead this unit inserted (`lead.created`)."""
        self._seqs[lead_id] = 1
        self._unwritten.add(lead_id)
        return 1

    def written(self, lead_id: UUID, seq: int) -> None:
        """Another write of this unit stored `seq` on the lead's row (a drain's assignment):
        `flush` writes it only if the lead has a later event."""
        if self._seqs.get(lead_id) == seq:
            self._unwritten.discard(lead_id)

    async def flush(self) -> None:
        """Write the numbers counted here (the unit calls it before it commits)."""
        if not self._unwritten:
            return
        ids = sorted(self._unwritten)
        self._unwritten.clear()
        await self.conn.execute(
            """UPDATE leads.leads AS l SET event_seq = s.seq
               FROM unnest($1::uuid[], $2::int[]) AS s(lead_id, seq)
               WHERE l.lead_id = s.lead_id""",
            ids,
            [self._seqs[lead_id] for lead_id in ids],
        )
