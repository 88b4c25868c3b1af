"""Mail coming in on the reply domain: a visitor's reply becomes one `chat.inbound` command
(through the outbox), a forged or expired token gets nothing in, an automatic answer stays
out of the chat, and a bounce stops mail to that address."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import pytest
from beckon_contracts.inbound import parse_inbound_command
from beckon_devstack.testing import unique
from notifier.domain.tokens import reply_address
from notifier.inbound.service import Refused, receive
from notifier_testing import REPLY_DOMAIN, Talk, make_notifier

pytestmark = pytest.mark.integration


def _reply(
    to: str,
    text: str,
    *,
    sender: str = "buyer@example.com",
    message_id: str | None = None,
    auto: bool = False,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = f"Liisa <{sender}>"
    mail["To"] = to
    mail["Subject"] = "Re: Your conversation"
    mail["Message-ID"] = message_id or f"<{unique('m')}@example.com>"
    if auto:
        mail["Auto-Submitted"] = "auto-replied"
    mail.set_content(f"{text}\n\nOn Mon, 1 Dec 2026 at 12:00, Shop wrote:\n> Earlier line\n")
    return bytes(mail)


async def _commands(pool) -> list:
    rows = await pool.fetch(
        "SELECT value FROM notifier.outbox WHERE topic = 'chat.inbound' ORDER BY id"
    )
    return [parse_inbound_command(r["value"]) for r in rows]


async def test_a_reply_goes_into_its_conversation_once(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    site = unique("site")
    talk = Talk(site)
    await notifier.feed(talk.started(), talk.email("buyer@example.com"))
    address = reply_address(
        "reply", notifier.tokens.issue(talk.conversation, now=notifier.clock()), REPLY_DOMAIN
    )
    raw = _reply(address, "Yes please, send the 39.5 ones.", message_id="<r1@example.com>")

    first = await receive(
        notifier.uow, raw, tokens=notifier.tokens, recipients=[], now=notifier.clock()
    )
    again = await receive(
        notifier.uow, raw, tokens=notifier.tokens, recipients=[], now=notifier.clock()
    )

    assert (first.outcome, again.outcome) == ("accepted", "duplicate")
    [command] = await _commands(notifier_pool)
    assert command.site_id == site
    assert command.visitor_id == talk.visitor
    assert command.payload.conversation_id == talk.conversation
    assert command.payload.text == "Yes please, send the 39.5 ones."  # the quote is gone
    assert command.payload.from_email == "buyer@example.com"


async def test_forged_expired_and_missing_tokens_get_nothing_in(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    talk = Talk(unique("site"))
    await notifier.feed(talk.started())
    token = notifier.tokens.issue(talk.conversation, now=notifier.clock())
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    old = notifier.tokens.issue(talk.conversation, now=notifier.clock() - timedelta(days=400))
    cases = {
        "forged": reply_address("reply", forged, REPLY_DOMAIN),
        "expired": reply_address("reply", old, REPLY_DOMAIN),
        "no_token": f"reply@{REPLY_DOMAIN}",
    }
    for code, address in cases.items():
        with pytest.raises(Refused) as refused:
            await receive(
                notifier.uow,
                _reply(address, "let me in"),
                tokens=notifier.tokens,
                recipients=[],
                now=notifier.clock(),
            )
        assert refused.value.code == code
    assert await _commands(notifier_pool) == []
    outcomes = await notifier_pool.fetch(
        "SELECT outcome, reason FROM notifier.inbound ORDER BY received_at"
    )
    assert sorted(r["reason"] for r in outcomes) == sorted(cases)


async def test_an_out_of_office_answer_stays_out_of_the_chat(notifier_pool, sink):
    notifier = make_notifier(notifier_pool, sink)
    talk = Talk(unique("site"))
    await notifier.feed(talk.started())
    address = reply_address(
        "reply", notifier.tokens.issue(talk.conversation, now=notifier.clock()), REPLY_DOMAIN
    )
    received = await receive(
        notifier.uow,
        _reply(address, "I am away", auto=True),
        tokens=notifier.tokens,
        recipients=[],
        now=notifier.clock(),
    )
    assert received.outcome == "ignored"
    assert await _commands(notifier_pool) == []


def _dsn(reply_to: str, failed: str) -> bytes:
    """An RFC 3464 delivery status notification, as an MTA writes it."""
    return (
        "From: MAILER-DAEMON@mx.example.com\r\n"
        f"To: {reply_to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{unique('dsn')}@mx.example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n\r\n"
        "--B\r\nContent-Type: message/rfc822\r\n\r\n"
        f"To: {failed}\r\nSubject: Your conversation\r\n\r\nHello\r\n--B--\r\n"
    ).encode()


async def test_a_bounce_puts_the_address_on_the_sites_list_and_nothing_more_goes_there(
    notifier_pool, sink
):
    notifier = make_notifier(notifier_pool, sink)
    site, address = unique("site"), f"{unique('gone')}@example.com"
    first = Talk(site)
    await notifier.feed(
        first.started(), first.email(address), first.says("visitor", "hi"), first.closed()
    )
    await notifier.send()
    assert len(notifier.mail_to(address)) == 1
    bounce_to = reply_address(
        "reply", notifier.tokens.issue(first.conversation, now=notifier.clock()), REPLY_DOMAIN
    )

    received = await receive(
        notifier.uow,
        _dsn(bounce_to, address),
        tokens=notifier.tokens,
        recipients=[bounce_to],
        now=notifier.clock(),
    )
    assert (received.outcome, received.suppressed) == ("bounce", 1)

    second = Talk(site)
    await notifier.feed(
        second.started(), second.email(address), second.says("visitor", "hi"), second.closed()
    )
    await notifier.send()
    assert len(notifier.mail_to(address)) == 1  # nothing more
    statuses = [r["status"] for r in await notifier.emails(site)]
    assert statuses == ["sent", "suppressed"]
