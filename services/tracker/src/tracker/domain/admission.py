"""Turning candidate events into validated contract events, or precise rejections.

The snippet's batches and Segment's calls both arrive here as plain dicts after their own
mapping; this module owns the shared steps: server-side context, clock-skew correction,
per-event size limits and validation against the contracts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from beckon_contracts.dead_letter import FieldError, ReasonCode
from beckon_contracts.ids import uuid7
from beckon_contracts.tracking import (
    TRACKING_EVENT_TYPES,
    ReportedBy,
    TrackingEvent,
    tracking_event_adapter,
)
from pydantic import ValidationError

from tracker.domain.enrichment import (
    corrected_time,
    describe_user_agent,
    is_bot,
    truncate_ip,
)

# Deeper than any real event (a Segment product list is 5 levels); the JSON encoders stop at
# about 255 levels, so a deeper event could neither be stored nor even dead-lettered whole.
MAX_NESTING = 32


@dataclass(frozen=True, slots=True)
class Edge:
    """What the edge knows about a request, independent of its body."""

    received_at: datetime
    ip: str | None
    user_agent: str | None
    # Who is calling, from how the request was authenticated (the route decides, never the
    # body): only a Segment call with the secret write key and no page Origin is the server.
    reported_by: ReportedBy = "browser"

    def server_context(self, source: str) -> dict[str, Any]:
        return {
            "ip": truncate_ip(self.ip),
            "user_agent": self.user_agent[:1024] if self.user_agent else None,
            "user_agent_info": describe_user_agent(self.user_agent),
            "is_bot": is_bot(self.user_agent),
            "source": source,
            "reported_by": self.reported_by,
        }


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int | None
    event_id: str | None
    reason: ReasonCode
    detail: str
    errors: tuple[FieldError, ...]
    raw: Any

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_id": self.event_id,
            "reason": self.reason,
            "detail": self.detail,
            "errors": [error.model_dump() for error in self.errors],
        }


@dataclass(slots=True)
class Admission:
    accepted: list[TrackingEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One event as mapped from the wire, before validation."""

    index: int
    raw: Any
    fields: dict[str, Any] | None  # None: the raw item could not even be mapped
    problem: str | None = None
    offset: timedelta | None = None  # this item's own clock offset, when it differs per item


def field_errors(exc: ValidationError, prefix: Sequence[str | int] = ()) -> tuple[FieldError, ...]:
    """Pydantic's errors as dotted paths a store developer can act on."""
    errors = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        if loc and loc[0] in TRACKING_EVENT_TYPES:  # the union's tag adds nothing for the reader
            loc = loc[1:]
        if error["type"] == "union_tag_invalid":
            loc = ["type"]
        path = ".".join(str(part) for part in (*prefix, *loc)) or "(body)"
        errors.append(FieldError(loc=path, msg=error["msg"], type=error["type"]))
    return tuple(errors[:100])


def nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects/arrays in `value` nest more than `limit` levels (no recursion).

    Runs on every event at the tracker's peak rate: only containers go on the stack (an
    event is mostly scalars), and the type test is a tuple, not a union."""
    containers = (dict, list)
    if not isinstance(value, containers):
        return False
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, containers):
                stack.append((child, depth + 1))
    return False


def raw_json(value: Any) -> bytes:
    """A rejected item as JSON for its dead letter; past MAX_NESTING levels the rest is
    replaced by a marker (whole, it could not be encoded at all)."""
    if not nested_deeper_than(value, MAX_NESTING):
        return orjson.dumps(value)
    return orjson.dumps(_pruned(value, MAX_NESTING))


def _pruned(value: Any, levels: int) -> Any:
    if not isinstance(value, dict | list):
        return value
    if levels == 0:
        return f"(nested deeper than {MAX_NESTING} levels: cut)"
    if isinstance(value, dict):
        return {key: _pruned(item, levels - 1) for key, item in value.items()}
    return [_pruned(item, levels - 1) for item in value]


def _whole_item_rejection(
    candidate: Candidate, event_id: str | None, loc: str, reason: ReasonCode, message: str
) -> Rejection:
    error = FieldError(loc=loc, msg=message, type=reason)
    return Rejection(candidate.index, event_id, reason, message, (error,), candidate.raw)


def admit(
    candidates: Sequence[Candidate],
    *,
    offset: timedelta,
    received_at: datetime,
    max_event_bytes: int,
    check_sizes: bool,
    loc_prefix: str,
) -> Admission:
    """Validate each candidate against the contracts; never raises for bad input."""
    admission = Admission()
    for candidate in candidates:
        prefix = (loc_prefix, candidate.index)
        loc = f"{loc_prefix}.{candidate.index}"
        raw_id = candidate.raw.get("event_id") if isinstance(candidate.raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        if candidate.fields is None:
            problem = candidate.problem or "not an event object"
            admission.rejected.append(
                _whole_item_rejection(candidate, event_id, loc, "schema_invalid", problem)
            )
            continue
        if nested_deeper_than(candidate.raw, MAX_NESTING):
            problem = f"event nests objects or arrays deeper than {MAX_NESTING} levels"
            admission.rejected.append(
                _whole_item_rejection(candidate, event_id, loc, "schema_invalid", problem)
            )
            continue
        if check_sizes and len(orjson.dumps(candidate.raw)) > max_event_bytes:
            problem = f"event is larger than {max_event_bytes} bytes"
            admission.rejected.append(
                _whole_item_rejection(candidate, event_id, loc, "too_large", problem)
            )
            continue
        fields = candidate.fields
        if fields.get("event_id") is None:
            fields["event_id"] = uuid7()
        if fields.get("occurred_at") is None:
            fields["occurred_at"] = received_at
        try:
            event = tracking_event_adapter.validate_python(fields)
        except ValidationError as exc:
            errors = field_errors(exc, prefix)
            detail = "; ".join(f"{error.loc}: {error.msg}" for error in errors[:5])
            admission.rejected.append(
                Rejection(
                    candidate.index, event_id, "schema_invalid", detail, errors, candidate.raw
                )
            )
            continue
        own_offset = offset if candidate.offset is None else candidate.offset
        occurred_at = corrected_time(event.occurred_at, own_offset, received_at)
        if occurred_at != event.occurred_at:
            event = event.model_copy(update={"occurred_at": occurred_at})
        admission.accepted.append(event)
    return admission
