"""The tracker's public edge: body limits, the client's address, what the public app serves.

The app runs in-process without its lifespan (no broker): the ingest is a fake that records
what reached it, so these tests see only the edge.
"""

from __future__ import annotations

import os

import httpx
import pytest
import tracker.main
from beckon_edge.testing import PulledBody
from tracker.config import Settings
from tracker.ingest import Inbound, Outcome
from tracker.main import create_app

SITE = {
    "site_id": "demo",
    "site_key": "pk_test_site_key",
    "write_key": "wk_test_write_key",
    "allowed_origins": ["https://shop.example"],
}
CHUNK = 4096


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("TRACKER_"):
            monkeypatch.delenv(name)


class FakeIngest:
    def __init__(self) -> None:
        self.inbound: list[Inbound] = []

    async def collect(self, inbound: Inbound, body: bytes) -> Outcome:
        self.inbound.append(inbound)
        return Outcome(200, {"accepted": 1})

    async def segment(self, inbound: Inbound, kind: str | None, body: bytes) -> Outcome:
        self.inbound.append(inbound)
        return Outcome(200, {"success": True})


def edge_client(peer: str = "198.51.100.7", **overrides) -> tuple[httpx.AsyncClient, FakeIngest]:
    settings = Settings(sites=[SITE], **overrides)
    app = create_app(settings)
    ingest = FakeIngest()
    app.state.edge.ingest = ingest
    transport = httpx.ASGITransport(app=app, client=(peer, 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://tracker"), ingest


COLLECT = "/v1/collect?k=pk_test_site_key"
ORIGIN = {"origin": "https://shop.example"}
AUTH = ("wk_test_write_key", "")


@pytest.mark.parametrize("route", [COLLECT, "/v1/batch", "/v1/track", "/nowhere"])
async def test_a_declared_length_over_the_limit_is_refused_unread(route):
    client, ingest = edge_client()
    body = PulledBody(50 * 1024 * 1024, chunk=CHUNK)
    async with client:
        response = await client.post(
            route,
            content=body,
            headers={**ORIGIN, "content-length": str(body.total)},
            auth=AUTH,
        )
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert "larger than 524288 bytes" in response.json()["message"]
    assert body.bytes == 0
    assert ingest.inbound == []


async def test_a_streamed_batch_is_cut_off_at_the_body_limit():
    client, ingest = edge_client(max_body_bytes=65_536)
    body = PulledBody(50 * 1024 * 1024, chunk=CHUNK)
    async with client:
        response = await client.post(COLLECT, content=body, headers=ORIGIN)  # chunked
    assert response.status_code == 413
    assert "larger than 65536 bytes" in response.json()["message"]
    assert body.bytes <= 65_536 + CHUNK
    assert ingest.inbound == []


async def test_a_streamed_single_segment_call_is_cut_off_at_the_event_limit():
    client, ingest = edge_client()
    body = PulledBody(50 * 1024 * 1024, chunk=CHUNK)
    async with client:
        response = await client.post("/v1/track", content=body, auth=AUTH)
    assert response.status_code == 413
    assert (response.json()["success"], response.json()["code"]) == (False, "too_large")
    assert ingest.inbound == []
    assert body.bytes <= 32_768 + CHUNK


async def test_behind_trusted_proxies_the_client_is_the_first_untrusted_hop_from_the_right():
    client, ingest = edge_client(
        peer="10.0.0.5",
        trusted_proxies="10.0.0.0/8",
        requests_per_s_per_client=0.001,
        request_burst_per_client=1,
    )
    async with client:
        first = await client.post(
            COLLECT, json={}, headers={**ORIGIN, "x-forwarded-for": "6.6.6.6, 203.0.113.9"}
        )
        forged = await client.post(
            COLLECT, json={}, headers={**ORIGIN, "x-forwarded-for": "7.7.7.7, 203.0.113.9"}
        )
        other = await client.post(
            COLLECT, json={}, headers={**ORIGIN, "x-forwarded-for": "203.0.113.10"}
        )
    assert [first.status_code, forged.status_code, other.status_code] == [200, 429, 200]
    assert [str(i.edge.ip) for i in ingest.inbound] == ["203.0.113.9", "203.0.113.10"]


async def test_without_trusted_proxies_x_forwarded_for_is_ignored():
    client, ingest = edge_client(requests_per_s_per_client=0.001, request_burst_per_client=1)
    async with client:
        first = await client.post(
            COLLECT, json={}, headers={**ORIGIN, "x-forwarded-for": "1.1.1.1"}
        )
        second = await client.post(
            COLLECT, json={}, headers={**ORIGIN, "x-forwarded-for": "2.2.2.2"}
        )
    assert [first.status_code, second.status_code] == [200, 429]
    assert ingest.inbound[0].edge.ip == "198.51.100.7"


def test_uvicorn_is_told_not_to_rewrite_the_client_address(monkeypatch):
    seen = {}
    monkeypatch.setattr(tracker.main.uvicorn, "run", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(tracker.main, "configure_logging", lambda *a: None)
    tracker.main.main()
    assert seen["proxy_headers"] is False


@pytest.mark.parametrize(
    ("overrides", "served"),
    [
        ({}, True),  # dev
        ({"environment": "test"}, False),
        ({"environment": "production"}, False),
        ({"environment": "production", "api_docs": True}, True),
    ],
)
async def test_api_docs_are_served_only_in_dev_unless_set(overrides, served):
    client, _ = edge_client(**overrides)
    async with client:
        statuses = {(await client.get(path)).status_code for path in ("/docs", "/openapi.json")}
    assert statuses == ({200} if served else {404})


async def test_the_public_app_serves_no_metrics():
    client, _ = edge_client()
    async with client:
        assert (await client.get("/metrics")).status_code == 404


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/v1/t", "track"), ("/v1/p", "page"), ("/v1/i", "identify"), ("/v1/b", None)],
)
async def test_analytics_js_short_paths_reach_the_segment_routes(path, kind):
    """analytics.js posts to `{apiHost}/t`, `/p`, ... and `/b` when it batches."""
    seen = []
    client, ingest = edge_client()

    async def segment(inbound, called, body):
        seen.append(called)
        return Outcome(200, {"success": True})

    ingest.segment = segment
    async with client:
        response = await client.post(
            path, content=b'{"writeKey": "wk_test_write_key"}', headers=ORIGIN
        )
    assert (response.status_code, seen) == (200, [kind])


@pytest.mark.parametrize("path", ["/v1/batch/", "/healthz/", "/v1/collect/"])
async def test_no_redirect_is_built_from_the_host_header(path):
    client, _ingest = edge_client()
    async with client:
        response = await client.get(path, headers={"host": "evil.test"}, follow_redirects=False)
    assert response.status_code in (404, 405)  # never a 307 to http://evil.test/...
    assert "location" not in response.headers


async def test_the_snippet_endpoint_answers_browsers_only_and_segment_calls_need_no_origin():
    client, ingest = edge_client()
    async with client:
        without = await client.post(COLLECT, json={"visitor_id": "v1", "events": [{}]})
        in_body = await client.post(
            "/v1/collect", json={"site_key": "pk_test_site_key", "visitor_id": "v1"}
        )
        server = await client.post("/v1/track", json={"event": "x"}, auth=AUTH)
        page = await client.post(COLLECT, json={}, headers=ORIGIN)
    for refused in (without, in_body):
        assert refused.status_code == 403
        assert refused.json()["error"] == "origin_required"
    assert server.status_code == 200
    assert page.status_code == 200
    assert [(i.route, i.browser) for i in ingest.inbound] == [
        ("POST /v1/track", False),
        ("POST /v1/collect", True),
    ]
