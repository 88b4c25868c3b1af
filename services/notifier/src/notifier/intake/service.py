"""What each fact on `chat.events` and `leads.events` means for e-mail (one unit of work
each; the consumer records the event id in the same transaction).

- `conversation.started`, `conversation.email_captured`, `message.sent`, `conversation.seen`
  keep the notifier's picture of the conversation (its captured address, language, lines,
  how far the visitor saw it). An agent's message to a visitor with an address schedules one
  "unread messages" e-mail for later (the site's `unread_after_s`; an answer to an offline
  message or to a reply by e-mail waits `offline_answer_gather_s` for the agent's next
  lines; a message after the close, as a reply by e-mail reopens it, makes the conversation
  live again): when it is due, the
  agents' lines the visitor has not seen go out, or nothing if they saw them all.
- `conversation.closed` with an address: the transcript (visitors' and agents' messages;
  agents' notes never reach chat.events) to that address; the unread e-mail still waiting
  is then cancelled, the transcript says it all.
- `offline.message_left`: a receipt to the visitor and the message to the team's inboxes
  (or, without any, to the site's admins).
- `webhook.disabled` (leads disabled a CRM endpoint that answered 410 or failed for days):
  to the site's admins.
- `lead.assigned` to the assignee, `lead.sla_warning` to the assignee, `lead.escalated` to
  the team leads it names (the breach's e-mail: leads escalates each breach), with a link
  into the console. Staff addresses come from `agents.directory`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from beckon_contracts.chat_events import (
    ConversationClosed,
    ConversationSeen,
    ConversationStarted,
    EmailCaptured,
    MessageSent,
    OfflineMessageLeft,
)
from beckon_contracts.ids import uuid7
from beckon_contracts.leads import (
    LeadAssigned,
    LeadEscalated,
    LeadSlaWarning,
    WebhookEndpointDisabled,
)

from notifier.adapters.directory import Directory
from notifier.conversations.store import Conversation, ConversationStore, Line
from notifier.emails import service as emails
from notifier.emails.service import Intent, Limits
from notifier.emails.store import EmailStore
from notifier.sites import SiteEmail, SiteStore
from notifier.uow import UnitOfWork

log = logging.getLogger("notifier.intake")
CONSUMER = "intake"


@dataclass(frozen=True, slots=True)
class Policy:
    """The service's settings the intake applies."""

    reply_domain: str
    console_url: str
    unread_after_s: float = 300.0
    offline_answer_gather_s: float = 30.0
    limits: Limits = field(default_factory=Limits)


