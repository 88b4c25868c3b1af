"""schemathesis against the leads service's OpenAPI document: every operation, called with a
new admin's console session (its cookie checked by leads and confirmed by chat's
`/v1/console/me`, the house stub `api_testing.chat_stub`) and the site's API key
(`/v1/api`), valid and invalid inputs, on its real lifespan (migrations, the session's
Postgres and broker): no 5xx."""

from __future__ import annotations

import pytest
from api_testing import SECRET
from fuzzing import (
    RunningApp,
    admin_session,
    chat_sessions,
    fuzz,
    new_database,
    operations,
    unique,
    wait_ready,
)
from leads.config import Settings
from leads.main import create_app
from pydantic import SecretStr

pytestmark = pytest.mark.integration
SITE = "fuzz-leads"


@pytest.fixture(scope="module")
def leads(database_url: str, kafka_bootstrap: str):
    with chat_sessions() as chat:
        settings = Settings(
            environment="test",
            api_docs=True,
            database_url=new_database(database_url, "leads_fuzz"),
            kafka_bootstrap=kafka_bootstrap,
            consumer_group=unique("leads-fuzz"),
            migrate_on_start=True,
            chat_url=chat.url,
            agent_session_secret=SecretStr(SECRET),
        )
        running = RunningApp(create_app(settings))
        try:
            wait_ready(running)
            running.cookies = admin_session(chat, SITE)
            made = running.client.post(
                "/v1/admin/api-keys", json={"name": "fuzz"}, cookies=running.cookies
            )
            assert made.status_code == 201, made.text
            running.headers = {"authorization": f"Bearer {made.json()['key']}"}
            yield running
        finally:
            running.close()


@pytest.mark.parametrize(
    "label", operations(create_app(Settings(environment="test", api_docs=True)))
)
def test_no_input_gets_a_server_error(label, leads):
    assert (
        fuzz(
            leads, label, prepare=lambda case: {"headers": leads.headers, "cookies": leads.cookies}
        )
        > 0
    )
