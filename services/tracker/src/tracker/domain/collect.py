"""The snippet's batch format (`POST /v1/collect`): one visitor, up to N events, shared context."""

from __future__ import annotations

from typing import Any

from beckon_contracts.envelope import AwareDatetime, Identifier
from beckon_contracts.tracking import (
    Campaign,
    Locale,
    PageContext,
    ShortText,
    TimeZone,
    TrackingContext,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tracker.domain.admission import Candidate, Edge

EVENT_FIELDS = frozenset({"event_id", "type", "occurred_at", "payload", "context"})
OVERRIDABLE_CONTEXT = ("page", "campaign")


class ClientContext(BaseModel):
    """What the browser may tell about itself; server-side fields are ignored if sent."""

    model_config = ConfigDict(extra="ignore")

    page: PageContext | None = None
    campaign: Campaign | None = None
    locale: Locale | None = None
    timezone: TimeZone | None = None
    screen_width: int | None = Field(default=None, ge=0, le=100_000)
    screen_height: int | None = Field(default=None, ge=0, le=100_000)
    library: ShortText | None = None


class CollectBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_key: str | None = Field(default=None, max_length=128)
    visitor_id: Identifier
    session_id: Identifier | None = None
    sent_at: AwareDatetime | None = None
    context: ClientContext = Field(default_factory=ClientContext)
    events: list[Any] = Field(min_length=1)


def batch_candidates(batch: CollectBatch, *, site_id: str, edge: Edge) -> list[Candidate]:
    """Map each raw event of the batch to contract fields; shape problems become rejections."""
    base_fields = batch.context.model_dump(exclude_none=True) | edge.server_context("snippet")
    # Validated once per batch: a model instance is not revalidated per event, which is most
    # of the per-event cost. If it is invalid, each event reports the context's errors.
    base_context: TrackingContext | dict[str, Any]
    try:
        base_context = TrackingContext.model_validate(base_fields)
    except ValidationError:
        base_context = base_fields
    candidates = []
    for index, raw in enumerate(batch.events):
        if not isinstance(raw, dict):
            candidates.append(Candidate(index, raw, None, "each event must be a JSON object"))
            continue
        unexpected = raw.keys() - EVENT_FIELDS
        if unexpected:
            problem = f"unexpected field(s): {', '.join(sorted(map(str, unexpected)))}"
            candidates.append(Candidate(index, raw, None, problem))
            continue
        context: TrackingContext | dict[str, Any] = base_context
        override = raw.get("context")
        if override is not None:
            if not isinstance(override, dict):
                candidates.append(Candidate(index, raw, None, "context must be an object"))
                continue
            context = base_fields | {k: override[k] for k in OVERRIDABLE_CONTEXT if k in override}
        fields = {
            "event_id": raw.get("event_id"),
            "type": raw.get("type"),
            "occurred_at": raw.get("occurred_at"),
            "received_at": edge.received_at,
            "site_id": site_id,
            "visitor_id": batch.visitor_id,
            "session_id": batch.session_id,
            "context": context,
            "payload": raw.get("payload", {}),
        }
        candidates.append(Candidate(index, raw, fields))
    return candidates
