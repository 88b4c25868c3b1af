"""Header values we can trust: one line, no control characters, mailboxes quoted properly.

`email.message.EmailMessage` folds and encodes, but it does not refuse a CR/LF in a value, and
it decodes RFC 2047 encoded words when a header is set (`=?utf-8?q?x=0D=0ABcc:_y?=` becomes a
real line break on this Python): so every value is checked before it is set and again as the
header object reads it back (`checked_header`).
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address, HeaderRegistry

# C0 controls but TAB, DEL, and the characters Python's str.splitlines() breaks lines at
# (NEL, LINE/PARAGRAPH SEPARATOR), which a folding policy may turn into real line breaks
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
_NAMES = {
    "\r": "CR",
    "\n": "LF",
    "\x00": "NUL",
    "\x7f": "DEL",
    "\x85": "NEL",
    "\u2028": "LINE SEPARATOR",
    "\u2029": "PARAGRAPH SEPARATOR",
}
_registry = HeaderRegistry()


class HeaderInjection(ValueError):
    """A header value that would break out of its line (or carries a control character)."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def safe_header(value: str, *, field: str) -> str:
    """The value unchanged when it is one clean line; HeaderInjection (naming the field)
    otherwise."""
    found = _FORBIDDEN.search(value)
    if found is not None:
        char = found.group()
        name = _NAMES.get(char, f"control character U+{ord(char):04X}")
        raise HeaderInjection(
            f"the {field} header value contains {name} at position {found.start()}; "
            "header values must be one line without control characters",
            field=field,
        )
    return value


def checked_header(field: str, value: str, *, parse_as: str | None = None) -> str:
    """`safe_header` on the value and on what the header registry decodes it to (encoded words
    included), parsed as the header `parse_as` (default: `field`); the value unchanged when
    both are clean."""
    safe_header(value, field=field)
    try:
        parsed = _registry(parse_as or field, value)
    except (ValueError, HeaderParseError) as exc:  # e.g. an encoded word decoding to CR/LF
        raise HeaderInjection(f"the {field} value is refused: {exc}", field=field) from None
    check_parsed(field, parsed)
    return value


def check_parsed(field: str, parsed: object) -> None:
    """`safe_header` on a header object as the registry decoded it (and on its addresses'
    display names)."""
    safe_header(str(parsed), field=field)
    for address in getattr(parsed, "addresses", ()):
        safe_header(str(address.display_name), field=field)


def mailbox(name: str | None, address: str) -> str:
    """`Name <addr>` with the name quoted (or left to the policy's RFC 2047 encoding when it
    is not ASCII); just the address when there is no name. ValueError for a bad address,
    HeaderInjection for a name with CR/LF or control characters."""
    safe_header(address, field="address")
    if name is not None:
        safe_header(name, field="display name")
    # a literal "=?" would be decoded as an RFC 2047 encoded word when the header is set: a
    # WORD JOINER after the "=" keeps the name as typed
    display = " ".join(name.split()).replace("=?", "=\u2060?") if name is not None else ""
    try:
        value = str(Address(display_name=display, addr_spec=address.strip()))
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise ValueError(f"{address!r} is not an e-mail address: {exc}") from None
    if "@" not in value:
        raise ValueError(f"{address!r} is not an e-mail address (no domain)")
    return checked_header("display name", value, parse_as="To")
