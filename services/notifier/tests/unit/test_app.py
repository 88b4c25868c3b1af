"""The notifier's app as built, without starting it."""

from __future__ import annotations

from beckon_edge.database import DATABASE_AWAY
from notifier.config import Settings
from notifier.main import create_app


def test_a_request_that_meets_an_absent_database_is_answered_503_not_500() -> None:
    # the inbound mail route answered 500 while Postgres restarted (the chaos battery)
    handlers = create_app(Settings(environment="test")).exception_handlers
    assert all(kind in handlers for kind in DATABASE_AWAY)
