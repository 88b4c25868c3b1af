"""Inbound mail: a visitor's reply read down to what they newly wrote, and bounces/complaints.

`parse_inbound` takes the raw RFC 5322 bytes (what an inbound webhook or the dev SMTP sink
hands over) and returns who wrote, to which addresses, the threading ids, the new text of the
reply (quoted history and signature stripped, HTML converted to text, at most 4000
characters) and the attachments as a list (never their content). The standard library's
parser reads the structure; `mail-parser-reply` splits the reply from the history in the
languages it knows, and the Finnish client headers ("... kirjoitti:", "Lähettäjä:") and
`>` quotes are cut here first.

`detect_bounce` reads RFC 3464 delivery status notifications and RFC 5965 (ARF) complaints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses
from html import unescape
from html.parser import HTMLParser
from typing import Literal

from mailparser_reply.parser import EmailMessage as ReplyText

MAX_TEXT_CHARS = 4000  # the chat message's limit (MessageText)
MAX_ATTACHMENTS = 50  # the contract's limit (AttachmentNote list)
MAX_BODY_CHARS = 100_000  # what the reply splitter reads at most (a reply's new part is on top)
MAX_SPLIT_CHARS = 16_000  # what mail-parser-reply reads at most (4x the text we keep)
MAX_RAW_BYTES = 25 * 1024 * 1024
# mail-parser-reply's languages for client headers ("On ... wrote:", "Am ... schrieb:", ...);
# Finnish is not among them: its headers are cut by _FI_HEADERS below
REPLY_LANGUAGES = ("en", "de", "sv", "da", "nl", "fr", "es", "it", "pl", "cs")

_parser = BytesParser(policy=policy.default)
_header_parser = HeaderParser(policy=policy.default)

# Where quoted history starts, in the clients' words. Each pattern matches at a line start.
_HISTORY_STARTS = [
    # Gmail ("ma 3.3.2025 klo 12.00 Liisa <liisa@example.fi> kirjoitti:"), Apple Mail and
    # Thunderbird ("Liisa kirjoitti 3.3.2025 kello 12.00:"); Gmail may wrap it after the "<".
    # A date or an address on the line tells it from a sentence that quotes someone.
    re.compile(
        r"^(?:[^\n]*<[ \t]*\n)?(?=[^\n]*[\d@])[^\n]*\bkirjoitti\b[^\n]*:[ \t]*$",
        re.MULTILINE | re.IGNORECASE,
    ),
    re.compile(r"^On\b[^\n]*(?:\n[^\n]*)?\bwrote:[ \t]*$", re.MULTILINE | re.IGNORECASE),
    # Outlook's header block, Finnish and English: two of these lines in a row
    re.compile(
        r"^[* ]*(?:Lähettäjä|Lähetetty|Vastaanottaja|Aihe|Päivämäärä|Kopio|From|Sent|To|Date"
        r"|Subject|Cc)[ *]*:[^\n]*\n[* ]*(?:Lähettäjä|Lähetetty|Vastaanottaja|Aihe|Päivämäärä"
        r"|Kopio|From|Sent|To|Date|Subject|Cc)[ *]*:",
        re.MULTILINE | re.IGNORECASE,
    ),
    re.compile(
        r"^-{2,}\s*(?:Alkuperäinen viesti|Original Message|Välitetty viesti|Forwarded message)"
        r"\s*-{2,}",
        re.MULTILINE | re.IGNORECASE,
    ),
    re.compile(r"^_{20,}[ \t]*$", re.MULTILINE),  # Outlook's rule above the quoted header
]
# A signature: the RFC 3676 delimiter, phone footers, a Finnish closing on its own line
_SIGNATURE_STARTS = [
    re.compile(r"^--[ \t]?$", re.MULTILINE),
    re.compile(
        r"^(?:Lähetetty|Sent from|Get Outlook for|Hanki Outlook)\b[^\n]{0,60}$",
        re.MULTILINE | re.IGNORECASE,
    ),
    re.compile(
        r"^(?:Ystävällisin terveisin|Parhain terveisin|Terveisin|Yst\.?\s*terv\.?|Terv\.?)"
        r"(?![\w-])[^\n]{0,40}$",
        re.MULTILINE | re.IGNORECASE,
    ),
    re.compile(r"^[Tt][.:][ \t]*(?:[A-ZÅÄÖ][^\n]{0,40})?$", re.MULTILINE),  # "t. Liisa"
]
_QUOTED_LINE = re.compile(r"^[ \t]*>[^\n]*(?:\n|$)", re.MULTILINE)
_MSG_ID = re.compile(r"<[^<>\s]+>")
_LONG_LINE = re.compile(r"^[^\n]{300,}$", re.MULTILINE)
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n){2,}")


class UnreadableMail(ValueError):
    """A message we cannot turn into a visitor's reply; the message says why."""


