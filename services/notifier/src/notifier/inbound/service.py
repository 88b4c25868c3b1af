"""Mail that comes in on the reply domain (a provider's inbound webhook, or the dev stack's
SMTP sink): a visitor's reply goes back into its conversation, a bounce or a complaint puts
the address on the site's suppression list.

A reply is addressed `<local>+<token>@<reply domain>`; the token (notifier.domain.tokens)
names the conversation and is signed and dated, so a forged or expired one is refused and
nothing reaches chat. An accepted reply is stored once per (conversation, Message-ID) and
published as `conversation.add_email_reply` on `chat.inbound` through the outbox, in one
transaction: chat adds it as the visitor's message (the notifier never writes chat's
database). Automatic answers (out of office, Auto-Submitted) are kept out of the chat.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from beckon_contracts.ids import uuid7
from beckon_contracts.inbound import AddEmailReply, AttachmentNote, EmailReplyPayload, command_key
from beckon_contracts.topics import CHAT_INBOUND
from beckon_messaging.outbox import OutboxRecord

from notifier.conversations.store import ConversationStore
from notifier.domain.inbound import (
    Bounce,
    InboundMail,
    UnreadableMail,
    detect_bounce,
    parse_inbound,
)
from notifier.domain.tokens import InvalidToken, ReplyTokens
from notifier.emails.store import EmailStore
from notifier.uow import EVERY_SITE, UnitOfWork, UnitsOfWork

log = logging.getLogger("notifier.inbound")
Outcome = Literal["accepted", "duplicate", "refused", "ignored", "bounce", "complaint"]
MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class Received:
    outcome: Outcome
    reason: str | None = None
    conversation_id: UUID | None = None
    suppressed: int = 0


class Refused(Exception):
    """A reply that does not get in: `code` (malformed, forged, expired, unknown_conversation,
    unreadable, no_token, empty) and why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


async def receive(
    uow: UnitsOfWork, raw: bytes, *, tokens: ReplyTokens, recipients: list[str], now: datetime
) -> Received:
    """One raw RFC 5322 message; `recipients`: the envelope's (the provider's `To`), besides
    the message's own headers."""
    bounce = detect_bounce(raw)
    if bounce is not None:
        return await _bounced(uow, bounce, tokens=tokens, recipients=recipients, now=now)
    try:
        mail = parse_inbound(raw)
    except UnreadableMail as error:
        await _record(uow, None, None, None, "refused", "unreadable")
        raise Refused("unreadable", str(error)) from None
    try:
        conversation_id = _target(tokens, [*recipients, *mail.to], now=now)
    except Refused as refused:
        await _record(uow, None, None, mail, "refused", refused.code)
        raise
    refusal: Refused | None = None
    async with uow(EVERY_SITE) as tx:
        conversation = await tx.store(ConversationStore).find(conversation_id)
        text = mail.text.strip()
        if conversation is None:
            refusal = Refused(
                "unknown_conversation", "the conversation of this reply address is not known"
            )
            await _insert(tx, None, conversation_id, mail, "refused", refusal.code)
            return_now: Received | None = None
        elif mail.auto_submitted:
            await _insert(
                tx, conversation.site_id, conversation_id, mail, "ignored", "auto_submitted"
            )
            return_now = Received("ignored", "auto_submitted", conversation_id)
        elif not text:
            refusal = Refused("empty", "the reply says nothing besides the quoted conversation")
            await _insert(tx, conversation.site_id, conversation_id, mail, "refused", refusal.code)
            return_now = None
        elif not await _insert(tx, conversation.site_id, conversation_id, mail, "accepted", None):
            return_now = Received("duplicate", None, conversation_id)
        else:
            return_now = None
            tx.publish(
                _command(
                    conversation.site_id, conversation.visitor_id, conversation_id, mail, text, now
                )
            )
    if refusal is not None:
        raise refusal
    if return_now is not None:
        return return_now
    log.info("reply by e-mail accepted", extra={"conversation_id": str(conversation_id)})
    return Received("accepted", None, conversation_id)


