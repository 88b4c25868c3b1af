"""Signed, expiring tokens: visitor tokens bound to site + visitor (+ conversation), and
agent session cookies. HMAC-SHA256 over a compact JSON body; the only server-side state is
the agent's session version, which a session cookie must match (checked by the service).

chat issues them; other services that accept the console's session (leads) check them with
chat's secret and then ask chat whether the session still stands (its version and the
agent's role live in chat's database)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

import orjson

TokenKind = Literal["visitor", "agent"]
InvalidReason = Literal["malformed", "forged", "wrong_kind", "expired", "outdated"]


class InvalidToken(Exception):
    """The token is malformed, forged, of the wrong kind or expired (the message says which,
    `reason` as a code)."""

    def __init__(self, message: str, reason: InvalidReason = "malformed") -> None:
        super().__init__(message)
        self.reason: InvalidReason = reason


@dataclass(frozen=True, slots=True)
class VisitorClaims:
    site_id: str
    visitor_id: str
    conversation_id: str | None
    expires_at: int
    credential_id: str | None = None  # the browser credential it was issued for
    user_id: str | None = None  # the identity the store vouched for (a valid hash)


@dataclass(frozen=True, slots=True)
class AgentClaims:
    site_id: str
    agent_id: str
    expires_at: int
    session_version: int  # the agent's session version when it logged in (see chat.agents)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Issues and checks tokens with one secret; the kind is signed in, so a visitor token
    can never pass as an agent session."""

    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"beckon-chat-tokens:" + secret.encode()).digest()

    def _sign(self, body: bytes) -> str:
        return _b64(hmac.new(self._key, body, hashlib.sha256).digest())

    def _issue(self, claims: dict[str, object]) -> str:
        body = _b64(orjson.dumps(claims))
        return f"{body}.{self._sign(body.encode())}"

    def _check(self, token: str, kind: TokenKind, now: float) -> dict[str, object]:
        body, _, signature = token.partition(".")
        if not body or not signature or len(token) > 2048 or not token.isascii():
            raise InvalidToken("malformed token")
        if not hmac.compare_digest(self._sign(body.encode()), signature):
            raise InvalidToken("bad signature", "forged")
        try:
            claims = orjson.loads(_unb64(body))
        except (ValueError, orjson.JSONDecodeError):
            raise InvalidToken("malformed token") from None
        if not isinstance(claims, dict) or claims.get("k") != kind:
            raise InvalidToken(f"not a {kind} token", "wrong_kind")
        expires = claims.get("exp")
        if not isinstance(expires, int) or expires < now:
            raise InvalidToken("token expired", "expired")
        return claims

    def visitor_token(
        self,
        *,
        site_id: str,
        visitor_id: str,
        conversation_id: str | None,
        ttl_s: int,
        now: float,
        credential_id: str | None = None,
        user_id: str | None = None,
    ) -> str:
        """A token for one visitor of one site, in one browser (its credential), and once
        they chat, their conversation; with the verified user id when there is one."""
        claims: dict[str, object] = {
            "k": "visitor",
            "s": site_id,
            "v": visitor_id,
            "exp": int(now) + ttl_s,
        }
        if conversation_id is not None:
            claims["c"] = conversation_id
        if credential_id is not None:
            claims["b"] = credential_id
        if user_id is not None:
            claims["u"] = user_id
        return self._issue(claims)

    def check_visitor(self, token: str, *, now: float) -> VisitorClaims:
        claims = self._check(token, "visitor", now)
        site, visitor, conversation = claims.get("s"), claims.get("v"), claims.get("c")
        credential, user = claims.get("b"), claims.get("u")
        if not isinstance(site, str) or not isinstance(visitor, str):
            raise InvalidToken("malformed token")
        return VisitorClaims(
            site,
            visitor,
            conversation if isinstance(conversation, str) else None,
            int(claims["exp"]),  # type: ignore[call-overload]
            credential if isinstance(credential, str) else None,
            user if isinstance(user, str) else None,
        )

    def agent_token(
        self, *, site_id: str, agent_id: str, session_version: int, ttl_s: int, now: float
    ) -> str:
        """An agent's session; it ends early when the agent's session version moves on."""
        return self._issue(
            {
                "k": "agent",
                "s": site_id,
                "a": agent_id,
                "sv": session_version,
                "exp": int(now) + ttl_s,
            }
        )

    def check_agent(self, token: str, *, now: float) -> AgentClaims:
        claims = self._check(token, "agent", now)
        site, agent, version = claims.get("s"), claims.get("a"), claims.get("sv")
        if not isinstance(site, str) or not isinstance(agent, str):
            raise InvalidToken("malformed token")
        if not isinstance(version, int) or isinstance(version, bool):
            raise InvalidToken("a session from before sessions could end", "outdated")
        return AgentClaims(site, agent, int(claims["exp"]), version)  # type: ignore[call-overload]
