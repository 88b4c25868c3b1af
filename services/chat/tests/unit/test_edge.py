"""Chat's public edge without a database: body limits, the client's address, what is public.

The app runs in-process without its lifespan; the body tests count how much of a streamed
request body the server pulled, so "not buffered" is measured, not timed.
"""

from __future__ import annotations

import os

import chat.main
import httpx
import pytest
from beckon_edge.refusals import status_of
from beckon_edge.testing import PulledBody
from chat.api.common import MAX_BODY_BYTES, client_ip, read_body
from chat.config import Settings
from chat.errors import ChatError
from chat.main import create_app
from pydantic import BaseModel
from starlette.requests import Request

CHUNK = 4096
LARGEST = 1_048_576  # the rules documents, chat's largest bodies


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CHAT_") or name in ("DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            monkeypatch.delenv(name)


def client(settings: Settings | None = None) -> httpx.AsyncClient:
    app = create_app(settings or Settings())
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 5555))
    return httpx.AsyncClient(transport=transport, base_url="http://chat")


@pytest.mark.parametrize("path", ["/v1/console/login", "/v1/widget/session", "/nowhere"])
async def test_a_declared_length_over_the_limit_is_refused_unread(path):
    body = PulledBody(350 * 1024 * 1024, chunk=CHUNK)
    async with client() as http:
        response = await http.post(path, content=body, headers={"content-length": str(body.total)})
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "detail": f"the body is larger than {LARGEST} bytes; send a smaller one",
    }
    assert body.bytes == 0


async def test_the_unauthenticated_login_stops_reading_a_streamed_body_at_64_kib():
    body = PulledBody(8 * 1024 * 1024, chunk=CHUNK)
    app = create_app(Settings())
    app.state.chat = object()  # the route reads its body before it needs the runtime
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://chat") as http:
        response = await http.post("/v1/console/login", content=body)  # chunked: no length
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "detail": f"the body is larger than {MAX_BODY_BYTES} bytes",
    }
    assert body.bytes <= MAX_BODY_BYTES + CHUNK


class Login(BaseModel):
    email: str


def streamed_request(total: int, pulled: list[int]) -> Request:
    async def receive():
        pulled.append(CHUNK)
        return {"type": "http.request", "body": b" " * CHUNK, "more_body": sum(pulled) < total}

    scope = {"type": "http", "method": "POST", "path": "/console/login", "headers": []}
    return Request(scope, receive)


async def test_a_route_stops_reading_at_its_own_64_kib():
    pulled: list[int] = []
    with pytest.raises(ChatError) as refused:
        await read_body(streamed_request(LARGEST, pulled), Login)
    assert (status_of(refused.value), refused.value.code) == (413, "too_large")
    assert sum(pulled) <= MAX_BODY_BYTES + CHUNK


def request_from(peer: str, *forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    scope = {"type": "http", "method": "GET", "path": "/", "headers": headers}
    return Request(scope | {"client": (peer, 1234)})


def test_the_client_ip_believes_x_forwarded_for_only_as_far_as_trusted_proxies():
    proxies = Settings(trusted_proxies="10.0.0.0/8").trusted_proxies
    forged = request_from("10.0.0.5", "6.6.6.6, 203.0.113.9")
    assert client_ip(forged, proxies) == "203.0.113.9"
    assert client_ip(request_from("198.51.100.7", "203.0.113.9"), proxies) == "198.51.100.7"
    assert client_ip(forged, Settings().trusted_proxies) == "10.0.0.5"  # none trusted: ignored


def test_trusted_proxies_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CHAT_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")
    assert [str(n) for n in Settings().trusted_proxies] == ["10.0.0.0/8", "192.0.2.7/32"]
    monkeypatch.setenv("CHAT_TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(ValueError, match="is not an IP address or CIDR"):
        Settings()


def test_uvicorn_is_told_not_to_rewrite_the_client_address(monkeypatch):
    seen = {}
    monkeypatch.setattr(
        chat.main.DrainingServer, "run", lambda server, *a: seen.update(vars(server.config))
    )
    monkeypatch.setattr(chat.main, "configure_logging", lambda *a: None)
    chat.main.main([])
    assert seen["proxy_headers"] is False


REAL_SECRET = "Zk3v9QwL1mN8pR2sT5uX7yB0cD4eF6gH"


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
    if overrides.get("environment") == "production":
        overrides |= {"secret_key": REAL_SECRET, "cookie_secure": True}
    async with client(Settings(**overrides)) as http:
        statuses = {(await http.get(path)).status_code for path in ("/docs", "/openapi.json")}
    assert statuses == ({200} if served else {404})


async def test_the_public_app_serves_no_metrics():
    async with client() as http:
        assert (await http.get("/metrics")).status_code == 404
