"""Header injection through what a visitor types: CR/LF, other line breaks, RFC 2047 encoded
words that decode to them, several addresses and overlong values in the names, subjects and
addresses that reach an e-mail's headers are refused or folded safely, and a message that is
sent has exactly the headers the notifier sets.

The path is the sender's own: a stored e-mail row (`Email`, its context as the intake stores
it) made into bytes by `Letters.make`, then parsed as a mail client would."""

from __future__ import annotations

from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any
from uuid import uuid4

import pytest
from notifier.delivery.letters import Letters
from notifier.domain.headers import HeaderInjection
from notifier.domain.render import Renderer
from notifier.domain.tokens import ReplyTokens
from notifier.emails.store import Email
from notifier.sites import SiteEmail
from notifier.unsubscribe import UnsubscribeLinks

T0 = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
SECRET = "xss-battery-secret-0123456789"
LETTERS = Letters(
    Renderer(),
    ReplyTokens([SECRET]),
    UnsubscribeLinks([SECRET], "https://notifier.test"),
    from_address="chat@shop.test",
    reply_domain="reply.shop.test",
    reply_local="reply",
)
SITE = SiteEmail(site_id="shop", from_name="Shop")
# the headers Letters.make sets, and no others
OFFLINE_HEADERS = {
    "from",
    "to",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
}
BREAKS = ["\r\n", "\n", "\r", "\x85", "\u2028", "\u2029", "\x00", "\x0b", "\x0c"]
INJECTED = "Bcc: victim@evil.test"
# names, subject text and addresses as a visitor may type them into the offline form
HOSTILE_NAMES = [
    *(f"Liisa{br}{INJECTED}" for br in BREAKS),
    "=?utf-8?q?Liisa=0D=0ABcc:_victim@evil.test?=",
    "=?utf-8?b?TGlpc2ENCkJjYzogdmljdGltQGV2aWwudGVzdA==?=",
    '"Liisa" <liisa@example.fi>, victim@evil.test',
    "Liisa\t" + "x" * 2000,
    "Liisa " + " ".join(["word"] * 400),
    "<script>alert(1)</script>",
]
HOSTILE_ADDRESSES = [
    *(f"liisa@example.fi{br}{INJECTED}" for br in BREAKS),
    "liisa@example.fi, victim@evil.test",
    "liisa@example.fi\tvictim@evil.test",
    "Liisa <liisa@example.fi>, <victim@evil.test>",
    "=?utf-8?q?liisa=0D=0ABcc:_x?=@example.fi",
    "liisa@" + "a" * 300 + ".fi",
    "x" * 5000 + "@example.fi",
]


def _offline_to_team(name: str, address: str, text: str = "Hello") -> Email:
    context: dict[str, Any] = {
        "site": {"name": "Shop", "color": "#0b7285", "time_zone": "Europe/Helsinki"},
        "message": {
            "name": name,
            "email": address,
            "text": text,
            "left_at": T0.isoformat(),
            "team": "sales",
        },
        "link": "https://console.shop.test/#/offline/1",
    }
    return Email(
        email_id=uuid4(),
        idempotency_key=f"xss-{uuid4()}",
        site_id="shop",
        template="offline_to_team",
        recipient="sales@shop.test",
        recipient_kind="team",
        language="en",
        conversation_id=None,
        visitor_id="v-1",
        source_event_id=uuid4(),
        context=context,
        message_id=f"<{uuid4().hex}@shop.test>",
        status="queued",
        reason=None,
        attempts=0,
        due_at=T0,
        created_at=T0,
        sent_at=None,
        subject=None,
    )


def _made_or_refused(email: Email) -> bytes | None:
    """The message's bytes, or None when the notifier refuses to make it."""
    try:
        return LETTERS.make(email, SITE).message
    except (HeaderInjection, ValueError):
        return None


def _assert_clean(raw: bytes, expected: set[str]) -> None:
    head, _, _ = raw.partition(b"\r\n\r\n")
    assert b"\n" not in head.replace(b"\r\n", b""), "a bare line break in the header block"
    for line in head.split(b"\r\n"):
        assert len(line) <= 998, f"a header line of {len(line)} octets (RFC 5322 caps at 998)"
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert {name.lower() for name in message} == expected
    assert len(message.get_all("To") or []) == 1
    assert len(message["To"].addresses) == 1
    assert "bcc" not in {name.lower() for name in message}
    assert "evil.test" not in str(message["To"])
    reply_to = message["Reply-To"]
    assert reply_to is None or len(reply_to.addresses) == 1


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_visitor_name_never_adds_a_header(name: str) -> None:
    raw = _made_or_refused(_offline_to_team(name, "liisa@example.fi"))
    if raw is not None:
        _assert_clean(raw, OFFLINE_HEADERS)
        subject = BytesParser(policy=policy.default).parsebytes(raw)["Subject"]
        assert "\n" not in str(subject)
        assert "\r" not in str(subject)


@pytest.mark.parametrize("address", HOSTILE_ADDRESSES)
def test_a_hostile_visitor_address_is_refused_or_one_mailbox(address: str) -> None:
    raw = _made_or_refused(_offline_to_team("Liisa", address))
    if raw is not None:
        _assert_clean(raw, OFFLINE_HEADERS)


@pytest.mark.parametrize(
    "address",
    ["liisa@example.fi, victim@evil.test", "Liisa <liisa@example.fi>, <victim@evil.test>"],
)
def test_a_reply_to_the_visitor_goes_to_one_address(address: str) -> None:
    """The team answers an offline message by replying: a visitor who typed two addresses
    must not make the team's answer go to a second one."""
    assert _made_or_refused(_offline_to_team("Liisa", address)) is None


def test_a_clean_offline_message_is_made_with_exactly_its_headers() -> None:
    raw = _made_or_refused(_offline_to_team("Liisa Virtanen", "liisa@example.fi"))
    assert raw is not None
    _assert_clean(raw, OFFLINE_HEADERS)
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Reply-To"].addresses[0].addr_spec == "liisa@example.fi"
