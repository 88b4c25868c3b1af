"""Capture without I/O: which records capture reads and how they decode, what a capture is,
what it knows of the visitor (`VisitorView`, from `visitors.state`), the routing facts it
builds, and merge records as they are stored (`merges.snapshot`) and read back for undo."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

import orjson
from beckon_contracts.chat_events import (
    ConversationClosed,
    ConversationLeadMarked,
    ConversationStarted,
    ConversationTagged,
    EmailCaptured,
    LeadValidation,
    OfflineMessageLeft,
    chat_event_adapter,
)
from beckon_contracts.leads import CaptureKind
from beckon_contracts.topics import CHAT_EVENTS, TRACKING_EVENTS
from beckon_contracts.tracking import Identified, OrderCompleted, tracking_event_adapter
from beckon_contracts.visitors import VisitorSnapshot
from pydantic import ValidationError

from leads.domain import identity
from leads.domain.identity import Merged, MergeRecord, PersonKey, Source, Trait, TraitName
from leads.domain.routing import LeadFacts, segment_of

# The types capture reads; every other type on these topics is skipped without a word (the
# contracts say consumers ignore types they do not know or need).
CHAT_TYPES = frozenset(
    {
        "conversation.started",
        "conversation.tagged",
        "conversation.lead_marked",
        "conversation.email_captured",
        "offline.message_left",
        "conversation.closed",
    }
)
TRACKING_TYPES = frozenset({"identified", "order_completed"})
USED_TYPES: dict[str, frozenset[str]] = {
    CHAT_EVENTS.name: CHAT_TYPES,
    TRACKING_EVENTS.name: TRACKING_TYPES,
}

CaptureEvent = ConversationLeadMarked | EmailCaptured | OfflineMessageLeft
Decoded = (
    ConversationStarted
    | ConversationTagged
    | ConversationLeadMarked
    | EmailCaptured
    | OfflineMessageLeft
    | ConversationClosed
    | Identified
    | OrderCompleted
)


class NotTheContract(ValueError):
    """A JSON record that is not an event at all (no `type`); dead-lettered as
    schema_invalid."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errors = [{"loc": "type", "msg": message, "type": "missing"}]


def decode(topic: str, value: bytes | None) -> Decoded | None:
    """The event of a record capture reads, or None for a type it does not use. Raises
    `orjson.JSONDecodeError` (not JSON), `NotTheContract` (no type) or pydantic's
    `ValidationError` (a used type that breaks its contract): the consumer dead-letters those."""
    data = orjson.loads(value or b"")
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise NotTheContract("a record must be a JSON object with a string `type`")
    if data["type"] not in USED_TYPES[topic]:
        return None
    if topic == CHAT_EVENTS.name:
        event: Any = chat_event_adapter.validate_python(data)
    else:
        event = tracking_event_adapter.validate_python(data)
    return event  # type: ignore[no-any-return]


def validation_errors(error: ValidationError) -> list[dict[str, Any]]:
    return [dict(detail) for detail in error.errors(include_url=False, include_input=False)]


# --- a capture ---------------------------------------------------------------------------------

CAPTURE_KINDS: dict[str, CaptureKind] = {
    "conversation.lead_marked": "lead_marked",
    "conversation.email_captured": "email_captured",
    "offline.message_left": "offline_message",
}


@dataclass(frozen=True, slots=True)
class Capture:
    """One capture of a person: an agent's lead mark, an e-mail left in a chat, a message
    left offline. Contact-only captures (not lead marks) obey the site's switch."""

    kind: CaptureKind
    event_id: UUID
    site_id: str
    visitor_id: str
    occurred_at: datetime
    validation: LeadValidation
    conversation_id: UUID | None = None
    agent_id: str | None = None
    email: str | None = None
    name: str | None = None
    team: str | None = None
    note: str | None = None

    @property
    def contact_only(self) -> bool:
        return self.kind != "lead_marked"

    @property
    def channel(self) -> str:
        """The lead's `source` column: the way it came in."""
        return "offline" if self.kind == "offline_message" else "chat"


