"""schemathesis against the leads service's OpenAPI document: every operation, called as a
site's admin (console routes) and with the site's API key (`/v1/api`), valid and invalid
inputs, on its real lifespan (migrations, the session's Postgres and broker): no 5xx.

The console session itself is stood in for by `current_agent` (it asks chat, which is not
running here); signing, expiry and roles of sessions are the tenancy battery's."""

from __future__ import annotations

import pytest
from beckon_edge.console_sessions import Caller
from fuzzing import RunningApp, fuzz, new_database, operations, unique, wait_ready
from leads.api.deps import current_agent
from leads.config import Settings
from leads.main import create_app

pytestmark = pytest.mark.integration
SITE = "fuzz-leads"


@pytest.fixture(scope="module")
def leads(database_url: str, kafka_bootstrap: str):
    settings = Settings(
        environment="test",
        api_docs=True,
        database_url=new_database(database_url, "leads_fuzz"),
        kafka_bootstrap=kafka_bootstrap,
        consumer_group=unique("leads-fuzz"),
        migrate_on_start=True,
    )
    app = create_app(settings)
    app.dependency_overrides[current_agent] = lambda: Caller(SITE, "fuzz-admin", "admin")
    running = RunningApp(app)
    try:
        wait_ready(running)
        made = running.client.post("/v1/admin/api-keys", json={"name": "fuzz"})
        assert made.status_code == 201, made.text
        running.headers = {"authorization": f"Bearer {made.json()['key']}"}
        yield running
    finally:
        running.close()


@pytest.mark.parametrize(
    "label", operations(create_app(Settings(environment="test", api_docs=True)))
)
def test_no_input_gets_a_server_error(label, leads):
    assert fuzz(leads, label, prepare=lambda case: {"headers": leads.headers}) > 0
