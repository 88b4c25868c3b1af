"""The leads inbox over HTTP: `/v1/leads...` for the console's agents (their session cookie)
and `/v1/api/leads...` for REST clients (a per-site API key). Each route calls one use case
of `leads.inbox.service`, which enforces tenant and role."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from beckon_contracts.envelope import Identifier
from beckon_edge.spreadsheet import csv_line
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import StreamingResponse

from leads.api.deps import CurrentAdmin, CurrentAgent, CurrentApiClient, Rt, Valid
from leads.api.openapi import body_of, errors
from leads.domain.lifecycle import LOST_REASONS, MAX_NOTE_CHARS, Status
from leads.inbox import service
from leads.inbox.service import EXPORT_COLUMNS, MAX_PAGE, Scope, StatusChange, Who
from leads.inbox.store import Filters, SlaState
from leads.uow import UnitsOfWork

router = APIRouter(prefix="/v1/leads", tags=["inbox"])
api_router = APIRouter(prefix="/v1/api/leads", tags=["rest-api"])

Validation = Literal["contact_only", "interested", "qualified", "ready_to_buy"]
Channel = Literal["phone", "email", "chat", "sms", "meeting", "other"]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE_CHARS)]
LostReasonCode = Literal[LOST_REASONS]  # type: ignore[valid-type]


# --- answers --------------------------------------------------------------------------------


class SlaClock(BaseModel):
    state: SlaState = Field(
        description="none (no first contact due), running, warning (a warning point passed), "
        "breached (the deadline passed)"
    )
    due_at: datetime | None = Field(description="The first-contact deadline")
    next_due_at: datetime | None = Field(description="When the next warning or breach fires")


class LeadSummary(BaseModel):
    lead_id: UUID
    visitor_id: str
    status: Status
    validation: Validation
    team: str | None
    assignee: str | None = Field(description="The agent holding it; null: queued")
    name: str | None
    company: str | None
    email: str | None
    phone: str | None
    country: str | None
    language: str | None
    source: str
    campaign: str | None
    rule_id: str | None
    score: int | None
    segment: str | None
    created_at: datetime
    assigned_at: datetime | None
    first_contact_at: datetime | None
    closed_at: datetime | None
    lost_reason: str | None
    order_id: str | None
    order_value: Decimal | None
    currency: str | None
    sla: SlaClock


class LeadPage(BaseModel):
    leads: list[LeadSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class TouchView(BaseModel):
    touch_id: UUID
    kind: str = Field(description="e.g. lead_marked, email_captured, contacted, won")
    agent_id: str | None
    validation: str | None
    conversation_id: UUID | None
    details: dict[str, Any]
    occurred_at: datetime


class ConversationLink(BaseModel):
    conversation_id: UUID = Field(description="The source conversation (its transcript in chat)")
    added_at: datetime


class MergeView(BaseModel):
    merge_id: UUID
    survivor_id: UUID
    merged_id: UUID
    reason: str
    merged_by: str | None
    merged_at: datetime
    undone_by: str | None
    undone_at: datetime | None


class LeadDetail(LeadSummary):
    merged_into: UUID | None
    touches: list[TouchView]
    conversations: list[ConversationLink]
    merges: list[MergeView]
    allowed: list[str] = Field(description="The status changes the caller may make now")


# --- bodies ---------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatusBody(_Body):
    """A status change: contact needs `channel`, lose a `reason` (and a note for `other`),
    win may carry the order's value and currency; reopen is an admin's."""

    change: Literal["contact", "qualify", "win", "lose", "recycle", "reopen"]
    channel: Channel | None = None
    reason: LostReasonCode | None = None
    note: Note | None = None
    value: Annotated[Decimal, Field(ge=0, le=Decimal("1000000000"), decimal_places=2)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$")] | None = None


class ApiStatusBody(StatusBody):
    agent_id: Identifier | None = Field(
        default=None, description="contact: the agent who made it (default: the lead's holder)"
    )


class ReassignBody(_Body):
    to_agent_id: Identifier | None = Field(
        default=None, description="The new holder; null: the team's next free agent"
    )


def _asked(body: StatusBody) -> StatusChange:
    return StatusChange(
        change=body.change,
        channel=body.channel,
        reason=body.reason,
        note=body.note,
        value=body.value,
        currency=body.currency.upper() if body.currency else None,
        agent_id=body.agent_id if isinstance(body, ApiStatusBody) else None,
    )


# --- shared query parameters ----------------------------------------------------------------

StatusQuery = Annotated[list[Status] | None, Query(description="Any of these statuses")]
TeamQuery = Annotated[Identifier | None, Query()]
ValidationQuery = Annotated[Validation | None, Query()]
SourceQuery = Annotated[str | None, Query(max_length=200)]
SlaQuery = Annotated[SlaState | None, Query(description="The first-contact clock's state")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="next_cursor of a page")]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def _filters(
    status: list[Status] | None,
    team: str | None,
    validation: str | None,
    source: str | None,
    sla: SlaState | None,
) -> Filters:
    return Filters(
        statuses=tuple(status) if status else None,
        team=team,
        validation=validation,
        source=source,
        sla=sla,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _page(found: service.Page) -> LeadPage:
    return LeadPage.model_validate({"leads": found.leads, "next_cursor": found.next_cursor})


async def _csv(uow: UnitsOfWork, who: Who, filters: Filters) -> StreamingResponse:
    rows = service.export_rows(uow=uow, who=who, filters=filters, now=_now())
    first = await anext(rows, None)  # refusals (an agent asking) before the 200 starts

    async def lines() -> AsyncIterator[str]:
        yield csv_line(EXPORT_COLUMNS)
        if first is None:
            return
        yield csv_line(first)
        async for row in rows:
            yield csv_line(row)

    stamp = _now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="leads-{stamp}.csv"'},
    )


CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV, a header row first; cells a spreadsheet would run as a formula "
        "start with `'`",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


# --- the console's agents -------------------------------------------------------------------


@router.get(
    "",
    response_model=LeadPage,
    summary="List leads",
    responses=errors(401, 403, 422, 503),
)
async def list_leads(
    rt: Rt,
    caller: CurrentAgent,
    scope: Annotated[Scope, Query(description="mine, team (mine and my teams'), all (admins)")] = (
        "team"
    ),
    status: StatusQuery = None,
    team: TeamQuery = None,
    validation: ValidationQuery = None,
    source: SourceQuery = None,
    sla: SlaQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> LeadPage:
    """The agent's leads, newest first, page by page."""
    found = await service.list_leads(
        uow=rt.uow,
        who=caller,
        scope=scope,
        filters=_filters(status, team, validation, source, sla),
        cursor=cursor,
        limit=limit,
        now=_now(),
    )
    return _page(found)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    summary="Export leads as CSV (admins)",
    responses={**CSV_ANSWER, **errors(401, 403, 422, 503)},
)
async def export_csv(
    rt: Rt,
    caller: CurrentAdmin,
    status: StatusQuery = None,
    team: TeamQuery = None,
    validation: ValidationQuery = None,
    source: SourceQuery = None,
    sla: SlaQuery = None,
) -> StreamingResponse:
    """Every lead of the site matching the filters, newest first, streamed."""
    return await _csv(rt.uow, caller, _filters(status, team, validation, source, sla))


