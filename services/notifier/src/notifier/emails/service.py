"""Intending an e-mail: the one way any part of the notifier asks for mail to go out.

An intent is stored once per idempotency key (template, recipient, source event), with its
Message-ID derived from the key, before anything is sent; the sender takes it from there.
Here, before it is stored, it passes the guards every e-mail passes:

- **never an open relay**: a visitor's mail goes only to the address captured in that very
  conversation, staff mail only to an address of the site's own staff or team inboxes
  (the caller says which; `recipient_kind`);
- **suppression**: an address that bounced, complained or unsubscribed gets nothing more
  from that site (the intent is kept as `suppressed`, so the log shows it);
- **limits** per recipient and per visitor in the last hour, and per site in the clock
  hour (over one: `suppressed` with the limit as the reason; an admin can resend it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from beckon_contracts.ids import uuid7

from notifier.conversations.store import Conversation, ConversationStore
from notifier.domain.compose import message_id_for
from notifier.emails.store import EmailStore
from notifier.uow import UnitOfWork

RecipientKind = Literal["visitor", "staff", "inbox"]
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Limits:
    per_recipient_hour: int = 30
    per_visitor_hour: int = 30
    per_site_hour: int = 20_000


@dataclass(frozen=True, slots=True)
class Intent:
    template: str
    site_id: str
    recipient: str
    recipient_kind: RecipientKind
    language: str
    source_event_id: UUID
    context: dict[str, Any] = field(default_factory=dict)
    conversation_id: UUID | None = None
    visitor_id: str | None = None
    due_at: datetime | None = None  # None: now
    scheduled: bool = False  # composed when due (unread messages)
    key_suffix: str = ""  # a resend's own key

    @property
    def key(self) -> str:
        base = f"{self.template}:{self.recipient.strip().lower()}:{self.source_event_id}"
        return base + (f":{self.key_suffix}" if self.key_suffix else "")


class NotAllowed(ValueError):
    """An intent that would make the notifier a relay (a programming error, or forged input)."""


@dataclass(frozen=True, slots=True)
class Intended:
    email_id: UUID
    message_id: str
    status: str  # scheduled, pending, suppressed
    reason: str | None
    new: bool  # False: the key was there already (a replay): nothing was added


async def intend(
    tx: UnitOfWork,
    intent: Intent,
    *,
    now: datetime,
    limits: Limits,
    mail_domain: str,
    conversation: Conversation | None = None,
) -> Intended:
    """Store the e-mail's intent once (see the module's guards). `conversation`: the
    visitor's conversation as this unit read it (else it is read here). A scheduled e-mail
    (unread messages, cancelled when the visitor sees them or the conversation closes) meets
    the suppression list and the limits when it is due (`hold_back`), not now."""
    emails = tx.store(EmailStore)
    if intent.recipient_kind == "visitor":
        if conversation is None and intent.conversation_id is not None:
            conversation = await tx.store(ConversationStore).get(
                intent.site_id, intent.conversation_id
            )
        captured = conversation.email if conversation is not None else None
        if captured is None or captured.strip().lower() != intent.recipient.strip().lower():
            raise NotAllowed(
                "a visitor's e-mail goes only to the address captured in that conversation"
            )
    status = "scheduled" if intent.scheduled else "pending"
    reason = None
    if not intent.scheduled:
        reason = await hold_back(
            emails, intent.site_id, intent.recipient, intent.visitor_id, now=now, limits=limits
        )
    if reason is not None:
        status = "suppressed"
    email_id = uuid7()
    message_id = message_id_for(intent.key, mail_domain)
    new = await emails.insert(
        email_id=email_id,
        key=intent.key,
        site_id=intent.site_id,
        template=intent.template,
        recipient=intent.recipient.strip(),
        recipient_kind=intent.recipient_kind,
        language=intent.language,
        conversation_id=intent.conversation_id,
        visitor_id=intent.visitor_id,
        source_event_id=intent.source_event_id,
        context=intent.context,
        message_id=message_id,
        status=status,
        reason=reason,
        due_at=intent.due_at or now,
        created_at=now,
    )
    if new and status == "pending" and (intent.due_at is None or intent.due_at <= now):
        tx.intended += 1
    return Intended(email_id=email_id, message_id=message_id, status=status, reason=reason, new=new)


async def hold_back(
    emails: EmailStore,
    site_id: str,
    recipient: str,
    visitor_id: str | None,
    *,
    now: datetime,
    limits: Limits,
    besides: UUID | None = None,
) -> str | None:
    """Why this e-mail must not go (the site's suppression list, a limit), or None; a None
    counts it in the site's hour. `besides`: the e-mail itself, when it is already stored."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    facts = await emails.hold_facts(
        since=now - HOUR,
        hour=hour,
        site_id=site_id,
        recipient=recipient,
        visitor_id=visitor_id,
        besides=besides,
    )
    if facts.suppressed is not None:
        return facts.suppressed
    if facts.to_recipient >= limits.per_recipient_hour:
        return "limit_recipient"
    if visitor_id is not None and facts.to_visitor >= limits.per_visitor_hour:
        return "limit_visitor"
    if facts.site_hour >= limits.per_site_hour:
        return "limit_site"
    emails.count_site_hour(site_id, hour)
    return None
