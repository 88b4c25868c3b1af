"""The activity feature's use case: the visitor card, everything an agent should know about a
visitor (for any logged-in agent of the visitor's site; another site's visitor is not found)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from beckon_contracts.ids import uuid7

from chat.activity import domain
from chat.activity.store import ActivityStore
from chat.errors import Invalid, NotFound
from chat.features import VisitorLookup
from chat.refs import AgentRef
from chat.uow import UnitsOfWork

log = logging.getLogger("chat.activity")

DEFAULT_LIMIT = 200  # history events per page
MAX_LIMIT = 500
CONVERSATIONS = 20
MESSAGES_EACH = 200


def live_snapshot(visitors: VisitorLookup, site_id: str, visitor_id: str) -> dict[str, Any] | None:
    """The live list's snapshot of the visitor, when that feature holds one."""
    try:
        found = visitors.visitor(site_id, visitor_id)
    except Exception:  # the card still shows the history without it
        log.exception("live snapshot lookup failed")
        return None
    return dict(found) if isinstance(found, dict) else None


async def visitor_card(
    *,
    uow: UnitsOfWork,
    visitors: VisitorLookup,
    agent: AgentRef,
    visitor_id: str,
    before: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The card: identity, live score, source, history by visit (paged with `before`), past
    conversations with transcripts (never notes), and leads."""
    site_id = agent.site_id
    cursor = None
    if before is not None:
        cursor = domain.decode_cursor(before)
        if cursor is None:
            raise Invalid("invalid", "before: not a cursor this card returned")
    live = live_snapshot(visitors, site_id, visitor_id)
    async with uow.read(site_id) as tx:
        activity = tx.store(ActivityStore)
        # one more than asked: whether an older page exists
        rows = await activity.history(site_id, visitor_id, before=cursor, limit=limit + 1)
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
        visitor = await activity.visitor(site_id, visitor_id)
        conversations = await activity.conversations(
            site_id, visitor_id, limit=CONVERSATIONS, messages_each=MESSAGES_EACH
        )
        if not rows and visitor is None and not conversations and live is None:
            raise NotFound("not_found", "no such visitor on this site")
        identified = await activity.identified(site_id, visitor_id)
        visits_count = await activity.visit_count(site_id, visitor_id) if rows else 0
        leads = await activity.leads(site_id, visitor_id)
    visits = domain.visits_view(rows)
    vouched = domain.verified_identify(identified)
    return {
        "visitor_id": visitor_id,
        "identity": domain.identity(
            visitor_id=visitor_id,
            visitor=visitor,
            conversation_emails=[row["email"] for row in conversations],
            traits=domain.merged_traits(identified),
            live=live,
            verified_user_id=vouched["user_id"] if vouched else None,
            verified_traits=vouched.get("traits") if vouched else None,
        ),
        "live": domain.live_view(live),
        "source": domain.source_view(live, visits, visits_count),
        "now": domain.now_view(rows, live),
        "summary": domain.card_summary(visits),
        "history": {"visits": visits, "next": _next(rows) if more else None},
        "conversations": [domain.conversation_view(row) for row in conversations],
        "leads": [domain.lead_view(row) for row in leads],
    }


async def widget_identified(
    *,
    uow: UnitsOfWork,
    site_id: str,
    visitor_id: str,
    user_id: str,
    email: str | None,
    name: str | None,
) -> bool:
    """The identity the store vouched for when the widget started (its hash checked by the
    caller), recorded for the card unless the visitor's newest identify says so already.
    True when it was recorded."""
    async with uow(site_id) as tx:
        activity = tx.store(ActivityStore)
        identified = await activity.identified(site_id, visitor_id)
        row = domain.widget_identified_row(
            site_id=site_id,
            visitor_id=visitor_id,
            user_id=user_id,
            email=email,
            name=name,
            newest=identified[0] if identified else None,
            event_id=uuid7(),
            occurred_at=datetime.now(UTC),
        )
        if row is None:
            return False
        await activity.insert_rows([row])
    return True


def _next(rows: list[dict[str, Any]]) -> str:
    oldest = rows[-1]
    return domain.encode_cursor(oldest["occurred_at"], oldest["event_id"])
