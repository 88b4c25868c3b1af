"""The leads inbox's use cases, for the console's agents (`Caller`) and the REST API's
clients (`ApiClient`): list, get, change status, claim, reassign, export.

Tenant and role are enforced here, not by the routes: every query names the caller's site
(another site's lead is simply not found), an agent sees their own leads and their teams'
(an admin, and an API key, the whole site), and changes a lead they hold or a queued one of
their teams (an admin any). Refusals are codes (`beckon_edge.refusals`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol
from uuid import UUID

import orjson
from beckon_edge.refusals import Conflict, Forbidden, Invalid, NotFound

from leads.api.deps import Caller
from leads.apikeys.service import ApiClient
from leads.assignment import service as assignment_service
from leads.assignment.service import ReassignReason
from leads.capture import service as capture_service
from leads.changes import SlaTimers, apply_change
from leads.domain import lifecycle
from leads.inbox.store import Cursor, Filters, InboxStore, Visibility
from leads.lead import Lead, LeadStore
from leads.sla import service as sla_service
from leads.uow import UnitOfWork, UnitsOfWork

Who = Caller | ApiClient
Scope = Literal["mine", "team", "all"]
StatusChangeKind = Literal["contact", "qualify", "win", "lose", "recycle", "reopen"]
MAX_PAGE = 200
EXPORT_BATCH = 500
EXPORT_COLUMNS = (
    "lead_id",
    "created_at",
    "status",
    "validation",
    "team",
    "assignee",
    "name",
    "company",
    "email",
    "phone",
    "country",
    "language",
    "source",
    "campaign",
    "rule_id",
    "score",
    "segment",
    "assigned_at",
    "first_contact_at",
    "closed_at",
    "lost_reason",
    "order_id",
    "order_value",
    "currency",
    "sla_state",
    "sla_due_at",
)


class Assignment(Protocol):
    """What the inbox needs of the assignment feature (`leads.assignment.service`)."""

    async def claim(self, tx: UnitOfWork, *, lead: Lead, agent_id: str, now: datetime) -> Lead: ...

    async def reassign(
        self,
        tx: UnitOfWork,
        *,
        lead: Lead,
        reason: ReassignReason,
        now: datetime,
        to_agent_id: str | None = None,
        by_agent_id: str | None = None,
    ) -> Lead: ...

    async def drain(self, tx: UnitOfWork, *, team: str, now: datetime) -> list[Lead]: ...


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A status change asked for in the inbox or by the API."""

    change: StatusChangeKind
    channel: str | None = None
    reason: str | None = None
    note: str | None = None
    value: Decimal | None = None
    currency: str | None = None
    agent_id: str | None = None  # API clients: who made the contact (default: the holder)


@dataclass(frozen=True, slots=True)
class Page:
    leads: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Features:
    """The other features a change calls (swapped for fakes in unit tests)."""

    assignment: Assignment = field(default=assignment_service)  # type: ignore[assignment]
    timers: SlaTimers = field(default=sla_service)  # type: ignore[assignment]


FEATURES = Features()


# --- reading --------------------------------------------------------------------------------


