"""Lead facts on `leads.events`, written by the leads service through its outbox.

A lead is a person a chat (or a form left offline) made worth calling. Every change of one is a
past-tense event here: created, merged (another capture of the same person, or other open leads
of theirs, folded in) and unmerged (an admin undid a merge), routed to a team, assigned to an
agent, contacted, its status changed, its first-contact SLA warned about, breached, escalated,
reassigned, won or lost. The notifier and the CRM webhooks read them.

Records are keyed by the lead id (`lead_key`), so one lead's events stay in order on one
partition. Each payload carries `lead`, the lead as it is after the change, and `seq`, which
counts that lead's events (1, 2, 3...): a receiver that gets them out of order (webhooks do not
keep order) keeps the state of the highest `seq` it has seen and dedupes on `event_id`.
Consumers ignore types they don't know.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from beckon_contracts.chat_events import EmailText, LeadValidation
from beckon_contracts.envelope import AwareDatetime, Envelope, Identifier
from beckon_contracts.invitations import RuleId
from beckon_contracts.money import Amount, Currency
from beckon_contracts.visitors import Segment

LeadStatus = Literal["new", "assigned", "contacted", "qualified", "won", "lost", "recycled"]
LEAD_STATUSES: tuple[LeadStatus, ...] = (
    "new",
    "assigned",
    "contacted",
    "qualified",
    "won",
    "lost",
    "recycled",
)
CLOSED_STATUSES: frozenset[LeadStatus] = frozenset({"won", "lost"})
LEAD_VALIDATIONS: tuple[LeadValidation, ...] = (
    "contact_only",
    "interested",
    "qualified",
    "ready_to_buy",
)
CaptureKind = Literal["lead_marked", "email_captured", "offline_message"]
# A reason as a code (the console brings the words): no_response, bought_elsewhere, price, ...
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# E.164: "+", country code, subscriber number; 15 digits at most
E164 = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120)]
Note = Annotated[str, StringConstraints(max_length=1000)]
Text = Annotated[str, StringConstraints(max_length=200)]
Score = Annotated[float, Field(allow_inf_nan=False)]
SlaKind = Literal["first_contact"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Part):
    """How to reach the person: e-mail normalised, phone in E.164 (the dedup keys)."""

    email: EmailText | None = None
    phone: E164 | None = None
    name: Name | None = None
    company: Text | None = None


class LeadState(_Part):
    """The lead as it is after the change the event reports."""

    status: LeadStatus
    validation: LeadValidation = Field(description="How far an agent validated the lead")
    team: Identifier | None = Field(default=None, description="None until it is routed")
    agent_id: Identifier | None = Field(default=None, description="The assignee; None: nobody")
    contact: Contact = Field(default_factory=Contact)


class Attribution(_Part):
    """What brought the visitor and how warm they were when the lead was captured."""

    rule_id: RuleId | None = Field(default=None, description="The engagement rule that invited")
    invitation_id: UUID | None = None
    source: Text | None = None
    medium: Text | None = None
    campaign: Text | None = None
    score: Score | None = Field(default=None, description="Lead score at capture")
    segment: Segment | None = Field(default=None, description="e.g. cold, warm, hot at capture")


class Touch(_Part):
    """One capture of the person: a lead mark, an e-mail left in a chat, an offline message."""

    kind: CaptureKind
    source_event_id: UUID = Field(description="The chat.events record it came from")
    conversation_id: UUID | None = None
    agent_id: Identifier | None = Field(default=None, description="Who marked it (lead_marked)")
    validation: LeadValidation
    at: AwareDatetime


class _Change(_Part):
    seq: int = Field(ge=1, description="1, 2, 3... per lead; the highest seen is the latest")
    lead: LeadState


class LeadCreatedPayload(_Change):
    touch: Touch = Field(description="The capture that created it")
    attribution: Attribution = Field(default_factory=Attribution)

    @model_validator(mode="after")
    def _is_new(self) -> Self:
        if self.lead.status != "new":
            raise ValueError(f"lead.status must be 'new' on lead.created, not {self.lead.status!r}")
        return self


class LeadMergedPayload(_Change):
    """Another capture of the person, and/or other open leads of theirs, folded into this one."""

    merge_id: UUID = Field(description="An admin undoes the merge by this id (lead.unmerged)")
    merged_lead_ids: list[UUID] = Field(
        default_factory=list,
        max_length=100,
        description="Leads folded in and closed; empty when only a new capture was added",
    )
    touches: list[Touch] = Field(default_factory=list, max_length=100)
    matched_on: list[Literal["email", "phone", "visitor"]] = Field(min_length=1, max_length=3)
    by_agent_id: Identifier | None = Field(default=None, description="None: automatic dedup")

    @model_validator(mode="after")
    def _merges_something(self) -> Self:
        if not self.merged_lead_ids and not self.touches:
            raise ValueError("merged_lead_ids or touches must name what was merged")
        return self


class LeadUnmergedPayload(_Change):
    merge_id: UUID
    restored_lead_ids: list[UUID] = Field(min_length=1, max_length=100)
    by_agent_id: Identifier


class LeadRoutedPayload(_Change):
    team: Identifier
    routing_rule_id: RuleId | None = Field(description="The rule that matched; None: default")


class LeadAssignedPayload(_Change):
    team: Identifier
    agent_id: Identifier
    how: Literal["auto", "dequeue", "claim", "manual"] = Field(
        description="auto: on arrival; dequeue: from the team's queue; claim: the agent took "
        "it; manual: a team lead chose the agent"
    )
    by_agent_id: Identifier | None = Field(default=None, description="Who, for claim/manual")
    first_contact_due_at: AwareDatetime | None = Field(
        default=None, description="The first-contact deadline; None when no SLA applies"
    )


class LeadContactedPayload(_Change):
    agent_id: Identifier
    channel: Literal["phone", "email", "chat", "sms", "meeting", "other"]
    first: bool = Field(description="The first contact: the lead's SLA timers stop here")
    within_sla: bool | None = Field(default=None, description="None when no SLA applied")
    note: Note | None = None


class LeadStatusChangedPayload(_Change):
    """Any other change of status; won and lost have their own events (with value, reason)."""

    from_status: LeadStatus
    to_status: LeadStatus
    by_agent_id: Identifier | None = Field(default=None, description="None: the service did it")
    note: Note | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.to_status in CLOSED_STATUSES:
            raise ValueError(f"to_status {self.to_status!r} is reported by lead.{self.to_status}")
        if self.to_status == self.from_status:
            raise ValueError("to_status must differ from from_status")
        if self.lead.status != self.to_status:
            raise ValueError("lead.status must equal to_status")
        return self


class _SlaPayload(_Change):
    sla: SlaKind = "first_contact"
    timer_id: UUID = Field(description="The durable timer that fired (each fires once)")
    team: Identifier
    agent_id: Identifier | None = Field(description="The assignee; None while queued")
    due_at: AwareDatetime = Field(description="The deadline, in business hours")


class LeadSlaWarningPayload(_SlaPayload):
    elapsed: float = Field(
        gt=0, lt=1, allow_inf_nan=False, description="Share of the allowed time used: 0.5, 0.8"
    )


class LeadSlaBreachedPayload(_SlaPayload):
    pass


class LeadEscalatedPayload(_Change):
    team: Identifier
    reason: Literal["sla_breached", "manual"]
    escalated_to: list[Identifier] = Field(
        default_factory=list, max_length=50, description="The team leads told"
    )
    agent_id: Identifier | None = Field(default=None, description="The assignee at the time")
    due_at: AwareDatetime | None = Field(default=None, description="The breached deadline")
    by_agent_id: Identifier | None = Field(default=None, description="Who, when manual")


class LeadReassignedPayload(_Change):
    team: Identifier
    from_agent_id: Identifier | None
    to_agent_id: Identifier | None = Field(description="None: back to the team's queue")
    reason: Literal["sla_breached", "manual", "agent_unavailable"]
    by_agent_id: Identifier | None = Field(default=None, description="Who, when manual")
    first_contact_due_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _moves(self) -> Self:
        if self.from_agent_id is not None and self.from_agent_id == self.to_agent_id:
            raise ValueError("to_agent_id must differ from from_agent_id")
        return self


class LeadWonPayload(_Change):
    how: Literal["order", "agent"] = Field(
        description="order: the lead's visitor completed an order; agent: marked won by hand"
    )
    order_id: Identifier | None = None
    order_event_id: UUID | None = Field(default=None, description="The tracking.events record")
    value: Amount | None = None
    currency: Currency | None = None
    agent_id: Identifier | None = Field(default=None, description="Who marked it, or the owner")
    note: Note | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.lead.status != "won":
            raise ValueError(f"lead.status must be 'won' on lead.won, not {self.lead.status!r}")
        if (self.value is None) != (self.currency is None):
            raise ValueError("value and currency go together: give both or neither")
        if self.how == "order" and (self.value is None or self.order_event_id is None):
            raise ValueError("a lead won by an order needs value, currency and order_event_id")
        return self


class LeadLostPayload(_Change):
    reason: Code = Field(description="A code, e.g. no_response, bought_elsewhere, price")
    note: Note | None = None
    by_agent_id: Identifier | None = Field(default=None, description="None: the service did it")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.lead.status != "lost":
            raise ValueError(f"lead.status must be 'lost' on lead.lost, not {self.lead.status!r}")
        return self


class _LeadEvent(Envelope):
    lead_id: UUID = Field(description="The record key: one lead's events stay in order")
    visitor_id: Identifier | None = Field(default=None, description="The lead's visitor")


class LeadCreated(_LeadEvent):
    type: Literal["lead.created"] = "lead.created"
    payload: LeadCreatedPayload


class LeadMerged(_LeadEvent):
    type: Literal["lead.merged"] = "lead.merged"
    payload: LeadMergedPayload


class LeadUnmerged(_LeadEvent):
    type: Literal["lead.unmerged"] = "lead.unmerged"
    payload: LeadUnmergedPayload


class LeadRouted(_LeadEvent):
    type: Literal["lead.routed"] = "lead.routed"
    payload: LeadRoutedPayload


class LeadAssigned(_LeadEvent):
    type: Literal["lead.assigned"] = "lead.assigned"
    payload: LeadAssignedPayload


class LeadContacted(_LeadEvent):
    type: Literal["lead.contacted"] = "lead.contacted"
    payload: LeadContactedPayload


class LeadStatusChanged(_LeadEvent):
    type: Literal["lead.status_changed"] = "lead.status_changed"
    payload: LeadStatusChangedPayload


class LeadSlaWarning(_LeadEvent):
    type: Literal["lead.sla_warning"] = "lead.sla_warning"
    payload: LeadSlaWarningPayload


class LeadSlaBreached(_LeadEvent):
    type: Literal["lead.sla_breached"] = "lead.sla_breached"
    payload: LeadSlaBreachedPayload


class LeadEscalated(_LeadEvent):
    type: Literal["lead.escalated"] = "lead.escalated"
    payload: LeadEscalatedPayload


class LeadReassigned(_LeadEvent):
    type: Literal["lead.reassigned"] = "lead.reassigned"
    payload: LeadReassignedPayload


class LeadWon(_LeadEvent):
    type: Literal["lead.won"] = "lead.won"
    payload: LeadWonPayload


class LeadLost(_LeadEvent):
    type: Literal["lead.lost"] = "lead.lost"
    payload: LeadLostPayload


LeadEvent = Annotated[
    LeadCreated
    | LeadMerged
    | LeadUnmerged
    | LeadRouted
    | LeadAssigned
    | LeadContacted
    | LeadStatusChanged
    | LeadSlaWarning
    | LeadSlaBreached
    | LeadEscalated
    | LeadReassigned
    | LeadWon
    | LeadLost,
    Field(discriminator="type"),
]
lead_event_adapter: TypeAdapter[LeadEvent] = TypeAdapter(LeadEvent)
LEAD_EVENT_MODELS: dict[str, type[_LeadEvent]] = {
    model.model_fields["type"].default: model
    for model in (
        LeadCreated,
        LeadMerged,
        LeadUnmerged,
        LeadRouted,
        LeadAssigned,
        LeadContacted,
        LeadStatusChanged,
        LeadSlaWarning,
        LeadSlaBreached,
        LeadEscalated,
        LeadReassigned,
        LeadWon,
        LeadLost,
    )
}
LEAD_EVENT_TYPES: tuple[str, ...] = tuple(LEAD_EVENT_MODELS)


class WebhookDisabledPayload(_Part):
    """A CRM webhook endpoint the leads service disabled by itself (`gone`: it answered 410;
    `failing`: days without a success). Its pending deliveries were cancelled; an admin can
    enable it again and replay them from the console."""

    endpoint_id: UUID
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    reason: Literal["gone", "failing"]
    failing_since: AwareDatetime | None = None
    last_error: Annotated[str, StringConstraints(max_length=500)] | None = None


class WebhookEndpointDisabled(Envelope):
    """Not a lead's fact, so not a `LeadEvent`: it shares `leads.events` (keyed by the
    endpoint) so that the notifier can tell the site's admins; other consumers skip it."""

    type: Literal["webhook.disabled"] = "webhook.disabled"
    payload: WebhookDisabledPayload


