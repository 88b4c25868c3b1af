"""Who a request acts as: an agent of a site (console) or a visitor of a site (widget).

Every query a use case runs is scoped to the site named here, so another tenant's ids are
simply not found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class Visitor:
    site_id: str
    visitor_id: str


@dataclass(frozen=True, slots=True)
class AgentRef:
    site_id: str
    agent_id: str


def now_utc() -> datetime:
    return datetime.now(UTC)
