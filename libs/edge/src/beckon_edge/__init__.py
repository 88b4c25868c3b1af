"""Helpers for Beckon's public HTTP edges (tracker, chat): rate limiting per client, the
client's address behind trusted proxies, and request bodies with a hard size limit."""

from beckon_edge.body import (
    BadContentLength,
    BodyLimit,
    BodyTooLarge,
    declared_length,
    read_limited,
)
from beckon_edge.proxies import client_address, networks_setting, parse_networks
from beckon_edge.ratelimit import RateLimiter

__all__ = [
    "BadContentLength",
    "BodyLimit",
    "BodyTooLarge",
    "RateLimiter",
    "client_address",
    "declared_length",
    "networks_setting",
    "parse_networks",
    "read_limited",
]
