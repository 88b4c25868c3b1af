"""schemathesis against the tracker's OpenAPI document: every collect operation, with the
site's key and origin and with the write key, valid and invalid inputs: no 5xx."""

from __future__ import annotations

import base64

import pytest
from fuzzing import RunningApp, fuzz, operations, wait_ready, wait_until
from tracker.config import Settings
from tracker.main import create_app

pytestmark = pytest.mark.integration
SITE = {
    "site_id": "fuzz",
    "site_key": "pk_fuzz_site_key",
    "write_key": "wk_fuzz_write_key",
    "allowed_origins": ["https://shop.example"],
}
WRITE_KEY = "Basic " + base64.b64encode(b"wk_fuzz_write_key:").decode()
HEADERS = {"origin": "https://shop.example", "authorization": WRITE_KEY}
TRACK = {"event": "Fuzz Warmed Up", "anonymousId": "v-fuzz", "properties": {}}


@pytest.fixture(scope="module")
def tracker(kafka_bootstrap: str):
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        sites=[SITE],
        api_docs=True,
        ack_timeout_s=5.0,
        requests_per_s_per_client=10_000,
        request_burst_per_client=10_000,
        events_per_s_per_visitor=10_000,
        event_burst_per_visitor=10_000,
    )
    running = RunningApp(create_app(settings))
    try:
        wait_ready(running)
        wait_until(  # the broker acknowledges a valid event
            running,
            lambda client: client.post("/v1/track", json=TRACK, headers=HEADERS),
            "a valid POST /v1/track",
        )
        yield running
    finally:
        running.close()


@pytest.mark.parametrize("label", operations(create_app(Settings(sites=[SITE], api_docs=True))))
def test_no_input_gets_a_server_error(label, tracker):
    assert fuzz(tracker, label, prepare=lambda case: {"headers": HEADERS}) > 0
