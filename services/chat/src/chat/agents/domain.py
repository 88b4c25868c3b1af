"""Agents' e-mail addresses in one form, and how hard a login may be tried.

An address is stored, looked up and rate-limited by one normal form (NFKC, then case-folded),
so `Cecilia@…`, `CECILIA@…` and the same in full-width letters are one account and one limit,
while `cec\u0130lia@…` (a dotted capital I folds to `i` + U+0307) is another address, never
the real one.

The throttle counts failed logins only (a login that succeeds gives its tokens back), in two
buckets: per client address (IPv6 by /64), across accounts, which slows one address spraying
a password over many accounts; and per account and client address, which slows guessing one
account's password without letting a stranger elsewhere lock the real agent out.
"""

from __future__ import annotations

import ipaddress
import unicodedata

from beckon_edge import RateLimiter


def normalise_email(address: str) -> str:
    """The one form an agent's address is stored, compared and limited in."""
    folded = unicodedata.normalize("NFKC", address.strip()).casefold()
    return unicodedata.normalize("NFKC", folded)


def address_block(client: str) -> str:
    """The client's address as a rate-limit key: IPv4 as is, IPv6 by its /64 (one host
    usually holds a whole /64, so its addresses are one client)."""
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginThrottle:
    """Token buckets of failed logins: per client address, and per account and address."""

    def __init__(self, *, per_address: RateLimiter, per_account: RateLimiter) -> None:
        self._per_address = per_address
        self._per_account = per_account

    def admit(self, email: str, client: str) -> float:
        """Take one attempt from both buckets: 0.0 when allowed, else the seconds to wait."""
        block = address_block(client)
        wait = self._per_address.acquire(("address", block))
        if wait > 0:
            return wait
        wait = self._per_account.acquire(("account", normalise_email(email), block))
        if wait > 0:
            self._per_address.refund(("address", block))
        return wait

    def succeeded(self, email: str, client: str) -> None:
        """The right password: the attempt does not count against anyone."""
        block = address_block(client)
        self._per_address.refund(("address", block))
        self._per_account.refund(("account", normalise_email(email), block))
