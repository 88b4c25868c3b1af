"""Identity verification: a store's server signs the id of the user logged in with the site's
identity secret (HMAC-SHA256, hex), the page passes id and hash to the snippet and widget,
and Beckon accepts the id (and the traits that come with it) only when the hash checks out
under one of the site's valid secrets (two during a rotation). Also the browser credential
that binds a visitor's conversations to one browser: random, shown once, stored as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

IDENTITY_SECRET_BYTES = 32  # 256 bits, hex-encoded: 64 characters
CREDENTIAL_BYTES = 32  # the widget's browser credential: 256 bits


def user_hash(user_id: str, secret: str) -> str:
    """What the store's server computes: hex HMAC-SHA256 of the user id under the secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user(user_id: str | None, given_hash: str | None, secrets_: Iterable[str]) -> bool:
    """Whether `given_hash` is the user id's HMAC under one of the valid secrets; every secret
    is compared in constant time (a miss on the first must not show in the timing)."""
    if not user_id or not given_hash or len(given_hash) > 128:
        return False
    given = given_hash.strip().lower().encode()
    matched = False
    for secret in secrets_:
        if secret:
            matched |= hmac.compare_digest(user_hash(user_id, secret).encode(), given)
    return matched


def new_identity_secret() -> str:
    return secrets.token_hex(IDENTITY_SECRET_BYTES)


def new_credential() -> str:
    """A browser credential: random, never derived from the visitor id."""
    return secrets.token_urlsafe(CREDENTIAL_BYTES)


def credential_hash(credential: str) -> bytes:
    """How a credential is stored and looked up (a high-entropy secret needs no slow hash)."""
    return hashlib.sha256(b"beckon-widget-credential:" + credential.encode()).digest()
