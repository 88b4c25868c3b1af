"""The backtest page's request checks (the worker renders invitations with the contracts'
`render_template`, the same code the console's rules editor previews with)."""

from __future__ import annotations

import pytest
from triggers.backtest_http import BadRequest, parse_request


def test_the_backtest_page_refuses_bad_bodies_with_their_place() -> None:
    with pytest.raises(BadRequest, match="not JSON"):
        parse_request(b"{")
    with pytest.raises(BadRequest, match="hours"):
        parse_request(b'{"rules": {"site_id": "s"}, "hours": 0}')
    with pytest.raises(BadRequest, match=r"rules\.rules\[0\]\.when"):
        parse_request(
            b'{"rules": {"site_id": "s", "rules": [{"id": "a", "name": "A", "when": {"x": 1},'
            b' "message": "Hi"}]}}'
        )
    parsed = parse_request(b'{"rules": {"site_id": "s"}, "handling_time": "5m"}')
    assert (parsed.hours, parsed.handling_time, parsed.chats_per_agent) == (24.0, 300.0, 3)
