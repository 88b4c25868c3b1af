"""Every frame of chat's two sockets, attacked: each kind `security_surface.FRAMES` lists
(checked against the code by test_surface.py, so a new frame kind is attacked without a new
test) is sent naming shop-a's conversation, its visitor and its site

- on the console socket by shop-b's admin, by a shop-a agent and a shop-a admin who do not
  hold the conversation, and on a socket whose session was then logged out or has expired;
- on the widget socket by a shop-b visitor, by a stranger's browser on shop-a, and on the
  victim's own socket once its token has expired.

Nothing of shop-a reaches shop-b's sockets, the victim's conversation is the same afterwards
(every row naming it), no typing signal reaches the victim or the agent holding the
conversation, and a socket whose session ended or expired is closed (4401) without acting on
the frame. Each frame is followed by a ping: frames are handled in order, so when the pong
comes the attack's frame has been dealt with."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from beckon_contracts.ids import uuid7
from beckon_contracts.topics import VISITORS_STATE
from beckon_edge.tokens import Signer
from chat_testing import (
    SECRET,
    SHOP_A_SPEC,
    SHOP_B_SPEC,
    AgentClient,
    Socket,
    VisitorClient,
    frame_is,
    open_socket,
    produce,
    token_claims,
    unique,
)
from security_chat import ChatUnderAttack
from security_surface import FRAMES
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.integration

CONSOLE, WIDGET = "/v1/console/ws", "/v1/widget/ws"
VICTIM_TEXT = "My card number is 4111"
SHORT_TTL_S = 4  # a session that expires while its socket is open


@dataclass
class Victim:
    """shop-a's visitor chatting with carol: the conversation the attacks name."""

    visitor: VisitorClient
    conversation_id: str
    widget: Socket

    @property
    def visitor_id(self) -> str:
        return self.visitor.visitor_id


def attack_frame(kind: str, victim: Victim) -> dict[str, Any]:
    """A frame of `kind` naming every id of the victim a handler could read, with the fields
    each kind needs to act (extra fields are ignored by the kinds that do not read them)."""
    return {
        "t": kind,
        "conversation_id": victim.conversation_id,
        "visitor_id": victim.visitor_id,
        "site_id": SHOP_A_SPEC.site_id,
        "client_id": unique("attack"),
        "text": "attack",
        "on": True,
        "preview": "attack",
        "after": 0,
        "seq": 1,
    }


async def send(socket: Socket, frame: dict[str, Any]) -> None:
    """Send, also to a socket the server has closed (the close is what the test checks)."""
    with contextlib.suppress(ConnectionClosed):
        await socket.send(frame)


async def answers_to(socket: Socket, frame: dict[str, Any]) -> list[dict[str, Any]]:
    """What the socket got after sending `frame`, once the pong of a ping sent after it came
    (every pong of the socket is taken here, so the oldest one not taken is the next)."""
    seen = len(socket.frames)
    await send(socket, frame)
    await send(socket, {"t": "ping"})
    for _ in range(2 if frame["t"] == "ping" else 1):
        await socket.recv_until(frame_is("pong"))
    return [f for f in socket.frames[seen:] if f.get("t") != "pong"]


async def conversation_rows(chat: ChatUnderAttack, conversation_id: str) -> list[Any]:
    """Every row of chat's tables that names the conversation, and its outbox records."""
    tables = await chat.pool.fetch(
        """SELECT table_name FROM information_schema.columns
           WHERE table_schema = 'chat' AND column_name = 'conversation_id'
           ORDER BY table_name"""
    )
    rows: list[Any] = []
    for (table,) in tables:
        found = await chat.pool.fetch(
            f"SELECT t::text AS row FROM chat.{table} t WHERE conversation_id = $1::uuid",
            conversation_id,
        )
        rows.append((table, sorted(record["row"] for record in found)))
    outbox = await chat.pool.fetch(
        "SELECT t::text AS row FROM chat.outbox t WHERE key = $1", conversation_id.encode()
    )
    rows.append(("outbox", sorted(record["row"] for record in outbox)))
    return rows


