"""What the edge adds to every event: arrival time, truncated IP, parsed user agent, bot flag."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from functools import lru_cache

from beckon_contracts.tracking import UserAgentInfo
from crawlerdetect import CrawlerDetect
from ua_parser import parse as parse_user_agent

_TABLETS = ("ipad", "tablet", "kindle", "silk", "playbook")
_MOBILES = ("iphone", "android", "mobile", "ipod", "windows phone")
_crawler_detect = CrawlerDetect()


@lru_cache(maxsize=65536)
def truncate_ip(raw: str | None) -> str | None:
    """Anonymise before anything is stored: IPv4 to its /24, IPv6 to its /48; junk to None."""
    if not raw:
        return None
    try:
        address = ipaddress.ip_address(raw.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


@lru_cache(maxsize=8192)
def is_bot(user_agent: str | None) -> bool:
    """Bots by the maintained CrawlerDetect list; an empty user agent is a script, not a person."""
    if not user_agent:
        return True
    return bool(_crawler_detect.isCrawler(user_agent))


@lru_cache(maxsize=8192)
def describe_user_agent(user_agent: str | None) -> UserAgentInfo | None:
    if not user_agent:
        return None
    parsed = parse_user_agent(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else None
    version = parsed.user_agent.major if parsed.user_agent else None
    os_name = parsed.os.family if parsed.os else None
    return UserAgentInfo(
        browser=None if browser == "Other" else browser,
        browser_version=version,
        os=None if os_name == "Other" else os_name,
        device=_device_kind(user_agent, parsed.device.family if parsed.device else None),
    )


def _device_kind(user_agent: str, device_family: str | None) -> str:
    if is_bot(user_agent) or device_family == "Spider":
        return "bot"
    lowered = user_agent.lower()
    if any(marker in lowered for marker in _TABLETS):
        return "tablet"
    if any(marker in lowered for marker in _MOBILES):
        return "mobile"
    if any(marker in lowered for marker in ("windows", "macintosh", "x11", "linux", "cros")):
        return "desktop"
    return "other"


SKEW_TOLERANCE = timedelta(seconds=1)


def clock_offset(sent_at: datetime | None, received_at: datetime) -> timedelta:
    """How far the sender's clock is behind ours; applied to its timestamps (as Segment does).

    Under a second it is mostly transit time, not skew, and is left alone.
    """
    if sent_at is None:
        return timedelta(0)
    offset = received_at - sent_at
    return offset if abs(offset) >= SKEW_TOLERANCE else timedelta(0)


def corrected_time(occurred_at: datetime, offset: timedelta, received_at: datetime) -> datetime:
    """The sender's timestamp on our clock, never later than when we received it."""
    return min(occurred_at + offset, received_at)


def warm_up() -> None:
    """Build the user-agent parser and the crawler list now, not on the first request (~0.4 s)."""
    describe_user_agent("Mozilla/5.0 (X11; Linux x86_64) warm-up")
