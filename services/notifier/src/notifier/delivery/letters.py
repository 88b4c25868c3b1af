"""An e-mail row → the message SMTP gets: its stored context into the template's context
(notifier.domain.contexts), rendered in the reader's language, with the site's From, the
conversation's reply address (a signed token), threading headers, and one-click unsubscribe
on the "unread messages" e-mails."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notifier.delivery.sender import Letter
from notifier.domain.compose import build_bytes
from notifier.domain.contexts import (
    AgentCard,
    LeadAssignedContext,
    LeadEscalatedContext,
    LeadSlaWarningContext,
    LeadSummary,
    MessageLine,
    OfflineReceiptContext,
    OfflineToTeamContext,
    SiteBrand,
    TemplateContext,
    TranscriptContext,
    UnreadMessagesContext,
    WebhookDisabledContext,
)
from notifier.domain.headers import mailbox
from notifier.domain.render import Renderer
from notifier.domain.tokens import ReplyTokens, reply_address
from notifier.emails.store import Email
from notifier.sites import SiteEmail
from notifier.unsubscribe import UnsubscribeLinks

AUTO = {"Auto-Submitted": "auto-generated"}  # RFC 3834: no auto-replies to these, please


class Letters:
    def __init__(
        self,
        renderer: Renderer,
        tokens: ReplyTokens,
        unsubscribe: UnsubscribeLinks,
        *,
        from_address: str,
        reply_domain: str,
        reply_local: str,
    ) -> None:
        self.renderer = renderer
        self.tokens = tokens
        self.unsubscribe = unsubscribe
        self.from_address = from_address
        self.reply_domain = reply_domain
        self.reply_local = reply_local

    def make(self, email: Email, site: SiteEmail) -> Letter:
        context = email.context
        unsubscribe_url = (
            self.unsubscribe.url(email.site_id, email.recipient)
            if email.template == "unread_messages"
            else None
        )
        rendered = self.renderer.render(
            email.template,  # type: ignore[arg-type]
            email.language,  # type: ignore[arg-type]
            template_context(email.template, context, unsubscribe_url=unsubscribe_url),
        )
        sender_address = site.from_address or self.from_address
        reply_to: str | None = None
        if email.recipient_kind == "visitor" and email.conversation_id is not None:
            token = self.tokens.issue(email.conversation_id, now=email.created_at)
            reply_to = reply_address(
                self.reply_local, token, site.reply_domain or self.reply_domain
            )
        elif email.template == "offline_to_team":
            reply_to = context["message"]["email"]  # the team answers the visitor directly
        thread = context.get("thread") or {}
        message = build_bytes(
            sender=mailbox(site.name(), sender_address),
            to=email.recipient,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=email.message_id,
            reply_to=reply_to,
            in_reply_to=thread.get("in_reply_to"),
            references=thread.get("references") or (),
            list_unsubscribe=unsubscribe_url,
            headers=AUTO,
            date=email.created_at,
        )
        return Letter(message=message, sender=sender_address, subject=rendered.subject)


def template_context(
    template: str, data: dict[str, Any], *, unsubscribe_url: str | None = None
) -> TemplateContext:
    """The template's context from what the intake stored (see notifier.intake.service)."""
    site = SiteBrand(
        name=data["site"]["name"],
        colour=data["site"].get("color") or "",
        time_zone=data["site"].get("time_zone") or "UTC",
    )
    if template in ("transcript", "unread_messages"):
        messages = tuple(_line(line) for line in data["messages"])
        agent = _agent(data["messages"])
        if template == "transcript":
            return TranscriptContext(
                site=site, messages=messages, visitor_name=data.get("visitor_name"), agent=agent
            )
        assert unsubscribe_url is not None
        return UnreadMessagesContext(
            site=site,
            messages=messages,
            unsubscribe_url=unsubscribe_url,
            visitor_name=data.get("visitor_name"),
            agent=agent,
        )
    if template == "offline_receipt":
        message = data["message"]
        return OfflineReceiptContext(
            site=site,
            message=message["text"],
            left_at=datetime.fromisoformat(message["left_at"]),
            visitor_name=message.get("name"),
        )
    if template == "offline_to_team":
        message = data["message"]
        return OfflineToTeamContext(
            site=site,
            visitor_email=message["email"],
            message=message["text"],
            left_at=datetime.fromisoformat(message["left_at"]),
            console_url=data["link"],
            visitor_name=message.get("name"),
            team=message.get("team"),
        )
    if template == "webhook_disabled":
        endpoint = data["endpoint"]
        return WebhookDisabledContext(
            site=site,
            endpoint_url=endpoint["url"],
            reason=endpoint["reason"],
            disabled_at=datetime.fromisoformat(endpoint["disabled_at"]),
            console_url=data["link"],
            recipient_name=data.get("recipient_name"),
            failing_since=(
                datetime.fromisoformat(endpoint["failing_since"])
                if endpoint.get("failing_since")
                else None
            ),
            last_error=endpoint.get("last_error"),
        )
    lead = data["lead"]
    summary = LeadSummary(
        name=lead.get("name"),
        email=lead.get("email"),
        phone=lead.get("phone"),
        company=lead.get("company"),
        validation=lead.get("validation"),
        team=lead.get("team"),
        due_at=datetime.fromisoformat(lead["due_at"]) if lead.get("due_at") else None,
    )
    if template == "lead_assigned":
        return LeadAssignedContext(
            site=site, recipient_name=data["agent_name"], lead=summary, console_url=data["link"]
        )
    if template == "lead_sla_warning":
        return LeadSlaWarningContext(
            site=site,
            recipient_name=data["agent_name"],
            lead=summary,
            console_url=data["link"],
            elapsed=float(lead.get("elapsed") or 0.5),
        )
    if template == "lead_escalated":
        return LeadEscalatedContext(
            site=site,
            recipient_name=data["agent_name"],
            lead=summary,
            console_url=data["link"],
            reason=lead.get("reason") or "sla_breached",
            assignee_name=lead.get("assignee_name"),
        )
    raise ValueError(f"no e-mail is made from a stored {template!r} context")


def _line(line: dict[str, Any]) -> MessageLine:
    return MessageLine(
        author=line["author"],
        text=line["text"],
        sent_at=datetime.fromisoformat(line["sent_at"]),
        author_name=line.get("author_name"),
        channel=line.get("channel") or "chat",
    )


def _agent(lines: list[dict[str, Any]]) -> AgentCard | None:
    """The agent who wrote last: the e-mail is signed with their name and picture."""
    for line in reversed(lines):
        if line["author"] == "agent" and line.get("author_name"):
            return AgentCard(name=line["author_name"], avatar_url=line.get("agent_avatar_url"))
    return None