def ws_url(chat: ChatUnderAttack) -> str:
    return chat.url.replace("http://", "ws://")


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
async def victim(chat_under_attack: ChatUnderAttack, http: httpx.AsyncClient) -> Victim:
    chat = chat_under_attack
    visitor = VisitorClient(http, SHOP_A_SPEC, unique("v-victim"))
    assert (await visitor.session(chat.url)).status_code == 200
    started = await visitor.start(chat.url, text=VICTIM_TEXT, client_id="v-1", team="support")
    assert started.status_code == 201, started.text
    conversation_id = started.json()["conversation"]["id"]
    carol = AgentClient(chat.url, SHOP_A_SPEC.agent("carol"))
    await carol.login()
    picked = await carol.post(f"/conversations/{conversation_id}/pickup")
    assert picked.status_code == 200, picked.text
    await carol.aclose()
    widget = await visitor.connect(ws_url(chat))
    await widget.recv_until(frame_is("hello"))
    return Victim(visitor, conversation_id, widget)


async def holder_console(chat: ChatUnderAttack) -> tuple[AgentClient, Socket]:
    """carol, who holds the victim's conversation, in a console of her own (a test that logs
    her out ends every session she had)."""
    carol = AgentClient(chat.url, SHOP_A_SPEC.agent("carol"))
    await carol.login()
    console = await carol.connect()
    await console.recv_until(frame_is("hello"))
    return carol, console


def leaks(frames: list[dict[str, Any]], victim: Victim) -> list[dict[str, Any]]:
    """The frames that carry anything of the victim's (for another site's sockets)."""
    secrets = (victim.conversation_id, victim.visitor_id, VICTIM_TEXT)
    return [f for f in frames if any(secret in orjson.dumps(f).decode() for secret in secrets)]


async def test_console_frames_from_another_site_or_a_non_holder_change_and_leak_nothing(
    chat_under_attack: ChatUnderAttack, victim: Victim, kafka_bootstrap: str
) -> None:
    chat = chat_under_attack
    # the victim and a shop-b visitor are on the live list, so a subscription could leak
    for site, visitor_id in ((SHOP_A_SPEC.site_id, victim.visitor_id), ("shop-b", "v-own-b")):
        await produce(
            kafka_bootstrap,
            VISITORS_STATE.name,
            f"{site}:{visitor_id}".encode(),
            _state_record(site, visitor_id),
        )
    attackers = {
        "another site's admin": AgentClient(chat.url, SHOP_B_SPEC.agent("dave")),
        "an agent not holding it": AgentClient(chat.url, SHOP_A_SPEC.agent("bob")),
        "an admin not holding it": AgentClient(chat.url, SHOP_A_SPEC.agent("alice")),
    }
    sockets: dict[str, Socket] = {}
    for name, attacker in attackers.items():
        await attacker.login()
        sockets[name] = await attacker.connect()
        await sockets[name].recv_until(frame_is("hello"))
    # shop-a's live list holds the victim, shop-b's its own visitor
    await _snapshot_with(sockets["an admin not holding it"], victim.visitor_id)
    await _snapshot_with(sockets["another site's admin"], "v-own-b")

    before = await conversation_rows(chat, victim.conversation_id)
    wrong: list[str] = []
    tried = 0
    for name, socket in sockets.items():
        for kind in sorted(FRAMES["chat"][CONSOLE]):
            answers = await answers_to(socket, attack_frame(kind, victim))
            tried += 1
            acted = [
                f
                for f in answers
                if f.get("t") in ("message", "conversation", "typing")
                and victim.conversation_id in orjson.dumps(f).decode()
            ]
            if acted:
                wrong.append(f"{name}: {kind} -> {acted}")
            if name == "another site's admin" and leaks(answers, victim):
                wrong.append(f"{name}: {kind} leaked {leaks(answers, victim)}")
    # nothing of shop-a reached shop-b's socket at any time, the conversation is the same
    assert not wrong, "\n".join(wrong)
    assert leaks(sockets["another site's admin"].frames, victim) == []
    assert await conversation_rows(chat, victim.conversation_id) == before
    # no attacker's typing reached the visitor: the holder's typing is the first they see
    carol, console = await holder_console(chat)
    await send(console, {"t": "typing", "conversation_id": victim.conversation_id, "on": True})
    await victim.widget.recv_until(frame_is("typing", on=True))
    assert len(victim.widget.matching(frame_is("typing"))) == 1, victim.widget.frames
    for attacker in (*attackers.values(), carol):
        await attacker.aclose()
    print(f"chat console socket: {tried} frames x attackers, 0 succeeded")


