"""`GET /v1/console/visitors/{visitor_id}/card`: everything an agent should know about a
visitor, for any logged-in agent of the visitor's site (another site's visitor is a 404)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from beckon_contracts.envelope import IDENTIFIER_PATTERN
from fastapi import Path, Query, Request

from chat.activity import domain, store
from chat.api.console import agent_of
from chat.errors import Invalid, NotFound
from chat.features import console_router
from chat.runtime import Runtime

log = logging.getLogger("chat.activity")
router = console_router()

DEFAULT_LIMIT = 200
MAX_LIMIT = 500
CONVERSATIONS = 20
MESSAGES_EACH = 200


async def live_snapshot(rt: Runtime, site_id: str, visitor_id: str) -> dict[str, Any] | None:
    """The live list's snapshot of the visitor, when that feature holds one."""
    try:
        found = rt.visitors.visitor(site_id, visitor_id)
    except Exception:  # the card still shows the history without it
        log.exception("live snapshot lookup failed")
        return None
    return dict(found) if isinstance(found, dict) else None


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _conversation_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["conversation_id"]),
        "status": row["status"],
        "team": row["team"],
        "agent": {"id": row["agent_id"], "name": row["agent_name"]} if row["agent_id"] else None,
        "email": row["email"],
        "tags": list(row["tags"] or []),
        "rule_id": row["rule_id"],
        "created_at": _iso(row["created_at"]),
        "closed_at": _iso(row["closed_at"]),
        "messages": [
            {
                "seq": message["seq"],
                "author": message["author"],
                "agent_name": message["agent_name"] if message["author"] == "agent" else None,
                "text": message["text"],
                "created_at": _iso(message["created_at"]),
            }
            for message in row["messages"]
        ],
    }


def _lead_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(row["mark_id"]),
        "conversation_id": str(row["conversation_id"]),
        "agent": {"id": row["agent_id"], "name": row["agent_name"]} if row["agent_id"] else None,
        "validation": row["validation"],
        "note": row["note"],
        "created_at": _iso(row["created_at"]),
    }


def _live_view(live: dict[str, Any] | None) -> dict[str, Any] | None:
    if live is None:
        return None
    return {
        "score": live.get("score"),
        "segment": live.get("segment"),
        "score_breakdown": live.get("score_breakdown") or {},
        "url": live.get("url"),
        "title": live.get("title"),
        "page_type": live.get("page_type"),
        "time_on_site_s": live.get("time_on_site_s"),
        "cart_value": live.get("cart_value"),
        "cart_items": live.get("cart_items"),
        "currency": live.get("currency"),
        "device": live.get("device"),
        "browser": live.get("browser"),
        "os": live.get("os"),
        "invited": live.get("invited"),
        "chatting": live.get("chatting"),
        "last_seen_at": live.get("last_seen_at"),
    }


@router.get("/visitors/{visitor_id}/card")
async def visitor_card(
    request: Request,
    visitor_id: Annotated[str, Path(pattern=IDENTIFIER_PATTERN)],
    before: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The visitor card: identity, live score, source, history by visit (paged with
    `?before=`), past conversations with transcripts (never notes), and leads."""
    rt, agent = await agent_of(request)
    site_id = agent.site_id
    cursor = None
    if before is not None:
        cursor = domain.decode_cursor(before)
        if cursor is None:
            raise Invalid("invalid", "before: not a cursor this card returned")
    live = await live_snapshot(rt, site_id, visitor_id)
    async with rt.service.pool.acquire() as conn, conn.transaction(readonly=True):
        # one more than asked: whether an older page exists
        rows = await store.history(conn, site_id, visitor_id, before=cursor, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        if cursor is not None:  # a later page only carries history
            return {
                "visitor_id": visitor_id,
                "history": {
                    "visits": domain.visits_view(rows),
                    "next": _next(rows) if more else None,
                },
            }
        visitor = await store.visitor(conn, site_id, visitor_id)
        conversations = await store.conversations(
            conn, site_id, visitor_id, limit=CONVERSATIONS, messages_each=MESSAGES_EACH
        )
        if not rows and visitor is None and not conversations and live is None:
            raise NotFound("not_found", "no such visitor on this site")
        identified = await store.identified(conn, site_id, visitor_id)
        visits_count = await store.visit_count(conn, site_id, visitor_id) if rows else 0
        leads = await store.leads(conn, site_id, visitor_id)
    visits = domain.visits_view(rows)
    now = domain.latest_state(rows)
    if live is not None:
        now = {
            "url": live.get("url") or now["url"],
            "title": live.get("title") or now["title"],
            "at": live.get("last_seen_at") or now["at"],
            "cart": now["cart"]
            if live.get("cart_value") is None
            else {
                "value": live.get("cart_value"),
                "currency": live.get("currency"),
                "items": (now["cart"] or {}).get("items", []),
                "quantity": live.get("cart_items"),
            },
        }
    return {
        "visitor_id": visitor_id,
        "identity": domain.identity(
            visitor_id=visitor_id,
            visitor=visitor,
            conversation_emails=[row["email"] for row in conversations],
            traits=domain.merged_traits(identified),
            live=live,
        ),
        "live": _live_view(live),
        "source": domain.source_view(live, visits, visits_count),
        "now": now,
        "summary": domain.card_summary(visits),
        "history": {"visits": visits, "next": _next(rows) if more else None},
        "conversations": [_conversation_view(row) for row in conversations],
        "leads": [_lead_view(row) for row in leads],
    }


def _next(rows: list[dict[str, Any]]) -> str:
    oldest = rows[-1]
    return domain.encode_cursor(oldest["occurred_at"], oldest["event_id"])
