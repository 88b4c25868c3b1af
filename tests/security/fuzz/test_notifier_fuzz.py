"""schemathesis against the notifier's OpenAPI document: every operation, the console's with
a new admin's console session (its cookie checked by the notifier and confirmed by chat's
`/v1/console/me`, the house stub `api_testing.chat_stub`), the inbound mail webhook with its
secret, valid and invalid inputs, on its real lifespan (migrations, the session's Postgres
and broker): no 5xx."""

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
from notifier.config import DEV_INBOUND_SECRET, Settings
from notifier.main import create_app
from pydantic import SecretStr

pytestmark = pytest.mark.integration
SITE = "fuzz-notifier"
HEADERS = {"authorization": f"Bearer {DEV_INBOUND_SECRET}"}


@pytest.fixture(scope="module")
def notifier(database_url: str, kafka_bootstrap: str):
    with chat_sessions() as chat:
        settings = Settings(
            environment="test",
            api_docs=True,
            database_url=new_database(database_url, "notifier_fuzz"),
            kafka_bootstrap=kafka_bootstrap,
            consumer_group=unique("notifier-fuzz"),
            migrate_on_start=True,
            chat_url=chat.url,
            agent_session_secret=SecretStr(SECRET),
        )
        running = RunningApp(create_app(settings))
        try:
            wait_ready(running)
            running.cookies = admin_session(chat, SITE)
            settings_answer = running.client.get(
                "/v1/admin/email/settings", cookies=running.cookies
            )
            assert settings_answer.status_code == 200, settings_answer.text  # the session works
            yield running
        finally:
            running.close()


@pytest.mark.parametrize(
    "label", operations(create_app(Settings(environment="test", api_docs=True)))
)
def test_no_input_gets_a_server_error(label, notifier):
    assert (
        fuzz(
            notifier, label, prepare=lambda case: {"headers": HEADERS, "cookies": notifier.cookies}
        )
        > 0
    )
