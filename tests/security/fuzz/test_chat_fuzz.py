"""schemathesis against chat's OpenAPI document: every operation, the console's with an
admin's real session (logged in through `/v1/console/login`, the console's own origin), the
widget's with a visitor token from `/v1/widget/session` and the site's origin, valid and
invalid inputs, on chat's real lifespan (migrations, seed, the session's Postgres and
broker): no 5xx."""

from __future__ import annotations

import pytest
import yaml
from chat.config import Settings
from chat.main import create_app
from chat_testing import PASSWORD, site_spec
from fuzzing import RunningApp, fuzz, new_database, operations, unique, wait_ready

pytestmark = pytest.mark.integration
SITE = site_spec("fuzz-chat", agents=(("boss", ("sales",), 5),))
CONSOLE_ORIGIN = "http://testserver"


@pytest.fixture(scope="module")
def chat(database_url: str, kafka_bootstrap: str, tmp_path_factory):
    seed = SITE.seed()
    seed["agents"][0]["role"] = "admin"
    seed_file = tmp_path_factory.mktemp("chat-fuzz") / "seed.yaml"
    seed_file.write_text(yaml.safe_dump({"sites": [seed]}))
    settings = Settings(
        environment="test",
        api_docs=True,
        database_url=new_database(database_url, "chat_fuzz"),
        kafka_bootstrap=kafka_bootstrap,
        consumer_group=unique("chat-fuzz"),
        migrate_on_start=True,
        seed_file=seed_file,
        widget_requests_per_s=10_000,
    )
    running = RunningApp(create_app(settings))
    try:
        wait_ready(running)
        client = running.client
        login = client.post(
            "/v1/console/login",
            json={"email": SITE.agents[0].email, "password": PASSWORD},
            headers={"origin": CONSOLE_ORIGIN},
        )
        assert login.status_code == 200, login.text
        session = client.post(
            "/v1/widget/session",
            json={"site_key": SITE.site_key, "visitor_id": "v-fuzz-1"},
            headers={"origin": SITE.origin},
        )
        assert session.status_code == 200, session.text
        running.cookies = {"beckon_agent": login.cookies["beckon_agent"]}
        running.headers = {"authorization": f"Bearer {session.json()['token']}"}
        yield running
    finally:
        running.close()


@pytest.mark.parametrize(
    "label", operations(create_app(Settings(environment="test", api_docs=True)))
)
def test_no_input_gets_a_server_error(label, chat):
    origin = SITE.origin if label.split(" ")[1].startswith("/v1/widget") else CONSOLE_ORIGIN
    headers = {**chat.headers, "origin": origin}
    assert fuzz(chat, label, prepare=lambda case: {"headers": headers, "cookies": chat.cookies}) > 0


@pytest.mark.parametrize("after", ["2147483648", "99999999999999999999"])
def test_the_widget_lists_nothing_after_a_seq_past_the_database_range(chat, after):
    """Found by the fuzzing: `after` past Postgres' integer range was a query argument out of
    range (500); now it is the largest seq, after which there is nothing."""
    headers = {**chat.headers, "origin": SITE.origin}
    started = chat.client.post(
        "/v1/widget/conversations", json={"text": "Hello", "client_id": "c-fuzz-1"}, headers=headers
    )
    assert started.status_code in (200, 201), started.text  # the visitor has a conversation
    answer = chat.client.get(f"/v1/widget/messages?after={after}", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"messages": []}