@router.get(
    "/{lead_id}",
    response_model=LeadDetail,
    summary="Get a lead",
    responses=errors(401, 403, 404, 422, 503),
)
async def get_lead(rt: Rt, caller: CurrentAgent, lead_id: UUID) -> LeadDetail:
    """The lead with its touches, source conversations, merges and SLA clock."""
    found = await service.get_lead(uow=rt.uow, who=caller, lead_id=lead_id, now=_now())
    return LeadDetail.model_validate(found)


@router.post(
    "/{lead_id}/status",
    response_model=LeadDetail,
    summary="Change a lead's status",
    responses=errors(400, 401, 403, 404, 409, 422, 503),
    openapi_extra=body_of(StatusBody),
)
async def change_status(
    rt: Rt, caller: CurrentAgent, lead_id: UUID, body: Valid[StatusBody]
) -> LeadDetail:
    """Contact, qualify, win, lose, recycle or reopen (admins) a lead, with a note."""
    changed = await service.change_status(
        uow=rt.uow, who=caller, lead_id=lead_id, asked=_asked(body), now=_now()
    )
    return LeadDetail.model_validate(changed)


@router.post(
    "/{lead_id}/claim",
    response_model=LeadDetail,
    summary="Claim a queued lead",
    responses=errors(401, 403, 404, 409, 422, 503),
)
async def claim(rt: Rt, caller: CurrentAgent, lead_id: UUID) -> LeadDetail:
    """The agent takes a lead waiting in one of their teams' queues."""
    claimed = await service.claim(uow=rt.uow, caller=caller, lead_id=lead_id, now=_now())
    return LeadDetail.model_validate(claimed)


