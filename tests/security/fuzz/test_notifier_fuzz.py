"""schemathesis against the notifier's OpenAPI document: every operation, the console's as a
site's admin, the inbound mail webhook with its secret, valid and invalid inputs, on its real
lifespan (migrations, the session's Postgres and broker): no 5xx.

The console session is stood in for by `current_agent` (it asks chat, not running here)."""

from __future__ import annotations

import pytest
from beckon_edge.console_sessions import Caller
from fuzzing import RunningApp, fuzz, new_database, operations, unique, wait_ready
from notifier.api.deps import current_agent
from notifier.config import DEV_INBOUND_SECRET, Settings
from notifier.main import create_app

pytestmark = pytest.mark.integration
SITE = "fuzz-notifier"
HEADERS = {"authorization": f"Bearer {DEV_INBOUND_SECRET}"}


@pytest.fixture(scope="module")
def notifier(database_url: str, kafka_bootstrap: str):
    settings = Settings(
        environment="test",
        api_docs=True,
        database_url=new_database(database_url, "notifier_fuzz"),
        kafka_bootstrap=kafka_bootstrap,
        consumer_group=unique("notifier-fuzz"),
        migrate_on_start=True,
    )
    app = create_app(settings)
    app.dependency_overrides[current_agent] = lambda: Caller(SITE, "fuzz-admin", "admin")
    running = RunningApp(app)
    try:
        wait_ready(running)
        yield running
    finally:
        running.close()


@pytest.mark.parametrize(
    "label", operations(create_app(Settings(environment="test", api_docs=True)))
)
def test_no_input_gets_a_server_error(label, notifier):
    assert fuzz(notifier, label, prepare=lambda case: {"headers": HEADERS}) > 0