def _command(
    site_id: str,
    visitor_id: str,
    conversation_id: UUID,
    mail: InboundMail,
    text: str,
    now: datetime,
) -> OutboxRecord:
    """`conversation.add_email_reply` for chat, built from its contract."""
    command = AddEmailReply(
        event_id=uuid7(),
        occurred_at=now,
        site_id=site_id,
        visitor_id=visitor_id,
        payload=EmailReplyPayload(
            conversation_id=conversation_id,
            text=text[:MAX_TEXT],
            from_email=mail.from_email,
            subject=(mail.subject or None) and mail.subject[:998],
            mail_message_id=(mail.message_id or None) and mail.message_id[:998],
            attachments=[
                AttachmentNote(
                    filename=(a.filename or None) and a.filename[:255],
                    content_type=a.content_type[:255],
                    size=a.size,
                )
                for a in mail.attachments[:50]
            ],
            received_at=now,
        ),
    )
    return OutboxRecord(
        CHAT_INBOUND.name,
        command_key(conversation_id),
        command.model_dump_json(exclude_none=True).encode(),
    )


def _target(tokens: ReplyTokens, addresses: list[str], *, now: datetime) -> UUID:
    """The conversation the first reply address among `addresses` names (refusals: no
    address with a token, or a token that is malformed, forged or expired)."""
    found: InvalidToken | None = None
    for address in addresses:
        token = _token_of(address)
        if token is None:
            continue
        try:
            return tokens.verify(token, now=now).conversation_id
        except InvalidToken as error:
            found = found or error
    if found is not None:
        raise Refused(found.code, str(found))
    raise Refused("no_token", "no recipient is a reply address (<local>+<token>@<reply domain>)")


def _token_of(address: str) -> str | None:
    local, at, _ = address.strip().strip("<>").rpartition("@")
    if not at or "+" not in local:
        return None
    return local.partition("+")[2].lower() or None


async def _bounced(
    uow: UnitsOfWork, bounce: Bounce, *, tokens: ReplyTokens, recipients: list[str], now: datetime
) -> Received:
    """A DSN or complaint: every site that mailed the address (or the conversation's site,
    when the bounce came back to a reply address) stops mailing it. A transient bounce
    changes nothing (the sender's retries go on)."""
    outcome: Outcome = "complaint" if bounce.kind == "complaint" else "bounce"
    if bounce.kind == "bounce" and not bounce.permanent:
        await _record(uow, None, None, None, outcome, "transient")
        return Received(outcome, "transient")
    try:
        conversation_id: UUID | None = _target(tokens, recipients, now=now)
    except Refused:
        conversation_id = None
    suppressed = 0
    async with uow(EVERY_SITE) as tx:
        conversation = (
            await tx.store(ConversationStore).find(conversation_id) if conversation_id else None
        )
        emails = tx.store(EmailStore)
        for address in bounce.recipients:
            if conversation is not None:
                sites = [conversation.site_id]
            else:
                sites = [
                    row["site_id"]
                    for row in await tx.conn.fetch(
                        """SELECT DISTINCT site_id FROM notifier.emails
                           WHERE lower(recipient) = lower($1)""",
                        address,
                    )
                ]
            for site_id in sites:
                reason = "complaint" if outcome == "complaint" else "bounce"
                suppressed += await emails.suppress(site_id, address, reason, bounce.diagnostic)
        await tx.conn.execute(
            """INSERT INTO notifier.inbound (inbound_id, site_id, conversation_id, outcome, reason,
                   received_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            uuid7(),
            conversation.site_id if conversation else None,
            conversation_id if conversation else None,
            outcome,
            bounce.diagnostic,
            now,
        )
    log.info("bounce or complaint", extra={"kind": bounce.kind, "suppressed": suppressed})
    return Received(outcome, bounce.diagnostic, conversation_id, suppressed)


async def _insert(
    tx: UnitOfWork,
    site_id: str | None,
    conversation_id: UUID | None,
    mail: InboundMail | None,
    outcome: Outcome,
    reason: str | None,
) -> bool:
    """The inbound row (False: this conversation accepted this Message-ID before)."""
    inserted = await tx.conn.fetchval(
        """INSERT INTO notifier.inbound
               (inbound_id, site_id, conversation_id, from_email, mail_message_id, outcome, reason)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT DO NOTHING RETURNING true""",
        uuid7(),
        site_id,
        conversation_id,
        mail.from_email if mail else None,
        (mail.message_id or None) if mail else None,
        outcome,
        reason,
    )
    return bool(inserted)


async def _record(
    uow: UnitsOfWork,
    site_id: str | None,
    conversation_id: UUID | None,
    mail: InboundMail | None,
    outcome: Outcome,
    reason: str | None,
) -> None:
    async with uow(EVERY_SITE) as tx:
        await _insert(tx, site_id, conversation_id, mail, outcome, reason)
