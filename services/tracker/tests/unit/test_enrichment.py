from datetime import UTC, datetime, timedelta

import pytest
from tracker.domain.enrichment import (
    clock_offset,
    corrected_time,
    describe_user_agent,
    is_bot,
    truncate_ip,
)

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("10.1.2.255", "10.1.2.0"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        (" 192.0.2.1 ", "192.0.2.0"),
        ("not-an-ip", None),
        ("", None),
        (None, None),
    ],
)
def test_ip_is_truncated_before_storage(raw, expected):
    assert truncate_ip(raw) == expected


@pytest.mark.parametrize(
    ("user_agent", "bot"),
    [
        (GOOGLEBOT, True),
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", True),
        ("curl/8.5.0", True),
        ("python-requests/2.31.0", True),
        ("", True),
        (None, True),
        (CHROME_LINUX, False),
        (IPHONE, False),
    ],
)
def test_bot_flag_from_the_maintained_list(user_agent, bot):
    assert is_bot(user_agent) is bot


def test_user_agent_is_parsed_into_browser_os_and_device():
    chrome = describe_user_agent(CHROME_LINUX)
    assert chrome is not None
    assert (chrome.browser, chrome.browser_version, chrome.os, chrome.device) == (
        "Chrome",
        "124",
        "Linux",
        "desktop",
    )
    iphone = describe_user_agent(IPHONE)
    assert iphone is not None
    assert (iphone.os, iphone.device) == ("iOS", "mobile")
    ipad = describe_user_agent(IPAD)
    assert ipad is not None
    assert ipad.device == "tablet"
    googlebot = describe_user_agent(GOOGLEBOT)
    assert googlebot is not None
    assert googlebot.device == "bot"
    assert describe_user_agent(None) is None


def test_clock_skew_is_corrected_by_the_send_delay():
    received = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    # The browser's clock runs 10 minutes behind ours.
    sent_at = received - timedelta(minutes=10)
    offset = clock_offset(sent_at, received)
    occurred = sent_at - timedelta(seconds=3)
    assert corrected_time(occurred, offset, received) == received - timedelta(seconds=3)


def test_corrected_time_is_never_after_arrival():
    received = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    future = received + timedelta(hours=2)
    assert corrected_time(future, timedelta(0), received) == received
    assert clock_offset(None, received) == timedelta(0)


def test_sub_second_offsets_are_transit_time_not_skew():
    received = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
    assert clock_offset(received - timedelta(milliseconds=300), received) == timedelta(0)
    assert clock_offset(received - timedelta(seconds=2), received) == timedelta(seconds=2)