# Every record `leads.events` carries (the exported JSON Schema describes these)
LeadsTopicRecord = Annotated[
    LeadCreated
    | LeadMerged
    | LeadUnmerged
    | LeadRouted
    | LeadAssigned
    | LeadContacted
    | LeadStatusChanged
    | LeadSlaWarning
    | LeadSlaBreached
    | LeadEscalated
    | LeadReassigned
    | LeadWon
    | LeadLost
    | WebhookEndpointDisabled,
    Field(discriminator="type"),
]


def webhook_disabled_key(endpoint_id: UUID) -> bytes:
    return str(endpoint_id).encode()


def lead_key(lead_id: UUID) -> bytes:
    """The record key: all of one lead's events on one partition, in order."""
    return str(lead_id).encode()


_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


def parse_lead_event(data: bytes | str) -> LeadEvent:
    """One `leads.events` record, or a `ValidationError` titled `leads.events record` whose
    errors locate what it refuses: `type` when the type is missing or unknown, else the event
    type and field (`lead.won`, `payload`, `currency`). `beckon_messaging.dead_letters` turns
    it into a dead letter (`schema_invalid` with those fields, or `malformed_json`)."""
    try:
        return lead_event_adapter.validate_json(data)
    except ValidationError as exc:
        details: list[InitErrorDetails] = []
        for error in exc.errors(include_url=False):
            located = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
            if "ctx" in error:
                located["ctx"] = error["ctx"]
            if error["type"] in _TAG_ERRORS and not error["loc"]:
                located["loc"] = ("type",)  # pydantic locates a bad discriminator nowhere
            details.append(located)
        raise ValidationError.from_exception_data("leads.events record", details) from None
