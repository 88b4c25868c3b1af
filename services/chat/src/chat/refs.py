"""Who a request acts as: an agent of a site (console) or a visitor of a site (widget).

Every query a use case runs is scoped to the site named here, so another tenant's ids are
simply not found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Visitor:
    """A widget's caller: the tracker's visitor id, the browser credential its token was
    issued for (it reaches the conversations started with it) and, when the store vouched
    for them with a valid hash, the user id (it reaches that user's conversations too)."""

    site_id: str
    visitor_id: str
    credential_id: UUID | None = None  # None: reaches no conversation
    user_id: str | None = None  # verified only


@dataclass(frozen=True, slots=True)
class AgentRef:
    site_id: str
    agent_id: str


def now_utc() -> datetime:
    return datetime.now(UTC)
