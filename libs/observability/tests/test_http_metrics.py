"""The HTTP metrics middleware: counted by route template (never the raw path), unmatched
requests under one label, WebSockets left alone."""

from __future__ import annotations

import httpx
import pytest
from beckon_observability import HttpMetrics, MeasureRequests
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def app(registry: CollectorRegistry) -> FastAPI:
    app = FastAPI()
    app.add_middleware(MeasureRequests, metrics=HttpMetrics(registry))

    @app.get("/v1/leads/{lead_id}")
    async def lead(lead_id: str) -> dict[str, str]:
        if lead_id == "missing":
            raise HTTPException(404, "no such lead")
        return {"id": lead_id}

    @app.post("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    return app


def count(registry: CollectorRegistry, method: str, route: str, code: str) -> float:
    value = registry.get_sample_value(
        "beckon_http_requests_total", {"method": method, "route": route, "code": code}
    )
    return value or 0.0


async def test_requests_are_counted_and_timed_by_route_template(app, registry):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        assert (await client.get("/v1/leads/a")).status_code == 200
        assert (await client.get("/v1/leads/b")).status_code == 200
        assert (await client.get("/v1/leads/missing")).status_code == 404
    assert count(registry, "GET", "/v1/leads/{lead_id}", "200") == 2
    assert count(registry, "GET", "/v1/leads/{lead_id}", "404") == 1
    assert count(registry, "GET", "/v1/leads/a", "200") == 0
    timed = registry.get_sample_value(
        "beckon_http_request_duration_seconds_count",
        {"method": "GET", "route": "/v1/leads/{lead_id}"},
    )
    assert timed == 3


async def test_a_path_no_route_matches_is_unmatched(app, registry):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
        assert (await client.get("/wp-admin/x.php")).status_code == 404
    assert count(registry, "GET", "unmatched", "404") == 1


async def test_a_handler_that_fails_counts_as_a_500(app, registry):
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/boom")).status_code == 500
    assert count(registry, "POST", "/boom", "500") == 1


async def test_websockets_are_not_requests(registry):
    calls = []

    async def inner(scope, receive, send):
        calls.append(scope["type"])

    async def nothing():
        return {}

    async def ignore(message):
        pass

    middleware = MeasureRequests(inner, metrics=HttpMetrics(registry))
    await middleware({"type": "websocket", "path": "/ws"}, nothing, ignore)
    assert calls == ["websocket"]
    samples = [
        sample
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "beckon_http_requests_total"
    ]
    assert samples == []
