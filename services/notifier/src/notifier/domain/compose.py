"""One outgoing e-mail as an `EmailMessage`: text and HTML alternatives, threading headers, the
one-click unsubscribe headers, and every header value checked for injection."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.utils import format_datetime
from types import MappingProxyType

from notifier.domain.headers import HeaderInjection, check_parsed, safe_header

_DOMAIN_SHAPE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_MSG_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322: printable ASCII but ':'
_URL = re.compile(r"https?://[^\s<>\"']+")
MAX_REFERENCES = 20  # the first and the last ones matter for threading
# headers only build_message writes: `headers` cannot override them
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From",
        "To",
        "Cc",
        "Bcc",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Reply-To",
        "In-Reply-To",
        "References",
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "Sender",
        "Return-Path",
    )
)
# quoted-printable keeps the parts 7-bit (no reliance on 8BITMIME) and readable in the source
_BODY_CTE = "quoted-printable"
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def message_id_for(idempotency_key: str, domain: str) -> str:
    """`<sha256(key)[:32]@domain>`: the same e-mail intent always gets the same Message-ID, so a
    resend after a crash between the SMTP 250 and our write repeats it."""
    if not idempotency_key:
        raise ValueError("an idempotency key is needed for a Message-ID")
    if not _DOMAIN_SHAPE.fullmatch(domain):
        raise ValueError(f"{domain!r} is not a domain name for a Message-ID")
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain.lower()}>"


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    reply_to: str | None = None,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    list_unsubscribe: str | None = None,
    headers: Mapping[str, str] = _NO_HEADERS,
    date: datetime | None = None,
) -> EmailMessage:
    """A multipart/alternative e-mail (text, then HTML) under `policy.SMTP`, to exactly one
    recipient. HeaderInjection for any header value with CR/LF or control characters (also
    once RFC 2047 encoded words are decoded); ValueError for malformed ids, URLs or names.
    `headers` adds others (e.g. `Auto-Submitted: auto-generated` on alerts); `date` defaults
    to now."""
    msg = EmailMessage(policy=policy.SMTP)
    _set(msg, "From", sender)
    _set(msg, "To", to)
    if len(msg["To"].addresses) != 1:
        # one recipient per e-mail, always: the notifier is never a relay
        raise ValueError("an e-mail goes to exactly one recipient")
    if reply_to is not None:
        _set(msg, "Reply-To", reply_to)
    _set(msg, "Subject", subject)
    when = date if date is not None else datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("the Date must be timezone-aware")
    msg["Date"] = format_datetime(when)
    _set(msg, "Message-ID", _msg_id(message_id, field="Message-ID"))
    if in_reply_to is not None:
        _set(msg, "In-Reply-To", _msg_id(in_reply_to, field="In-Reply-To"))
    refs = [_msg_id(ref, field="References") for ref in references]
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    if refs:
        _set(msg, "References", " ".join(refs))
    if list_unsubscribe is not None:
        safe_header(list_unsubscribe, field="List-Unsubscribe")
        if not _URL.fullmatch(list_unsubscribe):
            raise ValueError("List-Unsubscribe takes one http(s) URL (RFC 8058 wants https)")
        _set(msg, "List-Unsubscribe", f"<{list_unsubscribe}>")
        _set(msg, "List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    for name, value in headers.items():
        if not _FIELD_NAME.fullmatch(name):
            raise HeaderInjection(f"{name!r} is not a header field name", field=name)
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"the {name} header is set by build_message itself")
        _set(msg, name, value)
    msg.set_content(text, cte=_BODY_CTE)
    msg.add_alternative(html, subtype="html", cte=_BODY_CTE)
    for part in msg.iter_parts():
        del part["MIME-Version"]  # add_alternative's parts carry their own; only the top needs it
    return msg


def _set(msg: EmailMessage, name: str, value: str) -> None:
    safe_header(value, field=name)
    try:
        msg[name] = value  # the registry parses it once, here
    except (ValueError, TypeError, HeaderParseError) as exc:
        # e.g. an encoded word in a display name that decodes to CR/LF
        raise HeaderInjection(f"the {name} header value is refused: {exc}", field=name) from None
    # what the header object reads back (encoded words decoded) must be one line too
    check_parsed(name, msg[name])


def _msg_id(value: str, *, field: str) -> str:
    candidate = value.strip()
    safe_header(candidate, field=field)
    if not _MSG_ID.fullmatch(candidate):
        raise ValueError(f"{field}: {value!r} is not a message id like <id@domain>")
    return candidate
