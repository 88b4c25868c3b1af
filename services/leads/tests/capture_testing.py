"""Records for capture's tests, built from the contracts (chat.events, tracking.events)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from beckon_contracts.chat_events import (
    ConversationClosed,
    ConversationClosedPayload,
    ConversationLeadMarked,
    ConversationStarted,
    ConversationStartedPayload,
    EmailCaptured,
    EmailCapturedPayload,
    LeadMarkedPayload,
    OfflineMessageLeft,
    OfflineMessagePayload,
)
from beckon_contracts.ids import uuid7
from beckon_contracts.tracking import (
    Identified,
    IdentifiedPayload,
    OrderCompleted,
    OrderCompletedPayload,
    ReportedBy,
    TrackingContext,
)

T0 = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
CHAT = "chat.events"
TRACKING = "tracking.events"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Ticking:
    """The service's clock in a test: a second later at every call (from `at(60)`)."""

    def __init__(self) -> None:
        self.ticks = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return at(59 + self.ticks)


def _common(site: str, visitor: str, when: datetime) -> dict[str, Any]:
    return {"event_id": uuid7(), "occurred_at": when, "site_id": site, "visitor_id": visitor}


def lead_marked(
    site: str,
    visitor: str,
    *,
    email: str | None = None,
    validation: str = "qualified",
    conversation_id: uuid.UUID | None = None,
    when: datetime = T0,
) -> ConversationLeadMarked:
    return ConversationLeadMarked(
        **_common(site, visitor, when),
        payload=LeadMarkedPayload(
            mark_id=uuid.uuid4(),
            conversation_id=conversation_id or uuid.uuid4(),
            agent_id="agent-1",
            validation=validation,  # type: ignore[arg-type]
            email=email,
            team="sales",
        ),
    )


def email_captured(site: str, visitor: str, email: str, *, when: datetime = T0) -> EmailCaptured:
    return EmailCaptured(
        **_common(site, visitor, when),
        payload=EmailCapturedPayload(conversation_id=uuid.uuid4(), email=email),
    )


def offline_message(
    site: str, visitor: str, email: str, *, name: str | None = None, when: datetime = T0
) -> OfflineMessageLeft:
    return OfflineMessageLeft(
        **_common(site, visitor, when),
        payload=OfflineMessagePayload(
            conversation_id=uuid.uuid4(), team="sales", email=email, name=name, text="Call me"
        ),
    )


def conversation_started(
    site: str, visitor: str, conversation_id: uuid.UUID, *, rule_id: str | None = None
) -> ConversationStarted:
    return ConversationStarted(
        **_common(site, visitor, T0),
        payload=ConversationStartedPayload(
            conversation_id=conversation_id, team="sales", rule_id=rule_id
        ),
    )


def conversation_closed(
    site: str, visitor: str, conversation_id: uuid.UUID, *, when: datetime = T0
) -> ConversationClosed:
    return ConversationClosed(
        **_common(site, visitor, when),
        payload=ConversationClosedPayload(
            conversation_id=conversation_id, closed_by="agent", team="sales", messages=7
        ),
    )


def identified(
    site: str,
    visitor: str,
    traits: dict[str, Any],
    *,
    locale: str | None = None,
    when: datetime = T0,
    verified: bool = True,
) -> Identified:
    return Identified(
        **_common(site, visitor, when),
        context=TrackingContext(locale=locale),
        payload=IdentifiedPayload(traits=traits, verified=verified),
    )


def order_completed(
    site: str,
    visitor: str,
    *,
    value: str,
    currency: str = "EUR",
    order_id: str = "order-1",
    reported_by: ReportedBy = "server",
) -> OrderCompleted:
    """An order as the tracker publishes it: by default from the store's server."""
    return OrderCompleted(
        **_common(site, visitor, T0),
        context=TrackingContext(reported_by=reported_by),
        payload=OrderCompletedPayload(order_id=order_id, value=value, currency=currency),  # type: ignore[arg-type]
    )


def record(event: Any, *, topic: str | None = None, offset: int = 0) -> SimpleNamespace:
    """A consumed record as `handle_until_done` reads it."""
    if topic is None:
        topic = TRACKING if event.type in ("identified", "order_completed") else CHAT
    return SimpleNamespace(
        topic=topic, value=event.model_dump_json().encode(), partition=0, offset=offset
    )


def raw(event: Any) -> bytes:
    return event.model_dump_json().encode()  # type: ignore[no-any-return]
