"""One outgoing e-mail as an `EmailMessage`: text and HTML alternatives, threading headers, the
one-click unsubscribe headers, and every header value checked for injection."""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from types import MappingProxyType

from notifier.domain.headers import HeaderInjection, check_parsed, checked_header, safe_header

_DOMAIN_SHAPE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_MSG_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322: printable ASCII but ':'
_URL = re.compile(r"https?://[^\s<>\"']+")
MAX_REFERENCES = 20  # the first and the last ones matter for threading
# RFC 5321 4.5.3.1: a longer address is undeliverable, and one that long could not be folded
# under RFC 5322's 998-octet line limit either
MAX_ADDRESS_CHARS = 254
MAX_LOCAL_PART_CHARS = 64
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
        if len(msg["Reply-To"].addresses) != 1:
            # it is often what a visitor typed: a reply goes to them, not to a list they chose
            raise ValueError("the Reply-To is exactly one address")
    for field in ("From", "To", "Reply-To"):
        for address in getattr(msg[field], "addresses", ()):
            _check_length(field, address.addr_spec)
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


def _check_length(field: str, addr_spec: str) -> None:
    local = addr_spec.rpartition("@")[0]
    if len(addr_spec) > MAX_ADDRESS_CHARS or len(local) > MAX_LOCAL_PART_CHARS:
        raise ValueError(
            f"{field}: an address of {len(addr_spec)} characters (local part {len(local)}); "
            f"at most {MAX_ADDRESS_CHARS} (local part {MAX_LOCAL_PART_CHARS}) are deliverable"
        )


def _msg_id(value: str, *, field: str) -> str:
    candidate = value.strip()
    safe_header(candidate, field=field)
    if not _MSG_ID.fullmatch(candidate):
        raise ValueError(f"{field}: {value!r} is not a message id like <id@domain>")
    return candidate


# ---- the wire form, written directly --------------------------------------------------------
# `build_message` builds an `EmailMessage`, whose header objects are parsed again on every set
# and on flattening: two thirds of the notifier's CPU per e-mail went there. `build_bytes`
# checks the same values the same way (each header once through the header registry, so an
# encoded word that decodes to a line break is still refused) and writes the bytes itself;
# a unit test parses both for the same inputs and compares.
_FOLD_AT = 78


def build_bytes(
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
) -> bytes:
    """What `build_message(...).as_bytes()` carries (the same headers, parts and checks, CRLF
    line ends, 7-bit), built without `EmailMessage`."""
    lines: list[str] = []
    lines.append(_field("From", _mailboxes("From", sender)))
    recipients = _mailboxes("To", to)
    if recipients.count("<") > 1 or "," in _strip_quoted(recipients):
        raise ValueError("an e-mail goes to exactly one recipient")
    lines.append(_field("To", recipients))
    if reply_to is not None:
        answer_to = _mailboxes("Reply-To", reply_to)
        if answer_to.count("<") > 1 or "," in _strip_quoted(answer_to):
            raise ValueError("the Reply-To is exactly one address")
        lines.append(_field("Reply-To", answer_to))
    lines.append(_field("Subject", _text_value("Subject", subject)))
    when = date if date is not None else datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("the Date must be timezone-aware")
    lines.append(f"Date: {format_datetime(when)}")
    lines.append(f"Message-ID: {_msg_id(message_id, field='Message-ID')}")
    if in_reply_to is not None:
        lines.append(f"In-Reply-To: {_msg_id(in_reply_to, field='In-Reply-To')}")
    refs = [_msg_id(ref, field="References") for ref in references]
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    if refs:
        lines.append(_field("References", " ".join(refs)))
    if list_unsubscribe is not None:
        checked_header("List-Unsubscribe", list_unsubscribe)
        if not _URL.fullmatch(list_unsubscribe):
            raise ValueError("List-Unsubscribe takes one http(s) URL (RFC 8058 wants https)")
        lines.append(_field("List-Unsubscribe", f"<{list_unsubscribe}>"))
        lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
    for name, value in headers.items():
        if not _FIELD_NAME.fullmatch(name):
            raise HeaderInjection(f"{name!r} is not a header field name", field=name)
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"the {name} header is set by build_message itself")
        lines.append(_field(name, _text_value(name, value)))
    boundary = "=_" + hashlib.sha256(message_id.encode()).hexdigest()[:32]
    lines += [
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        "",
        f"--{boundary}",
        *_part("plain", text),
        f"--{boundary}",
        *_part("html", html),
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def _mailboxes(field: str, value: str) -> str:
    """An address header's value, checked, with non-ASCII display names RFC 2047 encoded."""
    safe_header(value, field=field)
    try:
        parsed = _REGISTRY(field, value)
    except (ValueError, HeaderParseError) as exc:
        raise HeaderInjection(f"the {field} value is refused: {exc}", field=field) from None
    check_parsed(field, parsed)
    out = []
    for address in parsed.addresses:  # type: ignore[attr-defined]
        if not address.addr_spec.isascii():
            raise ValueError(f"{field}: {address.addr_spec!r} is not an ASCII address")
        _check_length(field, address.addr_spec)
        out.append(formataddr((address.display_name or "", address.addr_spec), charset="utf-8"))
    if not out:
        raise ValueError(f"{field}: no address in {value!r}")
    return ", ".join(out)


def _text_value(field: str, value: str) -> str:
    """An unstructured header's value, checked, RFC 2047 encoded when not ASCII."""
    checked_header(field, value)
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=field).encode(linesep="\r\n")


def _field(name: str, value: str) -> str:
    """`Name: value`, folded at spaces to lines of about 78 characters (encoded values come
    folded already)."""
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT or "\r\n" in value:
        return line
    words = value.split(" ")
    folded: list[str] = []
    current = f"{name}: {words[0]}"  # never a fold right after the name
    for word in words[1:]:
        if len(current) + 1 + len(word) > _FOLD_AT:
            folded.append(current)
            current = " " + word
        else:
            current = f"{current} {word}"
    folded.append(current)
    return "\r\n".join(folded)


def _part(subtype: str, body: str) -> list[str]:
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        encoded.replace("\n", "\r\n"),  # its last line break, and the one before the boundary
    ]


def _strip_quoted(value: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', "", value)


_REGISTRY = HeaderRegistry()