async def list_leads(
    *,
    uow: UnitsOfWork,
    who: Who,
    scope: Scope,
    filters: Filters,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> Page:
    """A page of the caller's leads, newest first: `mine` (held by the agent), `team` (theirs
    and their teams'), `all` (the site: admins and API clients)."""
    site = who.site_id
    visibility = _visibility(who, scope)
    after = decode_cursor(cursor) if cursor else None
    limit = max(1, min(limit, MAX_PAGE))
    async with uow.read(site) as tx:
        rows = await tx.store(InboxStore).page(
            site, now=now, filters=filters, visibility=visibility, after=after, limit=limit + 1
        )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more else None
    return Page(
        leads=[summary(row) for row in rows],
        next_cursor=encode_cursor(Cursor(last["created_at"], last["lead_id"])) if last else None,
    )


async def get_lead(*, uow: UnitsOfWork, who: Who, lead_id: UUID, now: datetime) -> dict[str, Any]:
    """One lead with its touches, conversations, merges, SLA clock and the changes the caller
    may make."""
    async with uow.read(who.site_id) as tx:
        return await _detail(tx, who, lead_id, now)


async def export_rows(
    *, uow: UnitsOfWork, who: Who, filters: Filters, now: datetime
) -> AsyncIterator[list[Any]]:
    """The site's leads for the CSV export (admins and API clients), newest first, read in
    batches (no connection is held while the client reads)."""
    if isinstance(who, Caller) and not who.admin:
        raise Forbidden("admin_only", "only a site admin can export the leads")
    after: Cursor | None = None
    while True:
        async with uow.read(who.site_id) as tx:
            rows = await tx.store(InboxStore).page(
                who.site_id,
                now=now,
                filters=filters,
                visibility=Visibility(),
                after=after,
                limit=EXPORT_BATCH,
            )
        for row in rows:
            yield [row[column] for column in EXPORT_COLUMNS]
        if len(rows) < EXPORT_BATCH:
            return
        after = Cursor(rows[-1]["created_at"], rows[-1]["lead_id"])


# --- changing -------------------------------------------------------------------------------


async def change_status(
    *,
    uow: UnitsOfWork,
    who: Who,
    lead_id: UUID,
    asked: StatusChange,
    now: datetime,
    features: Features = FEATURES,
) -> dict[str, Any]:
    """Contact (with the channel), qualify, win, lose (with a reason), recycle or reopen
    (admins) a lead, with a note."""
    async with uow(who.site_id) as tx:
        lead = await _locked(tx, who, lead_id)
        _may_change(who, lead)
        change = _change_of(asked, who, lead)
        agent = who.agent_id if isinstance(who, Caller) else None
        details: dict[str, Any] = {"note": asked.note}
        if asked.change == "contact":
            details["channel"] = asked.channel
        if asked.change == "win":
            if (asked.value is None) != (asked.currency is None):
                missing = "currency" if asked.currency is None else "value"
                raise Invalid(
                    "invalid",
                    f"{missing}: give the order's value and currency together, or neither",
                    errors=[{"loc": missing, "msg": "value and currency go together"}],
                )
            details.update(how="agent", value=asked.value, currency=asked.currency)
        after = await apply_change(
            tx,
            lead=lead,
            change=change,
            now=now,
            by_agent_id=agent,
            admin=_admin(who),
            timers=features.timers,
            **details,
        )
        if lead.assignee is not None and lead.open and not after.open and after.team:
            # the holder has room for another lead: give them the next one waiting
            await features.assignment.drain(tx, team=after.team, now=now)
        return await _detail(tx, who, lead_id, now)


async def claim(
    *,
    uow: UnitsOfWork,
    caller: Caller,
    lead_id: UUID,
    now: datetime,
    features: Features = FEATURES,
) -> dict[str, Any]:
    """The agent takes a queued lead of one of their teams."""
    async with uow(caller.site_id) as tx:
        lead = await _locked(tx, caller, lead_id)
        if not caller.admin and lead.team not in caller.teams:
            raise Forbidden("not_your_team", "you can claim only your teams' leads")
        if lead.status != "new" or lead.assignee is not None or lead.merged_into is not None:
            raise Conflict("not_queued", "the lead is not waiting in its team's queue")
        await features.assignment.claim(tx, lead=lead, agent_id=caller.agent_id, now=now)
        return await _detail(tx, caller, lead_id, now)


async def reassign(
    *,
    uow: UnitsOfWork,
    caller: Caller,
    lead_id: UUID,
    to_agent_id: str | None,
    now: datetime,
    features: Features = FEATURES,
) -> dict[str, Any]:
    """Hand a held lead to another agent (`to_agent_id`) or the team's next free one: its
    holder, the team's lead or an admin may."""
    async with uow(caller.site_id) as tx:
        lead = await _locked(tx, caller, lead_id)
        if lead.assignee is None:
            raise Conflict("not_assigned", "nobody holds this lead; claim it instead")
        if to_agent_id is not None and to_agent_id == lead.assignee:
            raise Conflict("same_agent", f"the lead is already {to_agent_id}'s")
        if not caller.admin and caller.agent_id != lead.assignee:
            team_lead = await tx.store(InboxStore).team_lead(caller.site_id, lead.team or "")
            if caller.agent_id != team_lead:
                raise Forbidden(
                    "not_your_lead", "only its holder, the team's lead or an admin can reassign"
                )
        await features.assignment.reassign(
            tx,
            lead=lead,
            reason="manual",
            now=now,
            to_agent_id=to_agent_id,
            by_agent_id=caller.agent_id,
        )
        return await _detail(tx, caller, lead_id, now)


# --- rules ----------------------------------------------------------------------------------


def _admin(who: Who) -> bool:
    """API keys are made by admins for the whole site: they act with the site's authority."""
    return isinstance(who, ApiClient) or who.admin


def _visibility(who: Who, scope: Scope) -> Visibility:
    if scope == "all":
        if not _admin(who):
            raise Forbidden("admin_only", "only a site admin sees every lead of the site")
        return Visibility()
    if isinstance(who, ApiClient):  # a key belongs to no agent: it sees the site
        return Visibility()
    return Visibility(agent_id=who.agent_id, teams=who.teams if scope == "team" else ())


def _may_see(who: Who, lead: Lead) -> None:
    if isinstance(who, ApiClient) or who.admin:
        return
    if lead.assignee == who.agent_id or lead.team in who.teams:
        return
    raise Forbidden("not_your_lead", "this lead belongs to another team")


def _may_change(who: Who, lead: Lead) -> None:
    if _admin(who):
        return
    assert isinstance(who, Caller)
    if lead.assignee == who.agent_id:
        return
    if lead.assignee is None and lead.team in who.teams:
        return  # a queued lead of one of their teams
    raise Forbidden(
        "not_your_lead", "you can change only leads you hold or your teams' queued leads"
    )


def _change_of(asked: StatusChange, who: Who, lead: Lead) -> lifecycle.Change:
    kind = asked.change
    if kind == "contact":
        agent = who.agent_id if isinstance(who, Caller) else (asked.agent_id or lead.assignee)
        if not agent:
            raise Invalid(
                "agent_required",
                "agent_id: say which agent contacted the person (the lead has no holder)",
                errors=[{"loc": "agent_id", "msg": "required when the lead has no holder"}],
            )
        return lifecycle.contact(agent)
    if kind == "lose":
        return lifecycle.lose(asked.reason or "", asked.note)
    return {
        "qualify": lifecycle.qualify,
        "win": lifecycle.win,
        "recycle": lifecycle.recycle,
        "reopen": lifecycle.reopen,
    }[kind]()


async def undo_merge(
    *, uow: UnitsOfWork, caller: Caller, merge_id: UUID, now: datetime
) -> tuple[UUID, UUID]:
    """An admin undoes a merge: the absorbed lead is open again (survivor, restored)."""
    if not caller.admin:
        raise Forbidden("admin_only", "only a site admin can undo a merge")
    async with uow(caller.site_id) as tx:
        undone = await capture_service.unmerge(
            tx, merge_id=merge_id, by_agent_id=caller.agent_id, now=now
        )
    return undone.survivor.lead_id, undone.restored.lead_id


async def _locked(tx: UnitOfWork, who: Who, lead_id: UUID) -> Lead:
    """The lead, locked, under its team's assignment lock (taken first: the order every
    assignment takes them in)."""
    leads = tx.store(LeadStore)
    seen = await leads.get(who.site_id, lead_id)
    if seen is None:
        raise NotFound("lead_not_found", "this site has no such lead")
    _may_see(who, seen)
    if seen.team is not None:
        await tx.lock_team(seen.team)
    lead = await leads.lock(who.site_id, lead_id)
    if lead is None:
        raise NotFound("lead_not_found", "this site has no such lead")
    if lead.team != seen.team:
        raise Conflict("lead_moved", "the lead moved to another team just now; try again")
    return lead


async def _detail(tx: UnitOfWork, who: Who, lead_id: UUID, now: datetime) -> dict[str, Any]:
    inbox = tx.store(InboxStore)
    row = await inbox.one(who.site_id, lead_id, now=now)
    if row is None:
        raise NotFound("lead_not_found", "this site has no such lead")
    columns = {key: value for key, value in dict(row).items() if not key.startswith("sla_")}
    lead = Lead.of(columns)  # type: ignore[arg-type]
    _may_see(who, lead)
    answer = summary(row)
    answer["merged_into"] = row["merged_into"]
    answer["touches"] = [
        {**dict(touch), "details": _json(touch["details"])}
        for touch in await inbox.touches(who.site_id, lead_id)
    ]
    answer["conversations"] = [dict(c) for c in await inbox.conversations(who.site_id, lead_id)]
    answer["merges"] = [dict(m) for m in await inbox.merges(who.site_id, lead_id)]
    answer["allowed"] = [] if lead.merged_into else _offered(lead, who)
    return answer


_STATUS_CHANGES: frozenset[str] = frozenset(StatusChangeKind.__args__)  # type: ignore[attr-defined]


def _offered(lead: Lead, who: Who) -> list[str]:
    """The status changes the caller may make now (what the console offers)."""
    try:
        _may_change(who, lead)
    except Forbidden:
        return []
    kinds = lifecycle.allowed(lead.lifecycle_state, admin=_admin(who))
    return [kind for kind in kinds if kind in _STATUS_CHANGES]


def summary(row: Any) -> dict[str, Any]:
    return {
        "lead_id": row["lead_id"],
        "visitor_id": row["visitor_id"],
        "status": row["status"],
        "validation": row["validation"],
        "team": row["team"],
        "assignee": row["assignee"],
        "name": row["name"],
        "company": row["company"],
        "email": row["email"],
        "phone": row["phone"],
        "country": row["country"],
        "language": row["language"],
        "source": row["source"],
        "campaign": row["campaign"],
        "rule_id": row["rule_id"],
        "score": row["score"],
        "segment": row["segment"],
        "created_at": row["created_at"],
        "assigned_at": row["assigned_at"],
        "first_contact_at": row["first_contact_at"],
        "closed_at": row["closed_at"],
        "lost_reason": row["lost_reason"],
        "order_id": row["order_id"],
        "order_value": row["order_value"],
        "currency": row["currency"],
        "sla": {
            "state": row["sla_state"],
            "due_at": row["sla_due_at"],
            "next_due_at": row["sla_next_due_at"],
        },
    }


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


# --- cursors --------------------------------------------------------------------------------


def encode_cursor(cursor: Cursor) -> str:
    raw = orjson.dumps([cursor.created_at.isoformat(), str(cursor.lead_id)])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> Cursor:
    """A cursor from a previous page, or 422 naming `cursor`."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created, lead_id = orjson.loads(raw)
        return Cursor(datetime.fromisoformat(created), UUID(lead_id))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise Invalid(
            "invalid",
            "cursor: not a cursor this API gave (use next_cursor of the previous page)",
            errors=[{"loc": "cursor", "msg": "not a cursor this API gave"}],
        ) from None