@router.post(
    "/{lead_id}/reassign",
    response_model=LeadDetail,
    summary="Reassign a lead",
    responses=errors(400, 401, 403, 404, 409, 422, 503),
    openapi_extra=body_of(ReassignBody),
)
async def reassign(
    rt: Rt, caller: CurrentAgent, lead_id: UUID, body: Valid[ReassignBody]
) -> LeadDetail:
    """Hand a held lead to another agent, or to the team's next free one."""
    moved = await service.reassign(
        uow=rt.uow, caller=caller, lead_id=lead_id, to_agent_id=body.to_agent_id, now=_now()
    )
    return LeadDetail.model_validate(moved)


class UndoneMerge(BaseModel):
    survivor_id: UUID = Field(description="The lead the merge had kept")
    restored_id: UUID = Field(description="The lead the merge had folded in, open again")


@router.post(
    "/merges/{merge_id}/undo",
    response_model=UndoneMerge,
    summary="Undo a merge (admins)",
    responses=errors(401, 403, 404, 409, 503),
)
async def undo_merge(rt: Rt, admin: CurrentAdmin, merge_id: UUID) -> UndoneMerge:
    """The two leads apart again, each with its own touches (`lead.unmerged` on both)."""
    survivor, restored = await service.undo_merge(
        uow=rt.uow, caller=admin, merge_id=merge_id, now=_now()
    )
    return UndoneMerge(survivor_id=survivor, restored_id=restored)


# --- REST clients (API keys) ----------------------------------------------------------------


@api_router.get(
    "",
    response_model=LeadPage,
    summary="List the site's leads",
    responses=errors(401, 422),
)
async def api_list_leads(
    rt: Rt,
    client: CurrentApiClient,
    status: StatusQuery = None,
    team: TeamQuery = None,
    validation: ValidationQuery = None,
    source: SourceQuery = None,
    sla: SlaQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> LeadPage:
    """The site's leads, newest first, page by page."""
    found = await service.list_leads(
        uow=rt.uow,
        who=client,
        scope="all",
        filters=_filters(status, team, validation, source, sla),
        cursor=cursor,
        limit=limit,
        now=_now(),
    )
    return _page(found)


@api_router.get(
    "/export.csv",
    response_class=StreamingResponse,
    summary="Export the site's leads as CSV",
    responses={**CSV_ANSWER, **errors(401, 422)},
)
async def api_export_csv(
    rt: Rt,
    client: CurrentApiClient,
    status: StatusQuery = None,
    team: TeamQuery = None,
    validation: ValidationQuery = None,
    source: SourceQuery = None,
    sla: SlaQuery = None,
) -> StreamingResponse:
    """Every lead of the site matching the filters, newest first, streamed."""
    return await _csv(rt.uow, client, _filters(status, team, validation, source, sla))


@api_router.get(
    "/{lead_id}",
    response_model=LeadDetail,
    summary="Get one of the site's leads",
    responses=errors(401, 404, 422),
)
async def api_get_lead(rt: Rt, client: CurrentApiClient, lead_id: UUID) -> LeadDetail:
    """The lead with its touches, source conversations, merges and SLA clock."""
    found = await service.get_lead(uow=rt.uow, who=client, lead_id=lead_id, now=_now())
    return LeadDetail.model_validate(found)


@api_router.post(
    "/{lead_id}/status",
    response_model=LeadDetail,
    summary="Change a lead's status",
    responses=errors(400, 401, 404, 409, 422),
    openapi_extra=body_of(ApiStatusBody),
)
async def api_change_status(
    rt: Rt, client: CurrentApiClient, lead_id: UUID, body: Valid[ApiStatusBody]
) -> LeadDetail:
    """Contact (naming the agent when the lead has no holder), qualify, win, lose, recycle or
    reopen a lead, with a note."""
    changed = await service.change_status(
        uow=rt.uow, who=client, lead_id=lead_id, asked=_asked(body), now=_now()
    )
    return LeadDetail.model_validate(changed)
