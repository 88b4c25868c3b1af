"""The live list's edges: the console socket's `visitors.subscribe` / `visitors.unsubscribe`
frames, `GET /v1/console/visitors` (the same list over HTTP, filterable) and
`POST /v1/console/visitors/{visitor_id}/invite` (a personal invitation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict

from chat.api.deps import CurrentAgent, Rt, Valid
from chat.features import console_router
from chat.hub import Connection
from chat.live import service
from chat.live.domain import Filter, SortKey
from chat.live.reader import LiveVisitors
from chat.refs import AgentRef
from chat.runtime import Runtime

router = console_router()


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str


@router.get("/visitors")
async def visitors(
    rt: Rt,
    agent: CurrentAgent,
    min_cart: Annotated[float | None, Query(ge=0)] = None,
    segment: Annotated[str | None, Query(max_length=40)] = None,
    page_type: Annotated[str | None, Query(max_length=40)] = None,
    returning: bool | None = None,
    invited: bool | None = None,
    chatting: bool | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sort: SortKey = "score",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "desc",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
) -> dict[str, Any]:
    """Every visitor on the agent's site now (compact rows, as the socket's snapshot)."""
    wanted = Filter(
        min_cart=min_cart,
        segment=segment,
        page_type=page_type,
        returning=returning,
        invited=invited,
        chatting=chatting,
        text=q,
    )
    return service.visitors(
        live=rt.running(LiveVisitors),
        agent=agent,
        wanted=wanted,
        sort=sort,
        descending=order == "desc",
        limit=limit,
    )


@router.post("/visitors/{visitor_id}/invite", status_code=201)
async def invite(
    rt: Rt, agent: CurrentAgent, visitor_id: str, body: Valid[InviteBody]
) -> dict[str, Any]:
    """A personal invitation from the logged-in agent to a visitor on the site now."""
    invitation = await service.invite(
        uow=rt.uow,
        live=rt.running(LiveVisitors),
        signal=rt.bus.signal,
        agent=agent,
        visitor_id=visitor_id,
        message=body.message,
    )
    return {"invitation": invitation}


# --- the console socket's frames ---------------------------------------------------------------


async def on_subscribe(
    rt: Runtime, connection: Connection, agent: AgentRef, frame: dict[str, Any]
) -> None:
    service.running(rt.running(LiveVisitors)).subscribe(connection)


async def on_unsubscribe(
    rt: Runtime, connection: Connection, agent: AgentRef, frame: dict[str, Any]
) -> None:
    service.running(rt.running(LiveVisitors)).unsubscribe(connection)