def capture_of(event: CaptureEvent) -> Capture:
    common: dict[str, Any] = {
        "kind": CAPTURE_KINDS[event.type],
        "event_id": event.event_id,
        "site_id": event.site_id,
        "visitor_id": event.visitor_id,
        "occurred_at": event.occurred_at,
    }
    if isinstance(event, ConversationLeadMarked):
        mark = event.payload
        return Capture(
            **common,
            validation=mark.validation,
            conversation_id=mark.conversation_id,
            agent_id=mark.agent_id,
            email=mark.email,
            team=mark.team,
            note=mark.note,
        )
    if isinstance(event, EmailCaptured):
        return Capture(
            **common,
            validation="contact_only",
            conversation_id=event.payload.conversation_id,
            email=event.payload.email,
        )
    offline = event.payload
    return Capture(
        **common,
        validation="contact_only",
        conversation_id=offline.conversation_id,
        email=offline.email,
        name=offline.name,
        team=offline.team,
    )


# --- the visitor at capture --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitorView:
    """What capture keeps of a visitor's latest `visitors.state` (a small part of it)."""

    as_of: datetime
    score: float
    segment: str
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    cart_value: float = 0.0
    currency: str | None = None

    @classmethod
    def of(cls, snapshot: VisitorSnapshot) -> VisitorView:
        state = snapshot.payload
        return cls(
            as_of=snapshot.occurred_at,
            score=state.score,
            segment=state.segment,
            source=state.source,
            medium=state.medium,
            campaign=state.campaign,
            cart_value=state.cart_value,
            currency=state.currency,
        )


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """What capture remembers of a conversation (conversation.started, .tagged)."""

    rule_id: str | None = None
    invitation_id: UUID | None = None
    tags: tuple[str, ...] = ()
    team: str | None = None


def _short(value: str | None, limit: int = 200) -> str | None:
    if value is None:
        return None
    value = value.strip()[:limit]
    return value or None


def facts_of(
    capture: Capture,
    visitor: VisitorView | None,
    conversation: ConversationInfo | None,
    *,
    company: str | None = None,
) -> LeadFacts:
    """What routing may look at for this capture: its validation, the conversation's tags
    (b2b / b2c decide the segment), the visitor's cart, campaign and score at capture."""
    tags = list(conversation.tags) if conversation else []
    facts: dict[str, Any] = {
        "validation": capture.validation,
        "segment": segment_of({"company": company} if company else {}, tags),
        "tags": tags,
    }
    if visitor is not None:
        if visitor.cart_value > 0 and visitor.currency:
            facts["cart_value"] = Decimal(str(visitor.cart_value)).quantize(Decimal("0.01"))
            facts["currency"] = visitor.currency
        facts.update(
            source=_short(visitor.source),
            medium=_short(visitor.medium),
            campaign=_short(visitor.campaign),
            score=visitor.score,
            score_segment=_short(visitor.segment),
        )
    try:
        return LeadFacts.model_validate(facts)
    except ValidationError:
        # a visitor's odd campaign or currency must not lose the lead: route on the chat's
        # own facts then
        return LeadFacts.model_validate({key: facts[key] for key in ("validation", "segment")})


# --- traits as stored --------------------------------------------------------------------------

TraitSources = dict[str, dict[str, str]]  # {"name": {"source": "visitor", "at": iso}}


def traits_of(
    values: Mapping[TraitName, str | None], sources: Mapping[str, Any], *, default_at: datetime
) -> dict[TraitName, Trait]:
    """A lead's traits from its columns (`values`) and the `traits` column (who gave each
    and when; a value without a record counts as the visitor's, given at `default_at`)."""
    traits: dict[TraitName, Trait] = {}
    for name in identity.TRAITS:
        value = values.get(name)
        if not value:
            continue
        given = sources.get(name) or {}
        source: Source = "agent" if given.get("source") == "agent" else "visitor"
        at = datetime.fromisoformat(given["at"]) if given.get("at") else default_at
        traits[name] = Trait(value, source, at)
    return traits