@dataclass(frozen=True)
class AttachmentInfo:
    filename: str | None
    content_type: str
    size: int  # bytes, decoded


@dataclass(frozen=True)
class InboundMail:
    from_email: str  # the From addr-spec, lower-cased
    to: tuple[str, ...]  # To, Cc, Delivered-To and X-Original-To, lower-cased, in that order
    subject: str | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str  # the new part of the reply only
    attachments: tuple[AttachmentInfo, ...]
    auto_submitted: bool  # an auto-reply, a list/bulk mail or a DSN: never a visitor's answer


@dataclass(frozen=True)
class Bounce:
    kind: Literal["bounce", "complaint"]
    recipients: tuple[str, ...]
    permanent: bool
    diagnostic: str | None


def parse_inbound(raw: bytes) -> InboundMail:
    """The reply in `raw`; UnreadableMail when there is no sender, no text of its own (only
    quoted history) or nothing a mail parser can read."""
    msg = _parse(raw)
    try:
        return _inbound(msg)
    except UnreadableMail:
        raise
    except (HeaderParseError, ValueError, LookupError, TypeError, AttributeError) as exc:
        # the stdlib's header parser has raised all of these on hostile input over the years
        raise UnreadableMail(f"the message cannot be read: {type(exc).__name__}: {exc}") from None


def detect_bounce(raw: bytes) -> Bounce | None:
    """A delivery failure (RFC 3464) or a complaint (RFC 5965) about mail we sent; None for
    anything else (including a DSN that only reports success)."""
    try:
        msg = _parse(raw)
    except UnreadableMail:
        return None
    try:
        for part in msg.walk():
            content_type = part.get_content_type()
            if content_type == "message/delivery-status":
                return _dsn(part)
            if content_type == "message/feedback-report":
                return _complaint(msg, part)
    except (HeaderParseError, ValueError, LookupError, TypeError, AttributeError):
        return None  # a report we cannot read is no evidence against an address
    return None


# ---- parsing ---------------------------------------------------------------------------------
def _parse(raw: bytes) -> EmailMessage:
    if not isinstance(raw, bytes | bytearray):
        raise UnreadableMail("an inbound message is raw bytes (RFC 5322)")
    if not raw.strip():
        raise UnreadableMail("the message is empty")
    if len(raw) > MAX_RAW_BYTES:
        raise UnreadableMail(f"the message is larger than {MAX_RAW_BYTES // (1024 * 1024)} MiB")
    try:
        msg = _parser.parsebytes(bytes(raw))
    except Exception as exc:  # the parser's failure modes are not a closed set
        raise UnreadableMail(f"the message cannot be parsed: {type(exc).__name__}") from None
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise UnreadableMail("this is not an e-mail: it has no header fields")
    return msg


def _inbound(msg: EmailMessage) -> InboundMail:
    sender = _first_address(msg, "From")
    if sender is None:
        raise UnreadableMail("the message has no From address")
    recipients = _addresses(msg, ("To", "Cc", "Delivered-To", "X-Original-To"))
    text, attachments = _content(msg)
    return InboundMail(
        from_email=sender,
        to=recipients,
        subject=_one_line(msg.get("Subject")),
        message_id=_first_id(msg.get("Message-ID")),
        in_reply_to=_first_id(msg.get("In-Reply-To")),
        references=tuple(_MSG_ID.findall(str(msg.get("References") or ""))),
        text=text,
        attachments=attachments,
        auto_submitted=_is_automatic(msg),
    )


