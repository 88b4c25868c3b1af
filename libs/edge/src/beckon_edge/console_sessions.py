"""The console's agent session, as the services behind the console accept it ("one login":
leads, notifier).

chat issues the `beckon_agent` cookie (`beckon_edge.tokens`, signed with chat's secret, which
each service is given as its `*_AGENT_SESSION_SECRET`). A service checks it in two steps:

1. locally: signature, kind and expiry (a forged or expired cookie never leaves the process);
2. with chat: `GET {chat_url}/v1/console/me` with the cookie. Whether the session still
   stands (logout, new password, deactivation move the agent's session version) and the
   agent's role and teams live in chat's database, which no other service reads.

chat's answer is trusted for `cache_s` per cookie (a bounded cache, oldest out first), so a
busy inbox costs chat one call per agent every few seconds; a logout or a role change shows
here after at most that long. A 401 from chat is remembered as long (the same cookie stays
ended); chat being away is not remembered (503 now, asked again next time).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from fastapi import Request

from beckon_edge.refusals import Forbidden, NotAuthenticated, Refusal, Unavailable
from beckon_edge.tokens import InvalidToken, Signer

log = logging.getLogger("beckon.sessions")
SESSION_COOKIE = "beckon_agent"  # chat's console cookie (chat.api.deps.COOKIE)
ME_PATH = "/v1/console/me"
MAX_TEAMS = 200
_WHY: dict[str, str] = {
    "malformed": "the session cookie is malformed",
    "forged": "the session cookie's signature is wrong",
    "wrong_kind": "the cookie is not an agent session",
    "expired": "the session has expired",
    "outdated": "the session is from an older version of the console",
}


@dataclass(frozen=True, slots=True)
class SessionAgent:
    """Who a confirmed session belongs to, as chat knows them."""

    site_id: str
    agent_id: str
    role: Literal["agent", "admin"]
    teams: tuple[str, ...]


class ConsoleSessions:
    """Checks a console session cookie and asks chat who it is (cached for a short time)."""

    def __init__(
        self,
        *,
        secret: str,
        chat_url: str,
        timeout_s: float = 3.0,
        cache_s: float = 15.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._signer = Signer(secret)
        self._http = httpx.AsyncClient(
            base_url=chat_url.rstrip("/"), timeout=timeout_s, transport=transport
        )
        self._cache_s = cache_s
        self._cache_size = cache_size
        self._clock = clock
        self._wall_clock = wall_clock
        # sha-256 of the cookie -> (until, the agent or chat's refusal)
        self._answers: OrderedDict[bytes, tuple[float, SessionAgent | Refusal]] = OrderedDict()
        self.asked = 0  # calls made to chat (a test and a metric read it)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def agent(self, cookie: str | None) -> SessionAgent:
        """The agent a console cookie names, or a refusal: 401 `not_logged_in`,
        `session_<reason>` (malformed, forged, wrong_kind, expired, outdated), chat's own
        code (`session_ended`, `deactivated`), or 503 `chat_unavailable`."""
        if not cookie:
            raise NotAuthenticated("not_logged_in", "log in to the console first")
        try:
            claims = self._signer.check_agent(cookie, now=self._wall_clock())
        except InvalidToken as exc:
            raise NotAuthenticated(
                f"session_{exc.reason}", f"{_WHY[exc.reason]}; log in to the console again"
            ) from None
        key = hashlib.sha256(cookie.encode()).digest()
        now = self._clock()
        cached = self._answers.get(key)
        if cached is not None and cached[0] > now:
            answer = cached[1]
        else:
            answer = await self._ask(cookie)
            self._remember(key, now + self._cache_s, answer)
        if isinstance(answer, Refusal):
            raise answer
        if (answer.site_id, answer.agent_id) != (claims.site_id, claims.agent_id):
            raise NotAuthenticated("session_mismatch", "log in to the console again")
        return answer

    def _remember(self, key: bytes, until: float, answer: SessionAgent | Refusal) -> None:
        if self._cache_s <= 0:
            return
        self._answers[key] = (until, answer)
        self._answers.move_to_end(key)
        while len(self._answers) > self._cache_size:
            self._answers.popitem(last=False)

    async def _ask(self, cookie: str) -> SessionAgent | Refusal:
        self.asked += 1
        try:
            answer = await self._http.get(ME_PATH, headers={"cookie": f"{SESSION_COOKIE}={cookie}"})
        except httpx.HTTPError as exc:
            log.warning("chat does not answer", extra={"error": repr(exc)})
            raise Unavailable(
                "chat_unavailable", "the console's sessions cannot be checked now; try again"
            ) from None
        if answer.status_code == 401:
            return NotAuthenticated(
                str(_field(answer, "error") or "session_ended"),
                str(_field(answer, "detail") or "the session has ended; log in again"),
            )
        if answer.status_code != 200:
            log.warning("chat refused a session check", extra={"status": answer.status_code})
            raise Unavailable(
                "chat_unavailable", "the console's sessions cannot be checked now; try again"
            )
        try:
            return _agent_of(answer.json())
        except (ValueError, KeyError, TypeError) as exc:
            log.warning(
                "chat's answer about a session is not understood", extra={"error": str(exc)}
            )
            raise Unavailable(
                "chat_unavailable", "the console's sessions cannot be checked now; try again"
            ) from None


def _field(answer: httpx.Response, name: str) -> Any:
    try:
        body = answer.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def _agent_of(body: Any) -> SessionAgent:
    """chat's `/v1/console/me` answer: `{"agent": {"id", "site_id", "role", "teams"}, ...}`."""
    agent = body["agent"]
    role = agent["role"]
    teams = agent.get("teams") or []
    if role not in ("agent", "admin"):
        raise ValueError(f"unknown role {role!r}")
    if not isinstance(teams, list) or len(teams) > MAX_TEAMS:
        raise ValueError("teams is not a list of team ids")
    return SessionAgent(
        site_id=str(agent["site_id"]),
        agent_id=str(agent["id"]),
        role=role,
        teams=tuple(sorted(str(team) for team in teams)),
    )


# --- what an API's routes get -------------------------------------------------------------

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: an agent of one site, their role and teams."""

    site_id: str
    agent_id: str
    role: Literal["agent", "admin"]
    teams: tuple[str, ...] = ()

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def refuse_cross_site(request: Request, allowed: tuple[str, ...]) -> None:
    """The session cookie rides along on requests from any page: a call that changes
    something must come from this API's own origin or a configured console origin."""
    if request.method in SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site request
        return
    if urlsplit(origin).netloc.lower() == (request.headers.get("host") or "").lower():
        return
    if origin.rstrip("/").lower() in allowed:
        return
    raise Forbidden("cross_site", "this API only accepts changes from the console's own pages")


async def session_caller(
    request: Request,
    sessions: ConsoleSessions | None,
    console_origins: tuple[str, ...],
    cookie: str | None,
) -> Caller:
    """The console's agent session of a request: checked here (signature, kind, expiry),
    confirmed by chat (the session still stands; role and teams). A change must come from
    the API's own origin or a console origin."""
    refuse_cross_site(request, console_origins)
    if not cookie:  # before anything else: answerable even while the service starts
        raise NotAuthenticated("not_logged_in", "log in to the console first")
    if sessions is None:
        raise Unavailable("starting", "the service is starting; try again")
    agent = await sessions.agent(cookie)
    return Caller(
        site_id=agent.site_id, agent_id=agent.agent_id, role=agent.role, teams=agent.teams
    )
