"""One-click unsubscribe links (RFC 8058) for the "unread messages" e-mails: a token naming
the site and the address, signed with the reply secrets (the first signs, each verifies).
Following it puts the address on the site's suppression list."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

MAC_BYTES = 16


class BadUnsubscribeLink(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Unsubscriber:
    site_id: str
    address: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: bytes) -> bytes:
    key = hashlib.sha256(b"beckon.notifier.unsubscribe:" + secret.encode()).digest()
    return hmac.new(key, body, hashlib.sha256).digest()[:MAC_BYTES]


class UnsubscribeLinks:
    def __init__(self, secrets: Sequence[str], public_url: str) -> None:
        if not secrets:
            raise ValueError("unsubscribe links need a secret")
        self.secrets = tuple(secrets)
        self.public_url = public_url.rstrip("/")

    def token(self, site_id: str, address: str) -> str:
        body = f"{site_id}\n{address.strip().lower()}".encode()
        return f"{_b64(body)}.{_b64(_mac(self.secrets[0], body))}"

    def url(self, site_id: str, address: str) -> str:
        return f"{self.public_url}/v1/unsubscribe?t={quote(self.token(site_id, address))}"

    def check(self, token: str) -> Unsubscriber:
        body_text, dot, mac_text = token.partition(".")
        try:
            body, mac = _unb64(body_text), _unb64(mac_text)
        except (ValueError, TypeError):
            raise BadUnsubscribeLink("the unsubscribe link is damaged") from None
        if not dot or not any(hmac.compare_digest(mac, _mac(s, body)) for s in self.secrets):
            raise BadUnsubscribeLink("the unsubscribe link is not one of ours")
        site_id, _, address = body.decode(errors="replace").partition("\n")
        if not site_id or "@" not in address:
            raise BadUnsubscribeLink("the unsubscribe link is damaged")
        return Unsubscriber(site_id, address)
