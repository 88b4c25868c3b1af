"""What a visitor or agent may send: trimmed text of bounded length, no control characters."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")


class InvalidInput(ValueError):
    """Input that fails the rules; `field` names what to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def clean_text(text: object, *, max_chars: int, field: str = "text") -> str:
    if not isinstance(text, str):
        raise InvalidInput(field, "must be a string")
    cleaned = _CONTROL.sub("", text).strip()
    if not cleaned:
        raise InvalidInput(field, "must not be empty")
    if len(cleaned) > max_chars:
        raise InvalidInput(field, f"is longer than {max_chars} characters")
    return cleaned


def without_control(text: str) -> str:
    """The text without control characters (tabs and line breaks stay)."""
    return _CONTROL.sub("", text)


def fit_text(text: str, *, max_chars: int, field: str = "text") -> str:
    """What may be shown of a text nobody can be asked to shorten (an e-mailed reply): no
    control characters, trimmed, and cut to `max_chars` with an ellipsis when longer."""
    cleaned = without_control(text).strip()
    if not cleaned:
        raise InvalidInput(field, "must not be empty")
    if len(cleaned) > max_chars:
        cleaned = cleaned[: max_chars - 1].rstrip() + "…"
    return cleaned


def clean_email(email: object, *, field: str = "email") -> str:
    if (
        not isinstance(email, str)
        or len(email) > 254
        or _ANY_CONTROL.search(email) is not None
        or not _EMAIL.fullmatch(email.strip())
    ):
        raise InvalidInput(field, "is not an e-mail address")
    return email.strip()


def clean_client_id(client_id: object, *, field: str = "client_id") -> str | None:
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
        raise InvalidInput(field, "must be 1-64 letters, digits, '-' or '_'")
    return client_id


def clean_tags(tags: object) -> list[str]:
    if not isinstance(tags, list) or len(tags) > 20:
        raise InvalidInput("tags", "must be a list of at most 20 tags")
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not _TAG.fullmatch(tag.strip().lower()):
            raise InvalidInput("tags", f"{tag!r} is not a tag (a-z, 0-9, '-', '_')")
        if tag.strip().lower() not in cleaned:
            cleaned.append(tag.strip().lower())
    return cleaned