def _first_address(msg: Message, field: str) -> str | None:
    for address in _addresses(msg, (field,)):
        return address
    return None


def _addresses(msg: Message, fields: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for field in fields:
        specs: list[str] = []
        for value in msg.get_all(field, []):
            parsed = getattr(value, "addresses", None)
            if parsed is not None:  # an address header, parsed (encoded words and all)
                specs.extend(str(address.addr_spec) for address in parsed)
            else:  # Delivered-To, X-Original-To: unstructured
                specs.extend(addr for _, addr in getaddresses([str(value)]))
        for spec in specs:
            addr = spec.strip().strip("<>").lower()
            local, at, domain = addr.rpartition("@")
            if at and local and domain and "." in domain and addr not in found:
                found.append(addr)
    return tuple(found)


def _first_id(value: object) -> str | None:
    ids = _MSG_ID.findall(str(value or ""))
    return ids[0] if ids else None


def _one_line(value: object) -> str | None:
    text = " ".join(str(value or "").split())
    return text or None


def _is_automatic(msg: Message) -> bool:
    auto = str(msg.get("Auto-Submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return True
    if str(msg.get("Precedence") or "").strip().lower() in ("bulk", "junk", "list"):
        return True
    if msg.get("X-Autoreply") is not None or msg.get("X-Autorespond") is not None:
        return True
    if msg.get_content_type() == "multipart/report":
        return True
    return any(
        part.get_content_type() in ("message/delivery-status", "message/feedback-report")
        for part in msg.walk()
    )


# ---- content ---------------------------------------------------------------------------------
def _content(msg: EmailMessage) -> tuple[str, tuple[AttachmentInfo, ...]]:
    body = msg.get_body(preferencelist=("plain", "html"))
    attachments = _attachments(msg, body)
    raw_text = _body_text(body) if body is not None else ""
    if not raw_text.strip() and body is not None and body.get_content_type() == "text/plain":
        html = msg.get_body(preferencelist=("html",))  # an empty text twin of an HTML mail
        if html is not None:
            raw_text = _body_text(html)
    reply = extract_reply(raw_text)
    if reply:
        return _cap(reply), attachments
    if raw_text.strip():
        raise UnreadableMail("the message has no text of its own, only quoted history")
    if attachments:
        # an answer that is only a photo or a file: the agent still sees that it came
        names = ", ".join(a.filename or a.content_type for a in attachments)
        return _cap(f"📎 {names}"), attachments
    raise UnreadableMail("the message has no text")


def _attachments(msg: EmailMessage, body: Message | None) -> tuple[AttachmentInfo, ...]:
    found: list[AttachmentInfo] = []
    for part in msg.walk():
        if part is body or part.is_multipart():
            continue
        content_type = part.get_content_type()
        disposition = part.get_content_disposition()
        if content_type.startswith("text/") and disposition != "attachment":
            continue  # the body's alternatives (the HTML twin of the text, etc.)
        found.append(
            AttachmentInfo(
                filename=_one_line(part.get_filename()),
                content_type=content_type,
                size=_size(part),
            )
        )
        if len(found) == MAX_ATTACHMENTS:
            break
    return tuple(found)


def _size(part: Message) -> int:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return len(payload)
    return len(part.as_bytes()) if part.get_content_maintype() == "message" else 0


def _body_text(part: Message) -> str:
    text = _text_of(part)
    if part.get_content_type() == "text/html":
        return html_to_text(text)
    if str(part.get_param("format") or "").lower() == "flowed":
        return _unflow(text, delsp=str(part.get_param("delsp") or "").lower() == "yes")
    return text


def _unflow(text: str, *, delsp: bool) -> str:
    """RFC 3676: a line ending in a space continues on the next one (not the "-- " line)."""
    out: list[str] = []
    pending = ""
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("utf-8", errors="replace")


def extract_reply(text: str) -> str:
    """The new part of a reply: the text above the quoted history, without `>` lines or the
    signature, trimmed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")[:MAX_BODY_CHARS]
    text = _cut_at_first(text, _HISTORY_STARTS)
    text = _QUOTED_LINE.sub("", text)
    text = _cut_at_first(text, _SIGNATURE_STARTS, skip_top=True)
    if not text.strip():
        return ""
    reply = _QUOTED_LINE.sub("", _split_reply(text))
    reply = "\n".join(line.rstrip() for line in reply.split("\n"))
    return _BLANK_LINES.sub("\n\n", reply).strip()


def _split_reply(text: str) -> str:
    """mail-parser-reply's first reply. Its header patterns take time quadratic in a line's
    length (a 16,000-character line starting with "On" took seconds), so it reads at most
    MAX_SPLIT_CHARS, and long lines (never a client's header) reach it as placeholders."""
    long_lines: list[str] = []

    def stash(found: re.Match[str]) -> str:
        long_lines.append(found.group())
        return f"\ue000{len(long_lines) - 1}\ue001"

    short = _LONG_LINE.sub(stash, text[:MAX_SPLIT_CHARS].replace("\ue000", ""))
    # keep_hyphen_lists: "- the boots\n- the socks" is an answer, not a signature
    parsed = ReplyText(text=short, languages=list(REPLY_LANGUAGES), keep_hyphen_lists=True)
    replies = parsed.read().replies
    reply = replies[0].body if replies else short
    return _PLACEHOLDER.sub(lambda found: long_lines[int(found.group(1))], reply)


def _cut_at_first(text: str, patterns: list[re.Pattern[str]], *, skip_top: bool = False) -> str:
    cut = len(text)
    for pattern in patterns:
        for found in pattern.finditer(text):
            if skip_top and not text[: found.start()].strip():
                continue  # a "signature" on the first line is the message itself
            cut = min(cut, found.start())
            break
    return text[:cut]


def _cap(text: str) -> str:
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return text[: MAX_TEXT_CHARS - 1].rstrip() + "…"


# ---- HTML to text ----------------------------------------------------------------------------
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
_DROPPED = frozenset(("script", "style", "head", "title", "template", "noscript", "svg"))
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    ]
)
# quoted history in HTML replies: Gmail, Apple Mail/Thunderbird, Outlook
_QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted")
_HTML_SPACE = re.compile(r"[ \t\r\n\f\v]+")
# Outlook's markers: everything after them is the quoted message
_HISTORY_IDS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip: str | None = None  # the tag that opened a dropped region
        self._skip_depth = 0  # its nesting (a blockquote in a blockquote)
        self._stop = False  # Outlook's marker: everything after it is history
        self._pre = 0
        self._links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._stop:
            return
        if self._skip is not None:
            if tag == self._skip:
                self._skip_depth += 1
            return
        attributes = {name: (value or "") for name, value in attrs}
        classes = attributes.get("class", "").lower()
        ident = attributes.get("id", "").lower()
        if ident in _HISTORY_IDS:
            self._stop = True
            return
        quoted = tag == "blockquote" or any(name in classes for name in _QUOTE_CLASSES)
        if (tag in _DROPPED or quoted) and tag not in _VOID:
            self._skip = tag
            self._skip_depth = 1
            return
        if tag == "br":
            self.out.append("\n")
        elif tag in _BLOCKS:
            self.out.append("\n")
            if tag == "li":
                self.out.append("- ")
        if tag == "pre":
            self._pre += 1
        if tag == "a":
            href = attributes.get("href", "").strip()
            self._links.append(href if href.lower().startswith(("http", "mailto:")) else None)

    def handle_endtag(self, tag: str) -> None:
        if self._stop:
            return
        if self._skip is not None:
            if tag == self._skip:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip = None
            return
        if tag in _BLOCKS and tag != "li":
            self.out.append("\n")
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag == "a" and self._links:
            href = self._links.pop()
            if href:
                shown = href.removeprefix("mailto:")
                # keep the address of a link unless the text already shows it
                if shown not in "".join(self.out[-3:]):
                    self.out.append(f" ({shown})")

    def handle_data(self, data: str) -> None:
        if self._stop or self._skip is not None:
            return
        if self._pre:
            self.out.append(data)
            return
        text = _HTML_SPACE.sub(" ", data)
        if not self.out or self.out[-1][-1:].isspace():
            text = text.lstrip()  # no space at the start of a line or after one
        self.out.append(text)


def html_to_text(html: str) -> str:
    """Readable text of an HTML mail: no tags, scripts and styles dropped, entities decoded,
    links kept as `text (url)`, quoted history (blockquote, Gmail's/Outlook's containers)
    dropped."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html[: MAX_BODY_CHARS * 4])
        extractor.close()
    except (AssertionError, ValueError):  # pathological markup: keep what was read
        pass
    text = unescape("".join(extractor.out)).replace("\xa0", " ")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


# ---- bounces and complaints ------------------------------------------------------------------
def _report_fields(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = _text_of(part) if not isinstance(payload, str) else payload
    return [_header_parser.parsestr(block) for block in re.split(r"\n\s*\n", text) if block]


def _dsn(part: Message) -> Bounce | None:
    permanent: list[str] = []
    transient: list[str] = []
    diagnostics: dict[str, str] = {}
    for block in _report_fields(part):  # the per-message block has no Action: skipped
        action = str(block.get("Action") or "").strip().lower()
        if action not in ("failed", "delayed"):
            continue
        recipient = _typed_address(block.get("Final-Recipient")) or _typed_address(
            block.get("Original-Recipient")
        )
        if recipient is None:
            continue
        status = str(block.get("Status") or "").strip()
        diagnostic = _one_line(_after_type(block.get("Diagnostic-Code")))
        if diagnostic:
            diagnostics.setdefault(recipient, diagnostic[:500])
        if action == "failed" and _is_permanent(status, diagnostic):
            if recipient not in permanent:
                permanent.append(recipient)
        elif recipient not in transient:
            transient.append(recipient)
    chosen, is_permanent = (permanent, True) if permanent else (transient, False)
    if not chosen:
        return None
    diagnostic = next((diagnostics[r] for r in chosen if r in diagnostics), None)
    return Bounce(
        kind="bounce", recipients=tuple(chosen), permanent=is_permanent, diagnostic=diagnostic
    )


def _is_permanent(status: str, diagnostic: str | None) -> bool:
    if status:
        return status.startswith("5")
    # no Status (it is required, but): the SMTP reply code in the diagnostic decides
    return bool(diagnostic and re.match(r"5\d\d\b", diagnostic))


def _complaint(msg: Message, report: Message) -> Bounce | None:
    blocks = _report_fields(report)
    fields = blocks[0] if blocks else None
    recipients: list[str] = []
    feedback_type: str | None = None
    if fields is not None:
        feedback_type = _one_line(fields.get("Feedback-Type"))
        for value in fields.get_all("Original-Rcpt-To", []):
            address = str(value).strip().strip("<>").lower()
            if "@" in address and address not in recipients:
                recipients.append(address)
    if not recipients:
        enclosed = _enclosed_message(msg)
        if enclosed is not None:
            recipients.extend(_addresses(enclosed, ("To",)))
    if not recipients:
        return None
    return Bounce(
        kind="complaint",
        recipients=tuple(recipients),
        permanent=True,
        diagnostic=feedback_type,
    )


def _enclosed_message(msg: Message) -> Message | None:
    for part in msg.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if content_type == "text/rfc822-headers":
            return _header_parser.parsestr(_text_of(part))
    return None


def _typed_address(value: object) -> str | None:
    """`rfc822; someone@example.com` → someone@example.com"""
    address = _after_type(value)
    if address is None:
        return None
    address = address.strip().strip("<>").lower()
    return address if "@" in address else None


def _after_type(value: object) -> str | None:
    if value is None:
        return None
    text = str(value)
    _, semicolon, rest = text.partition(";")
    return (rest if semicolon else text).strip() or None
