"""The client's address behind reverse proxies, without trusting what the client wrote.

Every proxy appends the address it received the request from to `X-Forwarded-For`, so the
header reads `client-supplied…, hop1, hop2` and the TCP peer is the last proxy. Only the
entries added by proxies we run can be believed: walking from the right, past our own
(trusted) proxies, the first address that is not one of them is the client. The left-most
entry is whatever the client chose to send, which is why it must never key a rate limit.
Without trusted proxies the header is ignored: the TCP peer is the client.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs (or single addresses) as networks; ValueError naming the entry that is not one."""
    networks = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"{text!r} is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.0.2.7)"
            ) from None
    return tuple(networks)


def networks_setting(value: Any) -> Any:
    """A settings validator's view of a CIDR list: "10.0.0.0/8, 192.0.2.7" from the
    environment, a JSON list, or a list; anything else is left for pydantic to refuse."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.split(",")
    if isinstance(value, list | tuple):
        return parse_networks(str(item) for item in value)
    return value


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in trusted)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]
) -> str | None:
    """The client's address: the TCP `peer` unless it is a trusted proxy, else the first
    address from the right of `forwarded_for` (every X-Forwarded-For header, in order) that
    is not a trusted proxy."""
    if not trusted or peer is None:
        return peer
    peer_address = _address(peer)
    if peer_address is None or not _trusted(peer_address, trusted):
        return peer
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    nearest = str(peer_address)
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Our proxies write addresses; garbage came from beyond them. The last proxy we
            # trust is the best we know.
            return nearest
        if not _trusted(address, trusted):
            return str(address)
        nearest = str(address)
    return nearest  # every hop is one of ours: the request came from inside
