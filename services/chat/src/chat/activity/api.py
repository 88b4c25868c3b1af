"""`GET /v1/console/visitors/{visitor_id}/card`: everything an agent should know about a
visitor, for any logged-in agent of the visitor's site (another site's visitor is a 404)."""

from __future__ import annotations

from typing import Annotated, Any

from beckon_contracts.envelope import IDENTIFIER_PATTERN
from fastapi import Path, Query

from chat.activity import service
from chat.api.deps import CurrentAgent, Rt
from chat.features import console_router

router = console_router()


@router.get("/visitors/{visitor_id}/card")
async def visitor_card(
    rt: Rt,
    agent: CurrentAgent,
    visitor_id: Annotated[str, Path(pattern=IDENTIFIER_PATTERN)],
    before: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = service.DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The visitor card: identity, live score, source, history by visit (paged with
    `?before=`), past conversations with transcripts (never notes), and leads."""
    return await service.visitor_card(
        uow=rt.uow,
        visitors=rt.visitors,
        agent=agent,
        visitor_id=visitor_id,
        before=before,
        limit=limit,
    )
