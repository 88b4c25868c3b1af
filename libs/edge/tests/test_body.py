"""BodyLimit and read_limited never hold more than the limit, and answer 413 clearly."""

import json

import httpx
import pytest
from beckon_edge import BodyLimit, BodyTooLarge, read_limited
from beckon_edge.testing import PulledBody

LIMIT = 1000
CHUNK = 100


async def echo_size(scope, receive, send):
    """An app that reads its whole body and answers how large it was."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_declared_length_over_the_limit_is_refused_before_reading():
    body = PulledBody(10 * LIMIT, chunk=CHUNK, fill=b"x")
    async with client(BodyLimit(echo_size, limit=LIMIT)) as http:
        response = await http.post("/", content=body, headers={"content-length": "10000"})
    assert response.status_code == 413
    assert response.json() == {
        "error": "too_large",
        "message": f"the body is larger than {LIMIT} bytes; send a smaller one",
    }
    assert response.headers["connection"] == "close"
    assert body.bytes == 0


async def test_a_streamed_body_is_cut_off_at_the_limit():
    body = PulledBody(100 * LIMIT, chunk=CHUNK, fill=b"x")
    async with client(BodyLimit(echo_size, limit=LIMIT, message_field="detail")) as http:
        response = await http.post("/", content=body)  # chunked: no Content-Length
    assert response.status_code == 413
    assert response.json()["detail"].startswith("the body is larger than 1000 bytes")
    assert body.bytes <= LIMIT + CHUNK


async def test_bodies_within_the_limit_pass_untouched():
    async with client(BodyLimit(echo_size, limit=LIMIT)) as http:
        declared = await http.post("/", content=b"y" * LIMIT)
        streamed = await http.post("/", content=PulledBody(LIMIT, chunk=CHUNK, fill=b"x"))
    assert (declared.status_code, declared.text) == (200, str(LIMIT))
    assert (streamed.status_code, streamed.text) == (200, str(LIMIT))


async def test_a_content_length_that_is_not_a_number_is_a_400():
    async with client(BodyLimit(echo_size, limit=LIMIT)) as http:
        response = await http.post("/", content=b"{}", headers={"content-length": "1e9"})
    assert response.status_code == 400
    assert "Content-Length '1e9' is not a number" in json.loads(response.text)["message"]


async def test_what_the_app_sends_after_the_cut_is_dropped():
    async def stubborn(scope, receive, send):
        try:
            await echo_size(scope, receive, send)
        except BodyTooLarge:
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b"oops"})

    async with client(BodyLimit(stubborn, limit=LIMIT)) as http:
        response = await http.post("/", content=PulledBody(10 * LIMIT, chunk=CHUNK, fill=b"x"))
    assert response.status_code == 413


async def chunks(total: int, pulled: list[int]):
    while sum(pulled) < total:
        pulled.append(CHUNK)
        yield b"x" * CHUNK


async def test_read_limited_stops_reading_at_the_limit():
    pulled: list[int] = []
    with pytest.raises(BodyTooLarge):
        await read_limited(chunks(100 * LIMIT, pulled), LIMIT, None)
    assert sum(pulled) <= LIMIT + CHUNK


async def test_read_limited_refuses_a_declared_length_without_reading():
    pulled: list[int] = []
    with pytest.raises(BodyTooLarge):
        await read_limited(chunks(10 * LIMIT, pulled), LIMIT, str(10 * LIMIT))
    assert pulled == []
    assert await read_limited(chunks(LIMIT, []), LIMIT, str(LIMIT)) == b"x" * LIMIT