@dataclass
class Intake:
    directory: Directory
    policy: Policy

    # --- conversations ---------------------------------------------------------------

    async def conversation_started(self, tx: UnitOfWork, event: ConversationStarted) -> None:
        assert event.visitor_id is not None
        await tx.store(ConversationStore).upsert(
            conversation_id=event.payload.conversation_id,
            site_id=event.site_id,
            visitor_id=event.visitor_id,
            team=event.payload.team,
            language=event.payload.language,
        )

    async def email_captured(self, tx: UnitOfWork, event: EmailCaptured) -> None:
        if event.payload.conversation_id is None:  # captured outside a conversation
            return
        assert event.visitor_id is not None
        await tx.store(ConversationStore).upsert(
            conversation_id=event.payload.conversation_id,
            site_id=event.site_id,
            visitor_id=event.visitor_id,
            email=event.payload.email,
            captured=True,
        )

    async def seen(self, tx: UnitOfWork, event: ConversationSeen) -> None:
        await tx.store(ConversationStore).seen(
            event.payload.conversation_id, event.payload.up_to_seq
        )

    async def message_sent(self, tx: UnitOfWork, event: MessageSent, *, now: datetime) -> None:
        p = event.payload
        assert event.visitor_id is not None
        conversations = tx.store(ConversationStore)
        line = Line(
            seq=p.seq,
            author=p.author,
            author_name=p.agent_name if p.author == "agent" else None,
            agent_avatar_url=p.agent_avatar_url,
            text=p.text,
            channel=p.channel,
            sent_at=p.sent_at,
        )
        conversation, last_visitor_channel = await conversations.message(
            event.site_id, p.conversation_id, event.visitor_id, line
        )
        if p.author != "agent":
            return
        if (
            conversation is None
            or conversation.email is None
            or conversation.closed_at is not None
            or p.seq <= max(conversation.seen_seq, conversation.emailed_seq)
        ):
            return
        site = await tx.store(SiteStore).get(event.site_id)
        # the visitor is away from the widget (an offline message, or they wrote by e-mail):
        # the answer goes as soon as the agent's lines are gathered
        by_mail = conversation.offline or last_visitor_channel == "email"
        wait = (
            self.policy.offline_answer_gather_s
            if by_mail
            else site.unread_after_s
            if site.unread_after_s is not None
            else self.policy.unread_after_s
        )
        await self._intend(
            tx,
            Intent(
                template="unread_messages",
                site_id=event.site_id,
                recipient=conversation.email,
                recipient_kind="visitor",
                language=conversation.language,
                source_event_id=event.event_id,
                context=self._visitor_context(site, conversation),
                conversation_id=p.conversation_id,
                visitor_id=conversation.visitor_id,
                due_at=max(now, p.sent_at) + timedelta(seconds=wait),
                scheduled=True,
            ),
            now=now,
            site=site,
            conversation=conversation,
        )

    async def conversation_closed(
        self, tx: UnitOfWork, event: ConversationClosed, *, now: datetime
    ) -> None:
        p = event.payload
        assert event.visitor_id is not None
        conversations = tx.store(ConversationStore)
        conversation = await conversations.close(
            conversation_id=p.conversation_id,
            site_id=event.site_id,
            visitor_id=event.visitor_id,
            team=p.team,
            email=p.email,
            at=event.occurred_at,
        )
        if conversation is None:  # another site's conversation id: nothing of it is touched
            log.warning(
                "a close names another site's conversation", extra={"site_id": event.site_id}
            )
            return
        site = await tx.store(SiteStore).get(event.site_id)
        if conversation.email is None or not site.transcripts:
            return
        # the unread e-mail still waiting is cancelled with this read: the transcript says
        # it all (a conversation with nothing said has none waiting: it needs an agent's line)
        lines = await conversations.transcript_lines(p.conversation_id)
        if not any(line.author in ("visitor", "agent") for line in lines):
            return  # nothing was said: no transcript
        context = {
            **self._visitor_context(site, conversation),
            "messages": [line.to_json() for line in lines if line.author != "system"],
            "closed_at": event.occurred_at.isoformat(),
        }
        intended = await self._intend(
            tx,
            Intent(
                template="transcript",
                site_id=event.site_id,
                recipient=conversation.email,
                recipient_kind="visitor",
                language=conversation.language,
                source_event_id=event.event_id,
                context=context,
                conversation_id=p.conversation_id,
                visitor_id=conversation.visitor_id,
            ),
            now=now,
            site=site,
            conversation=conversation,
        )
        if intended is not None and intended.new:
            await conversations.emailed(
                p.conversation_id,
                up_to_seq=max((line.seq for line in lines), default=0),
                message_id=intended.message_id,
            )

    async def offline_message(
        self, tx: UnitOfWork, event: OfflineMessageLeft, *, now: datetime
    ) -> None:
        p = event.payload
        assert event.visitor_id is not None
        conversations = tx.store(ConversationStore)
        await conversations.upsert(
            conversation_id=p.conversation_id,
            site_id=event.site_id,
            visitor_id=event.visitor_id,
            team=p.team,
            language=p.language,
            email=p.email,
            visitor_name=p.name,
            offline_text=p.text,
            captured=True,
        )
        conversation = await conversations.get(event.site_id, p.conversation_id)
        assert conversation is not None
        site = await tx.store(SiteStore).get(event.site_id)
        message = {
            "text": p.text,
            "name": p.name,
            "email": p.email,
            "team": p.team,
            "left_at": event.occurred_at.isoformat(),
        }
        receipt = await self._intend(
            tx,
            Intent(
                template="offline_receipt",
                site_id=event.site_id,
                recipient=p.email,
                recipient_kind="visitor",
                language=conversation.language,
                source_event_id=event.event_id,
                context={**self._visitor_context(site, conversation), "message": message},
                conversation_id=p.conversation_id,
                visitor_id=event.visitor_id,
            ),
            now=now,
            site=site,
            conversation=conversation,
        )
        if receipt is not None and receipt.new:
            await conversations.emailed(
                p.conversation_id,
                up_to_seq=None,
                message_id=receipt.message_id,
            )
        inboxes = site.inboxes(p.team)
        staff = [
            (address, "inbox", self.directory.look(event.site_id).language) for address in inboxes
        ]
        if not staff:  # no inbox set: the site's admins hear of it
            staff = [
                (card.email, "staff", card.language)
                for card in self.directory.admins(event.site_id)
            ]
        if not staff:
            log.warning("an offline message has nobody to go to", extra={"site_id": event.site_id})
        for address, kind, language in staff:
            await self._intend(
                tx,
                Intent(
                    template="offline_to_team",
                    site_id=event.site_id,
                    recipient=address,
                    recipient_kind=kind,  # type: ignore[arg-type]
                    language=language,
                    source_event_id=event.event_id,
                    context={
                        **self._site_context(site),
                        "message": message,
                        "conversation_id": str(p.conversation_id),
                        "link": self._console_link("conversation", p.conversation_id),
                    },
                    conversation_id=p.conversation_id,
                ),
                now=now,
                site=site,
            )

    # --- leads -----------------------------------------------------------------------

    async def lead_alert(
        self, tx: UnitOfWork, event: LeadAssigned | LeadSlaWarning | LeadEscalated, *, now: datetime
    ) -> None:
        p = event.payload
        agents: list[str]
        if isinstance(event, LeadAssigned):
            template, agents = "lead_assigned", [event.payload.agent_id]
        elif isinstance(event, LeadSlaWarning):
            assignee = event.payload.agent_id
            template, agents = "lead_sla_warning", [assignee] if assignee else []
        else:
            template, agents = "lead_escalated", list(event.payload.escalated_to)
        site = await tx.store(SiteStore).get(event.site_id)
        lead = p.lead
        summary: dict[str, Any] = {
            "lead_id": str(event.lead_id),
            "name": lead.contact.name,
            "email": lead.contact.email,
            "phone": lead.contact.phone,
            "company": lead.contact.company,
            "validation": lead.validation,
            "status": lead.status,
            "team": getattr(p, "team", None) or lead.team,
            "due_at": _iso(getattr(p, "due_at", None)),
            "elapsed": getattr(p, "elapsed", None),
            "reason": getattr(p, "reason", None),
            "assignee_name": self._agent_name(event.site_id, getattr(p, "agent_id", None)),
        }
        for agent_id in agents:
            card = self.directory.agent(event.site_id, agent_id)
            if card is None:
                await self._unaddressable(
                    tx, event.site_id, template, agent_id, event.event_id, now
                )
                continue
            await self._intend(
                tx,
                Intent(
                    template=template,
                    site_id=event.site_id,
                    recipient=card.email,
                    recipient_kind="staff",
                    language=card.language,
                    source_event_id=event.event_id,
                    context={
                        **self._site_context(site),
                        "agent_name": card.name,
                        "lead": summary,
                        "link": self._console_link("lead", event.lead_id),
                    },
                ),
                now=now,
                site=site,
            )

    async def webhook_disabled(
        self, tx: UnitOfWork, event: WebhookEndpointDisabled, *, now: datetime
    ) -> None:
        """The site's admins hear that leads disabled a CRM endpoint by itself, and why."""
        p = event.payload
        site = await tx.store(SiteStore).get(event.site_id)
        admins = self.directory.admins(event.site_id)
        if not admins:
            log.warning("a disabled webhook has no admin to tell", extra={"site_id": event.site_id})
        for card in admins:
            await self._intend(
                tx,
                Intent(
                    template="webhook_disabled",
                    site_id=event.site_id,
                    recipient=card.email,
                    recipient_kind="staff",
                    language=card.language,
                    source_event_id=event.event_id,
                    context={
                        **self._site_context(site),
                        "recipient_name": card.name,
                        "endpoint": {
                            "url": p.url,
                            "reason": p.reason,
                            "disabled_at": event.occurred_at.isoformat(),
                            "failing_since": _iso(p.failing_since),
                            "last_error": p.last_error,
                        },
                        "link": self._console_link("webhook", p.endpoint_id),
                    },
                ),
                now=now,
                site=site,
            )

    # --- helpers ---------------------------------------------------------------------

    async def _intend(
        self,
        tx: UnitOfWork,
        intent: Intent,
        *,
        now: datetime,
        site: SiteEmail,
        conversation: Conversation | None = None,
    ) -> emails.Intended | None:
        try:
            return await emails.intend(
                tx,
                intent,
                now=now,
                limits=self.policy.limits,
                mail_domain=site.reply_domain or self.policy.reply_domain,
                conversation=conversation,
            )
        except emails.NotAllowed as refused:
            log.warning(
                "e-mail refused",
                extra={"site_id": intent.site_id, "template": intent.template, "why": str(refused)},
            )
            return None

    async def _unaddressable(
        self,
        tx: UnitOfWork,
        site_id: str,
        template: str,
        agent_id: str,
        event_id: UUID,
        now: datetime,
    ) -> None:
        """A staff e-mail to an agent the directory does not list (or deactivated): kept as
        failed, so the delivery log shows it instead of nothing."""
        await tx.store(EmailStore).insert(
            email_id=uuid7(),
            key=f"{template}:agent:{agent_id}:{event_id}",
            site_id=site_id,
            template=template,
            recipient=f"agent:{agent_id}",
            recipient_kind="staff",
            language="en",
            conversation_id=None,
            visitor_id=None,
            source_event_id=event_id,
            context={},
            message_id="-",
            status="failed",
            reason="no_address",
            due_at=now,
            created_at=now,
        )
        log.warning("no address for an agent", extra={"site_id": site_id, "agent_id": agent_id})

    def _agent_name(self, site_id: str, agent_id: str | None) -> str | None:
        card = self.directory.agent(site_id, agent_id) if agent_id else None
        return card.name if card is not None else None

    def _site_context(self, site: SiteEmail) -> dict[str, Any]:
        look = self.directory.look(site.site_id)
        return {"site": {"name": site.name(), "color": look.color, "time_zone": look.time_zone}}

    def _visitor_context(self, site: SiteEmail, conversation: Conversation) -> dict[str, Any]:
        return {
            **self._site_context(site),
            "visitor_name": conversation.visitor_name,
            "conversation_id": str(conversation.conversation_id),
            # the thread the e-mail joins (the sender fills it again for a scheduled one)
            "thread": {
                "in_reply_to": conversation.last_email_id,
                "references": [
                    i for i in (conversation.first_email_id, conversation.last_email_id) if i
                ],
            },
        }

    def _console_link(self, kind: str, ident: UUID) -> str:
        """The console, opened on the lead or conversation (`#lead=...`)."""
        return f"{self.policy.console_url.split('#')[0]}#{kind}={ident}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