async def test_console_frames_after_the_session_ended_or_expired_are_not_acted_on(
    chat_under_attack: ChatUnderAttack, victim: Victim
) -> None:
    """carol holds the conversation: each kind would act (a message stored, a pong), but her
    socket's session is logged out, or has expired, by the time the frame comes."""
    chat = chat_under_attack
    before = await conversation_rows(chat, victim.conversation_id)
    wrong: list[str] = []
    kinds = sorted(FRAMES["chat"][CONSOLE])
    for kind in kinds:
        carol = AgentClient(chat.url, SHOP_A_SPEC.agent("carol"))
        await carol.login()
        socket = await carol.connect()
        await socket.recv_until(frame_is("hello"))
        ended = await carol.post("/logout")
        assert ended.status_code == 204, ended.text
        await send(socket, attack_frame(kind, victim))
        await send(socket, {"t": "ping"})
        wrong += await _closed_unheard(socket, f"logged out: {kind}")
        await carol.aclose()

    version = await chat.pool.fetchval(
        "SELECT session_version FROM chat.agents WHERE agent_id = $1", "shop-a-carol"
    )
    expiring = Signer(SECRET).agent_token(
        site_id="shop-a",
        agent_id="shop-a-carol",
        session_version=version,
        ttl_s=SHORT_TTL_S,
        now=time.time(),
    )
    headers = {"Origin": chat.url, "Cookie": f"beckon_agent={expiring}"}
    sockets = []
    for kind in kinds:
        socket = await open_socket(f"{ws_url(chat)}{CONSOLE}", headers, f"expiring {kind}")
        await socket.recv_until(frame_is("hello"))
        sockets.append(socket)
    await _past(token_claims(expiring)["exp"])
    for kind, socket in zip(kinds, sockets, strict=True):
        await send(socket, attack_frame(kind, victim))
        await send(socket, {"t": "ping"})
        wrong += await _closed_unheard(socket, f"expired: {kind}")
        await socket.close()

    assert not wrong, "\n".join(wrong)
    assert await conversation_rows(chat, victim.conversation_id) == before


async def test_widget_frames_from_another_site_or_browser_change_and_leak_nothing(
    chat_under_attack: ChatUnderAttack, victim: Victim, http: httpx.AsyncClient
) -> None:
    chat = chat_under_attack
    # a stranger on shop-a who knows the victim's visitor id gets a browser of its own
    stranger = VisitorClient(http, SHOP_A_SPEC, victim.visitor_id)
    other_site = VisitorClient(http, SHOP_B_SPEC, unique("v-b"))
    sockets = {}
    for name, attacker in (("a stranger's browser", stranger), ("another site", other_site)):
        assert (await attacker.session(chat.url)).status_code == 200
        sockets[name] = await attacker.connect(ws_url(chat))
        await sockets[name].recv_until(frame_is("hello"))

    carol, console = await holder_console(chat)  # hears the visitor's typing
    before = await conversation_rows(chat, victim.conversation_id)
    wrong: list[str] = []
    tried = 0
    for name, socket in sockets.items():
        if leaks(socket.frames, victim):  # the greeting
            wrong.append(f"{name}: hello leaked {leaks(socket.frames, victim)}")
        for kind in sorted(FRAMES["chat"][WIDGET]):
            answers = await answers_to(socket, attack_frame(kind, victim))
            tried += 1
            if leaks(answers, victim):
                wrong.append(f"{name}: {kind} leaked {leaks(answers, victim)}")
    assert not wrong, "\n".join(wrong)
    assert await conversation_rows(chat, victim.conversation_id) == before
    # no attacker's typing reached carol: the visitor's own is the first she hears of it
    await send(victim.widget, {"t": "typing", "on": True, "preview": "own"})
    mine = frame_is("typing", conversation_id=victim.conversation_id)
    await console.recv_until(mine)
    assert [f.get("preview") for f in console.matching(mine)] == ["own"], console.frames
    await carol.aclose()
    print(f"chat widget socket: {tried} frames x attackers, 0 succeeded")