def sources_of(traits: Mapping[TraitName, Trait]) -> TraitSources:
    return {
        name: {"source": trait.source, "at": trait.at.isoformat()} for name, trait in traits.items()
    }


def keep_survivor_contacts(merged: Merged, survivor_before: identity.LeadIdentity) -> Merged:
    """A merge keeps the survivor's own e-mail and phone when it has them: the absorbed
    lead's row keeps its own (a capture naming them follows `merged_into` to the survivor),
    while a survivor taking the absorbed e-mail would leave its old one on no row at all, and
    the next capture with it would make a second lead. Traits it lacked are filled as usual."""
    kept = [
        name
        for name in ("email", "phone")
        if name in merged.record.traits_after and survivor_before.traits.get(name) is not None
    ]
    if not kept:
        return merged
    traits = dict(merged.survivor.traits)
    before = dict(merged.record.traits_before)
    after = dict(merged.record.traits_after)
    for name in kept:
        traits[name] = survivor_before.traits[name]  # type: ignore[index]
        before.pop(name, None)  # type: ignore[call-overload]
        after.pop(name, None)  # type: ignore[call-overload]
    return replace(
        merged,
        survivor=replace(merged.survivor, traits=traits),
        record=replace(merged.record, traits_before=before, traits_after=after),
    )


# --- merge records as stored -------------------------------------------------------------------


def _keys_json(keys: frozenset[PersonKey]) -> list[list[str]]:
    return [[key.kind, key.value] for key in sorted(keys)]


def _keys_of(data: list[list[str]]) -> frozenset[PersonKey]:
    return frozenset(PersonKey(kind, value) for kind, value in data)  # type: ignore[arg-type]


def _trait_json(trait: Trait | None) -> dict[str, str] | None:
    if trait is None:
        return None
    return {"value": trait.value, "source": trait.source, "at": trait.at.isoformat()}


def _trait_of(data: Mapping[str, str] | None) -> Trait | None:
    if data is None:
        return None
    return Trait(data["value"], data["source"], datetime.fromisoformat(data["at"]))  # type: ignore[arg-type]


def record_json(record: MergeRecord) -> dict[str, Any]:
    """The merge record as `merges.snapshot` keeps it (`record_of` reads it back)."""
    return {
        "site_id": record.site_id,
        "survivor_id": record.survivor_id,
        "absorbed_id": record.absorbed_id,
        "merged_at": record.merged_at.isoformat(),
        "merged_by": record.merged_by,
        "matched_on": _keys_json(record.matched_on),
        "absorbed_keys": _keys_json(record.absorbed_keys),
        "keys_moved": _keys_json(record.keys_moved),
        "traits_before": {name: _trait_json(t) for name, t in record.traits_before.items()},
        "traits_after": {name: _trait_json(t) for name, t in record.traits_after.items()},
        "validation_before": record.validation_before,
        "validation_after": record.validation_after,
    }


def record_of(data: Mapping[str, Any]) -> MergeRecord:
    after = {name: _trait_of(t) for name, t in data["traits_after"].items()}
    return MergeRecord(
        site_id=data["site_id"],
        survivor_id=data["survivor_id"],
        absorbed_id=data["absorbed_id"],
        merged_at=datetime.fromisoformat(data["merged_at"]),
        merged_by=data["merged_by"],
        matched_on=_keys_of(data["matched_on"]),
        absorbed_keys=_keys_of(data["absorbed_keys"]),
        keys_moved=_keys_of(data["keys_moved"]),
        traits_before={name: _trait_of(t) for name, t in data["traits_before"].items()},
        traits_after={name: t for name, t in after.items() if t is not None},
        validation_before=data["validation_before"],
        validation_after=data["validation_after"],
    )


MergeReason = Literal["email", "phone", "visitor", "admin"]


def merge_reason(matched_on: frozenset[PersonKey], *, by: str | None) -> MergeReason:
    """The `merges.reason`: an admin's, else the strongest key the capture matched on."""
    if by is not None:
        return "admin"
    kinds = {key.kind for key in matched_on}
    for kind in ("email", "phone"):
        if kind in kinds:
            return kind  # type: ignore[return-value]
    return "visitor"
