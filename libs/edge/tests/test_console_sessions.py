"""The console's session as leads accepts it: checked locally first (a forged or expired
cookie never reaches chat), then confirmed by chat's /v1/console/me, whose answer is kept per
cookie for a short time in a bounded cache. chat here is an httpx mock transport."""

from __future__ import annotations

import time

import httpx
import pytest
from beckon_edge.console_sessions import ConsoleSessions, SessionAgent
from beckon_edge.refusals import NotAuthenticated, Unavailable
from beckon_edge.tokens import Signer

SECRET = "a-test-secret-of-enough-length"
SIGNER = Signer(SECRET)


class Chat:
    """What chat answers: 200 with the agent for live sessions, 401 for ended ones."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.ended: set[str] = set()
        self.status = 200

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/console/me"
        cookie = request.headers["cookie"].removeprefix("beckon_agent=")
        self.calls.append(cookie)
        if self.status != 200:
            return httpx.Response(self.status, text="oops")
        claims = SIGNER.check_agent(cookie, now=time.time())
        if claims.agent_id in self.ended:
            return httpx.Response(
                401, json={"error": "session_ended", "detail": "this session has ended"}
            )
        role = "admin" if claims.agent_id.startswith("boss") else "agent"
        agent = {"id": claims.agent_id, "site_id": claims.site_id, "role": role}
        return httpx.Response(200, json={"agent": {**agent, "teams": ["sales", "b2b"]}})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _cookie(agent: str = "anna", site: str = "shop-a", ttl_s: int = 3600, signer=SIGNER) -> str:
    return signer.agent_token(
        site_id=site, agent_id=agent, session_version=1, ttl_s=ttl_s, now=time.time()
    )


def _sessions(chat: Chat, clock: Clock, **kw) -> ConsoleSessions:
    return ConsoleSessions(
        secret=SECRET,
        chat_url="http://chat.test",
        clock=clock,
        transport=httpx.MockTransport(chat),
        **kw,
    )


async def test_a_live_session_is_chats_agent_with_role_and_teams_and_is_cached_briefly():
    chat, clock = Chat(), Clock()
    sessions = _sessions(chat, clock, cache_s=15)
    cookie = _cookie("boss-ben")
    expected = SessionAgent("shop-a", "boss-ben", "admin", ("b2b", "sales"))
    assert await sessions.agent(cookie) == expected
    clock.now += 14.9
    assert await sessions.agent(cookie) == expected
    assert len(chat.calls) == 1  # the second call was answered from the cache
    clock.now += 0.2
    chat.ended.add("boss-ben")  # logged out meanwhile: the next check after the cache sees it
    with pytest.raises(NotAuthenticated) as refused:
        await sessions.agent(cookie)
    assert refused.value.code == "session_ended"
    assert len(chat.calls) == 2


@pytest.mark.parametrize(
    ("cookie", "code"),
    [
        (None, "not_logged_in"),
        ("", "not_logged_in"),
        ("garbage", "session_malformed"),
        (_cookie(signer=Signer("another-secret-of-enough-length")), "session_forged"),
        (_cookie(ttl_s=-5), "session_expired"),
        (
            SIGNER.visitor_token(
                site_id="shop-a", visitor_id="v", conversation_id=None, ttl_s=60, now=time.time()
            ),
            "session_wrong_kind",
        ),
    ],
)
async def test_a_bad_cookie_is_refused_here_without_asking_chat(cookie, code):
    chat = Chat()
    with pytest.raises(NotAuthenticated) as refused:
        await _sessions(chat, Clock()).agent(cookie)
    assert refused.value.code == code
    assert chat.calls == []


async def test_chat_away_is_503_and_not_remembered():
    chat, clock = Chat(), Clock()
    sessions = _sessions(chat, clock)
    chat.status = 502
    with pytest.raises(Unavailable) as refused:
        await sessions.agent(_cookie())
    assert refused.value.code == "chat_unavailable"
    chat.status = 200
    assert (await sessions.agent(_cookie())).agent_id == "anna"


async def test_chat_not_answering_at_all_is_503():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    sessions = ConsoleSessions(
        secret=SECRET, chat_url="http://chat.test", transport=httpx.MockTransport(down)
    )
    with pytest.raises(Unavailable):
        await sessions.agent(_cookie())


async def test_the_cache_is_bounded_oldest_out_first():
    chat, clock = Chat(), Clock()
    sessions = _sessions(chat, clock, cache_size=2)
    first, second, third = _cookie("a1"), _cookie("a2"), _cookie("a3")
    for cookie in (first, second, third):
        await sessions.agent(cookie)
    await sessions.agent(third)
    await sessions.agent(second)
    assert len(chat.calls) == 3  # both still cached
    await sessions.agent(first)  # pushed out by the third: asked again
    assert len(chat.calls) == 4


async def test_an_answer_about_someone_else_is_refused():
    def confused(request: httpx.Request) -> httpx.Response:
        agent = {"id": "mallory", "site_id": "shop-b", "role": "admin", "teams": []}
        return httpx.Response(200, json={"agent": agent})

    sessions = ConsoleSessions(
        secret=SECRET, chat_url="http://chat.test", transport=httpx.MockTransport(confused)
    )
    with pytest.raises(NotAuthenticated) as refused:
        await sessions.agent(_cookie())
    assert refused.value.code == "session_mismatch"