async def test_widget_frames_after_the_token_expired_are_not_acted_on(
    chat_under_attack: ChatUnderAttack, victim: Victim
) -> None:
    """The victim's own browser, with a token that expires while its sockets are open: each
    kind would act (a message stored, the messages synced, a pong)."""
    chat = chat_under_attack
    claims = token_claims(victim.visitor.token or "")
    expiring = Signer(SECRET).visitor_token(
        site_id="shop-a",
        visitor_id=victim.visitor_id,
        conversation_id=victim.conversation_id,
        credential_id=claims.get("b"),
        ttl_s=SHORT_TTL_S,
        now=time.time(),
    )
    before = await conversation_rows(chat, victim.conversation_id)
    kinds = sorted(FRAMES["chat"][WIDGET])
    sockets = []
    for kind in kinds:
        socket = await open_socket(
            f"{ws_url(chat)}{WIDGET}?token={expiring}",
            {"Origin": SHOP_A_SPEC.origin},
            f"expiring {kind}",
        )
        hello = await socket.recv_until(frame_is("hello"))
        assert (hello["conversation"] or {}).get("id") == victim.conversation_id  # it is hers
        sockets.append(socket)
    await _past(token_claims(expiring)["exp"])
    wrong: list[str] = []
    for kind, socket in zip(kinds, sockets, strict=True):
        await send(socket, attack_frame(kind, victim))
        await send(socket, {"t": "ping"})
        wrong += await _closed_unheard(socket, f"expired: {kind}")
        await socket.close()
    assert not wrong, "\n".join(wrong)
    assert await conversation_rows(chat, victim.conversation_id) == before


# what a socket sends when it acts on a frame (the socket of an ended session must not)
ACTED = {"pong", "error", "message", "messages", "typing", "visitors.snapshot"}


async def _closed_unheard(socket: Socket, what: str) -> list[str]:
    """What is wrong with a socket that should be closed without acting on its frames."""
    with contextlib.suppress(TimeoutError):  # still open: said below
        await socket.wait_closed(timeout=15.0)
    wrong = []
    if socket.close_code != 4401:
        wrong.append(f"{what}: not closed with 4401 ({socket.close_code or 'still open'})")
    heard = [f for f in socket.frames if f.get("t") in ACTED]
    if heard:
        wrong.append(f"{what}: answered {heard}")
    return wrong


async def _past(expires_at: int) -> None:
    """Wait until a token's expiry (whole seconds) has passed."""
    while time.time() <= expires_at:
        await asyncio.sleep(expires_at + 0.2 - time.time())


async def _snapshot_with(socket: Socket, visitor_id: str) -> None:
    """Subscribe until the live list's snapshot holds `visitor_id` (it is read from Kafka)."""
    for _ in range(60):
        await send(socket, {"t": "visitors.subscribe"})
        frame = await socket.recv_until(frame_is("visitors.snapshot"))
        if any(row.get("id") == visitor_id for row in frame.get("visitors", [])):
            await send(socket, {"t": "visitors.unsubscribe"})
            return
        await send(socket, {"t": "visitors.unsubscribe"})
        await asyncio.sleep(0.5)
    raise AssertionError(f"{visitor_id} never reached {socket.label}'s live list")


def _state_record(site_id: str, visitor_id: str) -> bytes:
    now = datetime.now(UTC)
    return orjson.dumps(
        {
            "event_id": str(uuid7()),
            "type": "visitor.state",
            "occurred_at": now.isoformat(),
            "site_id": site_id,
            "visitor_id": visitor_id,
            "session_id": "s1",
            "payload": {
                "url": "https://shop.test/p/boots",
                "title": "Boots",
                "page_type": "product",
                "session_started_at": (now - timedelta(minutes=3)).isoformat(),
                "last_seen_at": now.isoformat(),
                "time_on_site_s": 180.0,
                "sessions": 1,
                "returning": False,
                "cart_value": 0.0,
                "score": 20.0,
                "segment": "cold",
                "invited": False,
            },
        }
    )
