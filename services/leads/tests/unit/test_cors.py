"""CORS for the agent console: chat serves the console from another origin, whose leads views
call this API with the agent's session cookie (`credentials: "include"`). Only the origins in
LEADS_CONSOLE_ORIGINS get CORS answers, with credentials; no other origin gets any."""

from __future__ import annotations

import httpx
import pytest
from leads.config import Settings
from leads.main import create_app
from leads.runtime import Runtime

CONSOLE = "http://console.example.test:8003"


def _app(origins: str = CONSOLE):
    settings = Settings(environment="test", console_origins=origins)
    app = create_app(settings)
    app.state.leads = Runtime(
        settings=settings,
        pool=None,  # type: ignore[arg-type]
        uow=None,  # type: ignore[arg-type]
        bus=None,  # type: ignore[arg-type]
        relay=None,  # type: ignore[arg-type]
    )
    return app


async def _ask(app, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)  # no lifespan: nothing is connected
    async with httpx.AsyncClient(transport=transport, base_url="http://leads") as client:
        return await client.request(method, path, headers=headers)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/leads/0190f0f0-0000-7000-8000-000000000001/status"),
        ("PUT", "/v1/leads/routing"),
        ("PATCH", "/v1/leads/webhooks/0190f0f0-0000-7000-8000-000000000001"),
        ("DELETE", "/v1/leads/webhooks/0190f0f0-0000-7000-8000-000000000001"),
    ],
)
async def test_the_console_origin_may_send_json_changes_with_its_cookie(method, path):
    answer = await _ask(
        _app(),
        "OPTIONS",
        path,
        {
            "origin": CONSOLE,
            "access-control-request-method": method,
            "access-control-request-headers": "content-type",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == CONSOLE
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert method in answer.headers["access-control-allow-methods"]
    assert "content-type" in answer.headers["access-control-allow-headers"].lower()


async def test_an_answer_to_the_console_carries_cors_headers_even_when_refused():
    """A 401 the console must read (the session ended) is readable by its page."""
    answer = await _ask(_app(), "GET", "/v1/leads", {"origin": CONSOLE})
    assert answer.status_code == 401
    assert answer.headers["access-control-allow-origin"] == CONSOLE
    assert answer.headers["access-control-allow-credentials"] == "true"
    assert "content-disposition" in answer.headers["access-control-expose-headers"].lower()


async def test_another_origin_gets_no_cors_answer():
    preflight = await _ask(
        _app(),
        "OPTIONS",
        "/v1/leads/routing",
        {"origin": "https://evil.example", "access-control-request-method": "PUT"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    simple = await _ask(_app(), "GET", "/v1/leads", {"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in simple.headers


async def test_without_console_origins_nobody_gets_cors():
    answer = await _ask(
        _app(origins=""),
        "OPTIONS",
        "/v1/leads/routing",
        {"origin": CONSOLE, "access-control-request-method": "PUT"},
    )
    assert "access-control-allow-origin" not in answer.headers
