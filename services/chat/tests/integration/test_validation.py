"""Input validation at the edges: malformed JSON is a 400, a missing or wrong field a 422 that
names it, an over-long message a 422, an oversized body a 413, all in the documented error
shape `{"error", "detail"}`; bad socket frames get an error frame and the socket lives on."""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest
from beckon_contracts.ids import uuid7
from chat_testing import SHOP_A_SPEC, frame_is, unique

pytestmark = pytest.mark.integration

TOO_LONG = "x" * 4001
HUGE = b'{"text": "' + b"y" * 70_000 + b'"}'


def _error(answer, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == code, body
    assert isinstance(body["detail"], str), body
    return str(body["detail"])


async def test_widget_rejects_bad_bodies_with_the_documented_errors(chat, clients, http) -> None:
    url = f"{chat.a.url}/v1/widget"
    origin = {"Origin": SHOP_A_SPEC.origin, "Content-Type": "application/json"}

    answer = await http.post(f"{url}/session", content=b'{"site_key": ', headers=origin)
    _error(answer, 400, "malformed_json")
    answer = await http.post(f"{url}/session", json={"site_key": "pk_shop_a_test"}, headers=origin)
    assert "visitor_id" in _error(answer, 422, "invalid")
    answer = await http.post(
        f"{url}/session",
        json={"site_key": "pk_shop_a_test", "visitor_id": "v 1"},
        headers=origin,
    )
    assert "visitor_id" in _error(answer, 422, "invalid")
    answer = await http.post(
        f"{url}/session",
        json={"site_key": "pk_shop_a_test", "visitor_id": unique("v"), "admin": True},
        headers=origin,
    )
    assert "admin" in _error(answer, 422, "invalid")
    answer = await http.post(f"{url}/session", content=HUGE, headers=origin)
    _error(answer, 413, "too_large")

    visitor = clients.visitor(SHOP_A_SPEC)
    assert (await visitor.session(chat.a.url)).status_code == 200
    answer = await visitor.post(chat.a.url, "/conversations", {"text": TOO_LONG})
    assert "text" in _error(answer, 422, "invalid")
    assert answer.json()["errors"][0]["loc"] == "text"
    answer = await visitor.post(chat.a.url, "/conversations", {"team": "no such team"})
    assert "team" in _error(answer, 422, "invalid")
    started = await visitor.start(chat.a.url, team="support")
    assert started.status_code == 201

    for body, field in (
        ({"client_id": "m-1"}, "text"),
        ({"client_id": "m-1", "text": TOO_LONG}, "text"),
        ({"client_id": "m-1", "text": "   \n\t "}, "text"),
        ({"client_id": "not valid!", "text": "hi"}, "client_id"),
    ):
        answer = await visitor.post(chat.b.url, "/messages", body)
        assert field in _error(answer, 422, "invalid"), body
    answer = await visitor.post(
        chat.b.url, "/messages", headers={"Content-Type": "application/json"}, content=b"[1, 2"
    )
    _error(answer, 400, "malformed_json")
    answer = await visitor.post(
        chat.b.url, "/messages", headers={"Content-Type": "application/json"}, content=HUGE
    )
    _error(answer, 413, "too_large")
    answer = await visitor.post(chat.b.url, "/email", {"email": "not-an-email"})
    assert "email" in _error(answer, 422, "invalid")
    # nothing of the above was stored
    assert (await visitor.get(chat.a.url, "/messages")).json()["messages"] == []

    # the socket answers bad frames with error frames and keeps going
    widget = await visitor.connect(chat.a.ws_url)
    await widget.recv_until(frame_is("hello"))
    await widget.send_raw("this is not json")
    assert (await widget.recv_until(frame_is("error")))["error"] == "malformed_json"
    await widget.send({"t": "message", "client_id": "w-1", "text": TOO_LONG})
    assert (await widget.recv_until(frame_is("error")))["error"] == "invalid"
    await widget.send({"t": "message", "client_id": "w-2"})
    assert (await widget.recv_until(frame_is("error")))["error"] == "invalid"
    await widget.send({"t": "launch-missiles"})
    assert (await widget.recv_until(frame_is("error")))["error"] == "unknown_frame"
    await widget.send({"t": "ping"})
    await widget.recv_until(frame_is("pong"))
    assert (await visitor.get(chat.a.url, "/messages")).json()["messages"] == []


async def test_console_rejects_bad_bodies_with_the_documented_errors(
    chat, clients, http, db
) -> None:
    url = f"{chat.b.url}/v1/console"
    same_origin = {"Origin": chat.b.url, "Content-Type": "application/json"}
    answer = await http.post(f"{url}/login", content=b"{email", headers=same_origin)
    _error(answer, 400, "malformed_json")
    answer = await http.post(f"{url}/login", json={"email": "bob@shop-a.test"}, headers=same_origin)
    assert "password" in _error(answer, 422, "invalid")
    answer = await http.post(
        f"{url}/login",
        json={"email": "bob@shop-a.test", "password": "wrong-password"},
        headers=same_origin,
    )
    _error(answer, 401, "bad_credentials")

    bob = await clients.agent(chat.b.url, SHOP_A_SPEC.agent("bob"), online=True)
    answer = await bob.post("/status", {"status": "busy"})
    assert "status" in _error(answer, 422, "invalid")

    visitor = clients.visitor(SHOP_A_SPEC)
    await visitor.session(chat.a.url)
    # bodies are checked before who has the conversation is: these refusals do not depend on it
    started = await visitor.start(chat.a.url, text="Hi")
    cid = started.json()["conversation"]["id"]
    for body, field in (
        ({"client_id": "c-1"}, "text"),
        ({"client_id": "c-1", "text": TOO_LONG}, "text"),
    ):
        answer = await bob.post(f"/conversations/{cid}/messages", body)
        assert field in _error(answer, 422, "invalid"), body
    answer = await bob.post(
        f"/conversations/{cid}/messages",
        headers={"Content-Type": "application/json"},
        content=HUGE,
    )
    _error(answer, 413, "too_large")
    answer = await bob.post(f"/conversations/{cid}/tags", {"tags": ["Not A Tag!"]})
    assert "tags" in _error(answer, 422, "invalid")
    answer = await bob.post(f"/conversations/{cid}/transfer", {})
    _error(answer, 422, "invalid")
    answer = await bob.post(f"/conversations/{cid}/transfer", {"team": "sales", "agent_id": "x"})
    _error(answer, 422, "invalid")
    answer = await bob.post(f"/conversations/{cid}/transfer", {"agent_id": "x", "note": "n" * 1001})
    assert "note" in _error(answer, 422, "invalid")
    row = await db.fetchrow(
        "SELECT last_seq, tags FROM chat.conversations WHERE conversation_id = $1", UUID(cid)
    )
    assert (row["last_seq"], list(row["tags"])) == (1, [])  # nothing of the above was applied


async def test_bad_ids_in_paths_and_queries_get_the_documented_error_shape(chat, clients) -> None:
    visitor = clients.visitor(SHOP_A_SPEC)
    assert (await visitor.session(chat.a.url)).status_code == 200
    bob = await clients.agent(chat.a.url, SHOP_A_SPEC.agent("bob"))
    answers = [
        await visitor.get(chat.a.url, "/messages", params={"after": "yesterday"}),
        await visitor.post(chat.a.url, "/invitations/not-a-uuid/shown"),
        await visitor.post(chat.a.url, f"/invitations/{uuid7()}/clicked"),
        await bob.get("/conversations/not-a-uuid"),
        await bob.get("/conversations?scope=everything"),
        await bob.post("/conversations/not-a-uuid/close"),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        body = answer.json()
        assert body.get("error") == "invalid", (str(answer.url), body)
        assert isinstance(body.get("detail"), str), (str(answer.url), body)


async def test_nul_characters_are_refused_as_invalid_input_not_a_server_error(
    chat, clients
) -> None:
    visitor = clients.visitor(SHOP_A_SPEC)
    assert (await visitor.session(chat.a.url)).status_code == 200
    widget = {"Origin": SHOP_A_SPEC.origin, "Authorization": f"Bearer {visitor.token}"}
    calls = [
        ("/v1/widget/email", {"email": "a\x00b@example.com"}, widget, (422,)),
        (
            "/v1/widget/session",
            {"site_key": "pk_shop_a_test\x00", "visitor_id": unique("v")},
            {"Origin": SHOP_A_SPEC.origin},
            (401, 422),
        ),
        (
            "/v1/console/login",
            {"email": "bob\x00@shop-a.test", "password": "whatever"},
            {"Origin": chat.a.url},
            (401, 422),
        ),
    ]
    answers = {}
    for path, body, headers, _ in calls:
        # a fresh connection each: the server drops the connection of a request that failed
        async with httpx.AsyncClient(timeout=30.0) as client:
            answers[path] = await client.post(f"{chat.a.url}{path}", json=body, headers=headers)
    for path, _, _, wanted in calls:
        answer = answers[path]
        assert answer.status_code in wanted, (path, answer.status_code, answer.text)
        assert "error" in answer.json(), path
