"""The live list's edges: the console socket's `visitors.subscribe` / `visitors.unsubscribe`
frames, `GET /v1/console/visitors` (the same list over HTTP, filterable) and
`POST /v1/console/visitors/{visitor_id}/invite` (a personal invitation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict

from chat.api.common import read_body
from chat.api.console import agent_of
from chat.errors import Unavailable
from chat.features import console_router
from chat.hub import Connection
from chat.live.domain import Filter, SortKey, select
from chat.live.invite import MAX_MESSAGE_CHARS, send_personal_invitation
from chat.live.reader import LiveVisitors
from chat.refs import AgentRef
from chat.runtime import Runtime
from chat.text import clean_text

router = console_router()


class InviteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str


def live_of(rt: Runtime) -> LiveVisitors:
    live = rt.running(LiveVisitors)
    if live is None:
        raise Unavailable("starting", "the live list is not running yet")
    return live


@router.get("/visitors")
async def visitors(
    request: Request,
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
    rt, agent = await agent_of(request)
    live = live_of(rt)
    wanted = Filter(
        min_cart=min_cart,
        segment=segment,
        page_type=page_type,
        returning=returning,
        invited=invited,
        chatting=chatting,
        text=q,
    )
    rows = select(
        live.registry.rows(agent.site_id),
        wanted,
        sort=sort,
        descending=order == "desc",
        limit=limit,
    )
    return {
        "visitors": rows,
        "count": len(rows),
        "total": live.registry.count(agent.site_id),
        "loaded": live.loaded.is_set(),
    }


@router.post("/visitors/{visitor_id}/invite", status_code=201)
async def invite(request: Request, visitor_id: str) -> dict[str, Any]:
    """A personal invitation from the logged-in agent to a visitor on the site now."""
    rt, agent = await agent_of(request)
    body = await read_body(request, InviteBody)
    message = clean_text(body.message, max_chars=MAX_MESSAGE_CHARS, field="message")
    live = live_of(rt)
    invitation = await send_personal_invitation(
        rt,
        agent=agent,
        visitor_id=visitor_id,
        message=message,
        live=live.visitor(agent.site_id, visitor_id),
    )
    live.note_invited(agent.site_id, visitor_id)
    return {"invitation": invitation}


# --- the console socket's frames ---------------------------------------------------------------


async def on_subscribe(
    rt: Runtime, connection: Connection, agent: AgentRef, frame: dict[str, Any]
) -> None:
    live_of(rt).subscribe(connection)


async def on_unsubscribe(
    rt: Runtime, connection: Connection, agent: AgentRef, frame: dict[str, Any]
) -> None:
    live_of(rt).unsubscribe(connection)
