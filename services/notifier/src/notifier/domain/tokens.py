"""Signed reply tokens: the `+token` in `reply+token@reply.example.com` that brings a visitor's
e-mailed answer back into its conversation.

A token is `base32(version | conversation uuid | issue day | HMAC-SHA256[:12])`, lower-case and
unpadded: 50 characters of `[a-z2-7]`, so it survives MTAs and mail clients that lower-case the
local part (verification lower-cases first) and stays inside the 64-octet local part with a
short prefix. The MAC covers everything before it; the first secret signs and every secret
verifies, so a secret is rotated by putting the new one first and dropping the old one after
the TTL. The day (not the second) is signed: the token of one conversation is the same all
day, which keeps its reply address stable across the e-mails of a thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

SECRETS_SETTING = "NOTIFIER_REPLY_SECRETS"
MIN_SECRET_LENGTH = 16
TOKEN_LENGTH = 50  # 31 bytes in base32, unpadded

_VERSION = 1
_MAC_BYTES = 12  # 96 bits
_PAYLOAD_BYTES = 1 + 16 + 2  # version, conversation uuid, days since the epoch
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CONTEXT = b"beckon/notifier/reply-token/v1\x00"  # these keys sign nothing else
_TOKEN_SHAPE = re.compile(r"[a-z2-7]+")
_LOCAL_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}")
_DOMAIN_SHAPE = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
# tokens from the future: more than a day ahead is no clock skew of ours
_FUTURE_SLACK = timedelta(days=1)

InvalidTokenCode = Literal["malformed", "forged", "expired"]


class InvalidToken(Exception):
    """A reply token that must not be trusted; `code` says why (for the delivery log)."""

    def __init__(self, code: InvalidTokenCode, message: str) -> None:
        super().__init__(message)
        self.code: InvalidTokenCode = code


@dataclass(frozen=True)
class ReplyTarget:
    """What a verified token points at: the conversation, and the day the token was issued."""

    conversation_id: UUID
    issued_at: datetime


class ReplyTokens:
    """Issues and verifies reply tokens with the configured secrets (the first one signs)."""

    def __init__(self, secrets: Sequence[str], *, ttl: timedelta = timedelta(days=90)) -> None:
        if isinstance(secrets, str):
            raise ValueError(
                f"{SECRETS_SETTING} must be a list of secrets (the first one signs), not one string"
            )
        if not secrets:
            raise ValueError(
                f"{SECRETS_SETTING} is empty: give at least one secret of "
                f"{MIN_SECRET_LENGTH}+ characters (the first one signs reply tokens)"
            )
        for position, secret in enumerate(secrets, start=1):
            # never echo a secret, only where it is in the list
            if len(secret.strip()) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"{SECRETS_SETTING}: secret #{position} is shorter than "
                    f"{MIN_SECRET_LENGTH} characters; use a long random value"
                )
        if ttl <= timedelta(0):
            raise ValueError("the reply token TTL must be positive")
        self._keys = tuple(
            hashlib.sha256(_CONTEXT + secret.encode()).digest() for secret in secrets
        )
        self._ttl = ttl

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    def issue(self, conversation_id: UUID, *, now: datetime) -> str:
        """The token for replies to this conversation (the same all day)."""
        day = _day_of(now)
        payload = bytes([_VERSION]) + conversation_id.bytes + day.to_bytes(2, "big")
        mac = _mac(self._keys[0], payload)
        return base64.b32encode(payload + mac).decode("ascii").rstrip("=").lower()

    def verify(self, token: str, *, now: datetime) -> ReplyTarget:
        """The conversation a token was issued for; InvalidToken when it is not ours or too
        old."""
        raw = _decode(token)
        payload, mac = raw[:_PAYLOAD_BYTES], raw[_PAYLOAD_BYTES:]
        if payload[0] != _VERSION:
            raise InvalidToken("malformed", f"unknown reply token version {payload[0]}")
        # every key is tried (no early exit), each compared in constant time
        matches = [hmac.compare_digest(_mac(key, payload), mac) for key in self._keys]
        if not any(matches):
            raise InvalidToken("forged", "the reply token's signature does not match")
        issued_at = _EPOCH + timedelta(days=int.from_bytes(payload[17:19], "big"))
        current = _aware(now)
        if issued_at > current + _FUTURE_SLACK:
            raise InvalidToken("forged", "the reply token claims to be issued in the future")
        if current - issued_at > self._ttl:
            raise InvalidToken(
                "expired",
                f"the reply token was issued on {issued_at.date().isoformat()}, more than "
                f"{self._ttl.days} days ago",
            )
        return ReplyTarget(conversation_id=UUID(bytes=payload[1:17]), issued_at=issued_at)


def reply_address(local: str, token: str, domain: str) -> str:
    """`local+token@domain`: the Reply-To of every e-mail about a conversation."""
    if not _LOCAL_SHAPE.fullmatch(local):
        raise ValueError(
            f"reply address local part {local!r} must be letters, digits, '.', '_' or '-' "
            "(at most 41 characters, no '+')"
        )
    if not _TOKEN_SHAPE.fullmatch(token):
        raise ValueError("a reply token is lower-case base32 ([a-z2-7])")
    if not _DOMAIN_SHAPE.fullmatch(domain):
        raise ValueError(f"reply domain {domain!r} is not a domain name")
    return f"{local}+{token}@{domain}"


def token_from_address(address: str, domain: str) -> str | None:
    """The token of a reply address on our reply domain (lower-cased); None for another domain
    or an address without `+token`."""
    addr = address.strip()
    if addr.startswith("<") and addr.endswith(">"):
        addr = addr[1:-1].strip()
    local, at, addr_domain = addr.rpartition("@")
    if not at or not local:
        return None
    if addr_domain.rstrip(".").casefold() != domain.strip().rstrip(".").casefold():
        return None
    _, plus, token = local.partition("+")
    if not plus or not token:
        return None
    return token.lower()


def _decode(token: str) -> bytes:
    text = token.strip().lower()
    if len(text) != TOKEN_LENGTH or not _TOKEN_SHAPE.fullmatch(text):
        raise InvalidToken(
            "malformed", f"a reply token is {TOKEN_LENGTH} characters of base32 ([a-z2-7])"
        )
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        raw = base64.b32decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("malformed", f"the reply token is not base32: {exc}") from None
    if len(raw) != _PAYLOAD_BYTES + _MAC_BYTES:
        raise InvalidToken("malformed", "the reply token has the wrong length")
    # the last character carries 2 unused bits: only the canonical spelling is a token
    if base64.b32encode(raw).decode("ascii").rstrip("=").lower() != text:
        raise InvalidToken("malformed", "the reply token is not in its canonical form")
    return raw


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    return now.astimezone(UTC)


def _day_of(now: datetime) -> int:
    day = (_aware(now) - _EPOCH).days
    if not 0 <= day < 1 << 16:
        raise ValueError(f"{now.isoformat()} is outside the reply tokens' calendar (1970-2149)")
    return day
